"""The reports' login form and the middleware that sends strangers to it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp_jinja2
from aiohttp import web

from handlers.web.access import ACCESS
from handlers.web.reports import session
from telephony.access.scopes import REPORTS_READ, allows
from telephony.access.tokens import authenticate
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
    access = request.config_dict[ACCESS]
    who = await session.holder(
        access.db,
        request.cookies.get(session.COOKIE),
        bootstrap=access.bootstrap,
        now=access.clock.now(),
    )
    if who is None:
        target = request.path_qs if request.method == "GET" else HOME
        location = request.app.router["login"].url_for().with_query(next=target)
        raise web.HTTPSeeOther(location)
    return await handler(request)


routes = web.RouteTableDef()


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.StreamResponse:
    # Named tokens may exist without TRUBKA_API_TOKEN: the form is always there.
    return aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"next": _safe_next(request.query.get("next")), "error": None, "enabled": True},
    )


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    access = request.config_dict[ACCESS]
    limits = request.app[LOGIN_LIMITS]
    form = await request.post()
    target = _safe_next(str(form.get("next") or ""))
    given = str(form.get("token") or "").strip()
    error = None
    principal = None
    if not limits.tries.take(request.remote or "?"):
        error = "Слишком много попыток. Подождите минуту."
    else:
        principal = await authenticate(
            access.db, given, bootstrap=access.bootstrap, now=access.clock.now()
        )
        if principal is None:
            log.info("reports: wrong token from %s", request.remote)
            error = "Неверный токен."
        elif not allows(principal.scopes, REPORTS_READ):
            log.info("reports: token %s has no %s", principal.name, REPORTS_READ)
            error = "У этого токена нет права reports:read."
    if error is not None or principal is None:
        return aiohttp_jinja2.render_template(
            "login.html", request, {"next": target, "error": error, "enabled": True}, status=401
        )
    value = await session.issue(access.db, principal, given, access.clock.now())
    response = web.Response(status=303, headers={"Location": target})
    response.set_cookie(
        session.COOKIE,
        value,
        max_age=session.LIFETIME,
        path="/reports",
        httponly=True,
        samesite="Lax",
        secure=limits.secure_cookie,
    )
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    access = request.config_dict[ACCESS]
    await session.end(access.db, request.cookies.get(session.COOKIE), access.clock.now())
    response = web.Response(status=303, headers={"Location": "/reports/login"})
    response.del_cookie(session.COOKIE, path="/reports")
    return response
