"""The reports' login form and the middleware that sends strangers to it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp_jinja2
from aiohttp import web

from handlers.web.auth import same_secret
from handlers.web.context import WEB
from handlers.web.reports import session
from telephony.infra.ratelimit import TokenBuckets

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOME = "/reports/calls"
OPEN_PATHS = frozenset({"/reports/login"})


@dataclass
class LoginLimits:
    """Guessing the token: 10 tries, then one more every 6 seconds, per address."""

    secure_cookie: bool = False
    tries: TokenBuckets = field(default_factory=lambda: TokenBuckets(rate=1 / 6, burst=10))


LOGIN_LIMITS = web.AppKey("trubka_reports_login", LoginLimits)


def _safe_next(value: str | None) -> str:
    """Only back into the reports: never an open redirect to another site."""
    if value and value.startswith("/reports/") and not value.startswith("//"):
        return value
    return HOME


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    token = request.config_dict[WEB].api_token
    if not session.valid(token, request.cookies.get(session.COOKIE)):
        target = request.path_qs if request.method == "GET" else HOME
        location = request.app.router["login"].url_for().with_query(next=target)
        raise web.HTTPSeeOther(location)
    return await handler(request)


routes = web.RouteTableDef()


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.StreamResponse:
    enabled = bool(request.config_dict[WEB].api_token)
    return aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"next": _safe_next(request.query.get("next")), "error": None, "enabled": enabled},
        status=200 if enabled else 503,
    )


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    token = request.config_dict[WEB].api_token
    limits = request.app[LOGIN_LIMITS]
    form = await request.post()
    target = _safe_next(str(form.get("next") or ""))
    given = str(form.get("token") or "").strip()
    error = None
    if not token:
        error = "Отчёты выключены: задайте TRUBKA_API_TOKEN."
    elif not limits.tries.take(request.remote or "?"):
        error = "Слишком много попыток. Подождите минуту."
    elif not same_secret(given, token):
        log.info("reports: wrong token from %s", request.remote)
        error = "Неверный токен."
    if error is not None or token is None:
        return aiohttp_jinja2.render_template(
            "login.html", request, {"next": target, "error": error, "enabled": bool(token)},
            status=401 if token else 503,
        )
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(
        session.COOKIE,
        session.issue(token),
        max_age=session.LIFETIME,
        path="/reports",
        httponly=True,
        samesite="Lax",
        secure=limits.secure_cookie,
    )
    return response


@routes.post("/logout")
async def logout(_request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/reports/login"})
    response.del_cookie(session.COOKIE, path="/reports")
    return response
