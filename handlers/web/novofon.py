"""`GET|POST /novofon_webhook` (NOTIFY_* and the zd_echo check) and `POST /novofon_calltracking`."""

from __future__ import annotations

import logging

from aiohttp import web

from handlers.web.auth import same_secret
from handlers.web.bodies import read_fields, read_json_object
from handlers.web.context import CALLS
from handlers.web.errors import json_error
from telephony.providers.megafon import InvalidPayload
from telephony.providers.novofon import PROVIDER, SIGNED_FIELDS, parse_notification, verify_webhook
from telephony.providers.novofon.events import accept_notification
from telephony.providers.novofon.tracking import EVENT, flatten, merge_call_tracking

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_MAX_ECHO = 200


def _echo(request: web.Request) -> web.Response | None:
    """Novofon checks a URL being saved with `?zd_echo=<token>`: the bare token, no signature."""
    token = request.query.get("zd_echo")
    if token is None:
        return None
    return web.Response(text=token[:_MAX_ECHO], content_type="text/plain")


@routes.get("/novofon_webhook")
@routes.post("/novofon_webhook")
async def novofon_webhook(request: web.Request) -> web.Response:
    if (echo := _echo(request)) is not None:
        return echo
    ctx = request.app[CALLS]
    count = ctx.metrics.webhooks
    if request.method != "POST":
        return json_error(400, "Invalid parameters", detail="expected zd_echo or a POSTed event")
    fields = await read_fields(request)
    event = fields.get("event", "").strip().upper()
    label = event[:24] or "none"
    if event not in SIGNED_FIELDS:
        # Other notifications (SMS, IVR, …) may share the URL: acknowledged, not acted on.
        count.labels(PROVIDER, "other", "ignored").inc()  # their names are not labels
        return web.json_response({})
    if not verify_webhook(ctx.novofon_secret, fields, request.headers.get("Signature")):
        count.labels(PROVIDER, label, "unauthorized").inc()
        return json_error(401, "Invalid signature")
    try:
        notification = parse_notification(fields, ctx.timezone)
    except InvalidPayload as exc:
        count.labels(PROVIDER, label, "invalid").inc()
        return json_error(400, "Invalid parameters", field=exc.field, detail=exc.reason)
    accepted = await accept_notification(
        ctx.inbox,
        ctx.db,
        notification,
        fields,
        jobs=ctx.jobs if ctx.novofon is not None else None,
        route_to_responsible=ctx.novofon_route_to_responsible,
    )
    count.labels(PROVIDER, label, "duplicate" if accepted.duplicate else "ok").inc()
    return web.json_response(accepted.answer)


@routes.get("/novofon_calltracking")
@routes.post("/novofon_calltracking")
async def novofon_calltracking(request: web.Request) -> web.Response:
    if (echo := _echo(request)) is not None:
        return echo
    ctx = request.app[CALLS]
    count = ctx.metrics.webhooks
    if request.method != "POST":
        return json_error(400, "Invalid parameters", detail="expected zd_echo or a POSTed event")
    expected = ctx.novofon_calltracking_token
    if expected is not None and not same_secret(request.query.get("token"), expected):
        count.labels(PROVIDER, "call_tracking", "unauthorized").inc()
        return json_error(401, "Invalid token")
    if request.content_type == "application/json":
        body = await read_json_object(request)
        fields = {**flatten(body), **{k: v for k, v in request.query.items() if k != "token"}}
    else:
        fields = {k: v for k, v in (await read_fields(request)).items() if k != "token"}
    event = fields.get("event", EVENT).strip().upper()
    if event != EVENT:
        count.labels(PROVIDER, "other", "ignored").inc()
        return web.json_response({})
    try:
        merged = await merge_call_tracking(ctx.db, fields)
    except InvalidPayload as exc:
        count.labels(PROVIDER, "call_tracking", "invalid").inc()
        return json_error(400, "Invalid parameters", field=exc.field, detail=exc.reason)
    count.labels(PROVIDER, "call_tracking", "duplicate" if merged.duplicate else "ok").inc()
    return web.json_response({"call_id": merged.call_id})
