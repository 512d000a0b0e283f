"""`GET|POST /whatsapp_webhook`: the WhatsApp Cloud API's subscription handshake, and its signed
messages and delivery statuses, handed to the domain's `ChannelInbound`.

Meta retries a delivery that did not get a 200, so the same message can arrive twice: the
domain keeps one per message id. The answer is 200 as soon as the body is handed over.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from aiohttp import web

from handlers.web.auth import same_secret
from handlers.web.bodies import MAX_BODY_BYTES, parse_json
from handlers.web.channel_inbound import CHANNEL_INBOUND
from handlers.web.context import WEB
from handlers.web.errors import json_error
from telephony.channels.whatsapp import InvalidWebhook, parse_webhook, verify_signature

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PROVIDER = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
_MAX_CHALLENGE = 200


@dataclass(frozen=True)
class WhatsAppWebhookConfig:
    """The two secrets of the webhook: the app secret signs bodies, the verify token is what we
    typed into Meta's webhook settings for the handshake."""

    app_secret: str
    verify_token: str

    def __repr__(self) -> str:  # secrets are never logged
        return "WhatsAppWebhookConfig(…)"


WHATSAPP_WEBHOOK = web.AppKey("whatsapp_webhook", WhatsAppWebhookConfig)


def _count(request: web.Request, command: str, outcome: str) -> None:
    ctx = request.app.get(WEB)
    if ctx is not None:
        ctx.metrics.webhooks.labels(PROVIDER, command, outcome).inc()


def _config(request: web.Request) -> WhatsAppWebhookConfig:
    config = request.app.get(WHATSAPP_WEBHOOK)
    if config is None:
        raise web.HTTPNotFound(reason="WhatsApp is not configured")
    return config


@routes.get("/whatsapp_webhook")
async def whatsapp_handshake(request: web.Request) -> web.Response:
    config = _config(request)
    query = request.query
    if query.get("hub.mode") != "subscribe" or not same_secret(
        query.get("hub.verify_token"), config.verify_token
    ):
        _count(request, "handshake", "unauthorized")
        log.warning("WhatsApp webhook handshake refused: wrong mode or verify token")
        return json_error(403, "Invalid verify token")
    _count(request, "handshake", "ok")
    challenge = query.get("hub.challenge", "")[:_MAX_CHALLENGE]
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/whatsapp_webhook")
async def whatsapp_webhook(request: web.Request) -> web.Response:
    config = _config(request)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _refuse(request, 413, "Body too large", f"more than {MAX_BODY_BYTES} bytes")
    raw = await request.read()  # the signature covers these exact bytes
    if len(raw) > MAX_BODY_BYTES:
        return _refuse(request, 413, "Body too large", f"more than {MAX_BODY_BYTES} bytes")
    if not verify_signature(config.app_secret, raw, request.headers.get(SIGNATURE_HEADER)):
        _count(request, "notification", "unauthorized")
        log.warning("WhatsApp webhook refused: missing or wrong %s", SIGNATURE_HEADER)
        return json_error(401, "Invalid signature")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(request, 400, "Invalid parameters", "body is not valid UTF-8")
    body = parse_json(request, text)  # 400 and a log line for bad or hostile JSON
    try:
        parsed = parse_webhook(body)
    except InvalidWebhook as exc:
        return _refuse(request, 400, "Invalid parameters", exc.reason, field=exc.field[:120])
    inbound = request.app.get(CHANNEL_INBOUND)
    if inbound is None:  # the channels' wiring is off: nothing could take the body
        raise web.HTTPNotFound(reason="WhatsApp is not configured")
    if parsed.messages:
        await inbound.messages_received(parsed.messages)
    if parsed.statuses:
        await inbound.statuses_received(parsed.statuses)
    _count(request, "notification", "ok")
    return web.json_response({})


def _refuse(
    request: web.Request, status: int, error: str, detail: str, *, field: str | None = None
) -> web.Response:
    _count(request, "notification", "invalid")
    log.warning(
        "%s %s: %d %s %s%s",
        request.method,
        request.path,
        status,
        error,
        detail,
        f" at {json.dumps(field)}" if field else "",
    )
    details = {"detail": detail, **({"field": field} if field else {})}
    return json_error(status, error, **details)
