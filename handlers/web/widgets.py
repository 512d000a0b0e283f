"""Site widgets: `GET /ct/widget.js` (the callback button and messenger links, loaded lazily by
tracker.js) and `POST /ct/v1/callback` (public; CORS as the other /ct/v1 paths, by the tracking
middleware). Refusals are 400/429 `{"error": …}`, counted in /metrics, and dial nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.web.bodies import read_json_object
from handlers.web.context import WEB
from handlers.web.errors import JsonError
from handlers.web.serialize import iso
from handlers.web.tracking import MAX_BODY, TRACKING
from storage.tracking_models import TrackingVisit
from telephony.tracking.callback import CallbackAsk, CallbackDesk, CallbackRefused
from telephony.tracking.chat_links import telegram_link, visit_token, whatsapp_link
from telephony.tracking.guard import holder_of
from telephony.tracking.visitors import client_ip, excluded_address

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
# The form's hidden field people never see and robots fill in.
HONEYPOT = "website"


@dataclass(frozen=True)
class Widgets:
    desk: CallbackDesk
    script: bytes
    # Signs the messenger links' visit tokens (derived from the bot's token); None: no links.
    link_key: bytes | None = None


WIDGETS = web.AppKey("trubka_widgets", Widgets)


class CallbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    visit_id: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    website: str | None = Field(default=None, max_length=2000)


_Body = TypeVar("_Body", bound=BaseModel)


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    visit_id: str = Field(min_length=1, max_length=64)


def _parse(model: type[_Body], body: dict[str, object]) -> _Body:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise JsonError(400, "Invalid parameters", field=field, detail=first["msg"]) from None


def _widgets(request: web.Request) -> Widgets:
    widgets = request.app.get(WIDGETS)
    if widgets is None:
        raise JsonError(404, "Site widgets are off", detail="set [tracking.widgets] enabled")
    return widgets


@routes.get("/ct/widget.js")
async def widget_js(request: web.Request) -> web.Response:
    response = web.Response(
        body=_widgets(request).script,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
    response.enable_compression()
    return response


@routes.post("/ct/v1/callback")
async def callback(request: web.Request) -> web.Response:
    widgets = _widgets(request)
    parsed = _parse(CallbackBody, await read_json_object(request, max_bytes=MAX_BODY))
    config = request.app[TRACKING].config
    ip = client_ip(config, request.remote, request.headers.get("X-Forwarded-For"))
    origin = request.headers.get("Origin")
    ask = CallbackAsk(
        visit_id=parsed.visit_id,
        phone=parsed.phone,
        name=parsed.name or None,
        honeypot=bool(parsed.website),
        holder=None if excluded_address(config, ip) else holder_of(ip),
        site=origin.lower()[:200] if origin else None,
    )
    try:
        promise = await widgets.desk.request(ask)
    except CallbackRefused as refused:
        error = JsonError(refused.status, refused.message, reason=refused.reason)
        if refused.retry_after:
            error.headers["Retry-After"] = str(refused.retry_after)
        raise error from None
    answer: dict[str, str | None] = {"status": promise.status}
    if promise.at is not None:
        answer["at"] = iso(promise.at)
    return web.json_response(answer)


@routes.post("/ct/v1/chat")
async def chat_links(request: web.Request) -> web.Response:
    """The messenger links of a visit: `{"telegram"?, "whatsapp"?}` (each where configured)."""
    widgets = _widgets(request)
    parsed = _parse(ChatBody, await read_json_object(request, max_bytes=MAX_BODY))
    config = request.app[TRACKING].config.widgets
    async with request.app[WEB].db.read() as session:
        visit = await session.get(TrackingVisit, parsed.visit_id)
    token = visit_token(widgets.link_key, parsed.visit_id) if widgets.link_key else None
    if visit is None or token is None:
        raise JsonError(404, "Unknown visit", visit_id=parsed.visit_id)
    answer: dict[str, str] = {}
    if config.telegram_bot:
        answer["telegram"] = telegram_link(config.telegram_bot, token)
    if config.whatsapp_number:
        answer["whatsapp"] = whatsapp_link(config.whatsapp_number, token)
    return web.json_response(answer)
