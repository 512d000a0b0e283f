"""Call tracking for sites: `GET /ct/tracker.js`, `POST /ct/v1/visit`, `POST /ct/v1/ping`.

No token: the browser of any visitor calls these. CORS admits only the configured site origins.
Bodies are JSON sent as text/plain (a "simple" request, no preflight); bad input is a 400.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handlers.web.bodies import read_json_object
from handlers.web.context import WEB
from handlers.web.errors import JsonError
from handlers.web.serialize import iso
from storage.types import utcnow
from telephony.tracking import (
    PageView,
    Shown,
    TrackingConfig,
    UnknownVisit,
    VisitorIds,
    record_page_view,
)
from telephony.tracking import ping as ping_visit
from telephony.tracking.guard import RequestBudget, holder_of
from telephony.tracking.visitors import client_ip, excluded_address, ga_client_id
from telephony.tracking.visits import penalize

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
PREFIX = "/ct/"
MAX_BODY = 16 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class TrackingWeb:
    config: TrackingConfig
    script: bytes
    budget: RequestBudget


TRACKING = web.AppKey("trubka_tracking", TrackingWeb)

_Short = Field(default=None, max_length=300)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    metrika_client_id: str | None = Field(default=None, max_length=64)
    roistat_visit: str | None = Field(default=None, max_length=64)
    ga: str | None = Field(default=None, max_length=200)

    def ids(self) -> VisitorIds:
        return VisitorIds(
            self.metrika_client_id or None, self.roistat_visit or None, ga_client_id(self.ga)
        )


class VisitBody(_Body):
    visit_id: str | None = Field(default=None, max_length=64)
    url: str = Field(max_length=4000)
    referrer: str | None = Field(default=None, max_length=4000)
    utm_source: str | None = _Short
    utm_medium: str | None = _Short
    utm_campaign: str | None = _Short
    utm_content: str | None = _Short
    utm_term: str | None = _Short
    yclid: str | None = Field(default=None, max_length=100)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the page's http(s) URL")
        return value


class PingBody(_Body):
    visit_id: str = Field(min_length=1, max_length=64)


async def _parse(request: web.Request, model: type[VisitBody] | type[PingBody]) -> Any:
    body = await read_json_object(request, max_bytes=MAX_BODY)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise JsonError(400, "Invalid parameters", field=field, detail=error["msg"]) from None


def _tracking(request: web.Request) -> TrackingWeb:
    tracking = request.app[TRACKING]
    if not tracking.config.enabled:
        raise JsonError(404, "Call tracking is not configured", detail="add [tracking] pools")
    return tracking


async def _admit(request: web.Request, tracking: TrackingWeb) -> tuple[str | None, bool]:
    """The client's address and whether it may take a number, once its request budget allows
    one more request (else a 429; the first refusal also ends the address's leases)."""
    config = tracking.config
    ip = client_ip(config, request.remote, request.headers.get("X-Forwarded-For"))
    if excluded_address(config, ip):
        return ip, True
    holder = holder_of(ip)
    admission = tracking.budget.admit(holder)
    if admission.newly_penalized and holder is not None:
        released = await penalize(
            request.app[WEB].db, holder, utcnow(), whole_network=admission.network_refused
        )
        log.warning(
            "call tracking: %s over its request budget; penalized, %d lease(s) ended",
            holder.network if admission.network_refused else holder.address,
            released,
        )
    if admission.retry_after:
        error = JsonError(429, "Too many requests", retry_after=admission.retry_after)
        error.headers["Retry-After"] = str(admission.retry_after)
        raise error
    return ip, not admission.penalized


def _answer(tracking: TrackingWeb, shown: Shown) -> web.Response:
    return web.json_response(
        {
            "visit_id": shown.visit_id,
            "number": shown.number,
            "formatted": tracking.config.format(shown.number),
            "expires_at": iso(shown.expires_at),
        }
    )


@routes.get("/ct/tracker.js")
async def tracker_js(request: web.Request) -> web.Response:
    response = web.Response(
        body=request.app[TRACKING].script,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
    response.enable_compression()
    return response


@routes.post("/ct/v1/visit")
async def visit(request: web.Request) -> web.Response:
    tracking = _tracking(request)
    ip, may_lease = await _admit(request, tracking)
    body: VisitBody = await _parse(request, VisitBody)
    ids = body.ids()
    view = PageView(
        url=body.url,
        visit_id=body.visit_id or None,
        referrer=body.referrer or None,
        user_agent=request.headers.get("User-Agent"),
        ip=ip,
        metrika_client_id=ids.metrika_client_id,
        roistat_visit=ids.roistat_visit,
        ga_client_id=ids.ga_client_id,
        utm_source=body.utm_source or None,
        utm_medium=body.utm_medium or None,
        utm_campaign=body.utm_campaign or None,
        utm_content=body.utm_content or None,
        utm_term=body.utm_term or None,
        yclid=body.yclid or None,
        may_lease=may_lease,
    )
    shown = await record_page_view(request.app[WEB].db, tracking.config, view, utcnow())
    return _answer(tracking, shown)


@routes.post("/ct/v1/ping")
async def ping(request: web.Request) -> web.Response:
    tracking = _tracking(request)
    _, may_lease = await _admit(request, tracking)
    body: PingBody = await _parse(request, PingBody)
    try:
        shown = await ping_visit(
            request.app[WEB].db,
            tracking.config,
            body.visit_id,
            body.ids(),
            utcnow(),
            may_lease=may_lease,
        )
    except UnknownVisit:
        raise JsonError(404, "Unknown visit", visit_id=body.visit_id) from None
    return _answer(tracking, shown)


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only the configured sites may call /ct/v1 from a browser; preflights answered here."""
    config = request.app[TRACKING].config
    if not request.path.startswith(PREFIX + "v1/") or not config.enabled:
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin.lower() in config.sites
    if origin is not None and not allowed:
        raise JsonError(403, "Origin not allowed", origin=origin[:200])
    if request.method == "OPTIONS" and origin is not None:
        preflight = web.Response(status=204)
        preflight.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        preflight.headers["Access-Control-Allow-Headers"] = "Content-Type"
        preflight.headers["Access-Control-Max-Age"] = "86400"
        _allow(preflight, origin)
        return preflight
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if origin is not None:
            _allow(exc, origin)
        raise
    if origin is not None:
        _allow(response, origin)
    return response
