"""`POST /megafon_webhook`: the MegaFon PBX's history, event, contact and rating pushes."""

from __future__ import annotations

from aiohttp import web

from handlers.web.auth import same_secret
from handlers.web.bodies import read_fields
from handlers.web.context import CALLS
from handlers.web.errors import json_error
from telephony.calls.pushes import ContactQuery, EventPush
from telephony.clients import contact_card
from telephony.phones import Extension
from telephony.providers.megafon import PROVIDER, InvalidPayload, dedup_key, parse_push

routes = web.RouteTableDef()


@routes.post("/megafon_webhook")
async def megafon_webhook(request: web.Request) -> web.Response:
    ctx = request.app[CALLS]
    count = ctx.metrics.webhooks
    fields = await read_fields(request)
    command = fields.get("cmd", "")[:16] or "none"
    if not same_secret(fields.get("crm_token"), ctx.megafon_crm_token):
        count.labels(PROVIDER, command, "unauthorized").inc()
        return json_error(401, "Invalid token")
    try:
        push = parse_push(fields)
    except InvalidPayload as exc:
        count.labels(PROVIDER, command, "invalid").inc()
        return json_error(400, "Invalid parameters", field=exc.field, detail=exc.reason)

    if isinstance(push, ContactQuery):
        count.labels(PROVIDER, "contact", "ok").inc()
        if isinstance(push.phone, Extension):
            return web.json_response({})
        # No write lock, no ORM: the PBX waits for this answer.
        async with ctx.db.read_connection() as connection:
            return web.json_response(await contact_card(connection, push.phone))

    new = await ctx.inbox.submit(
        PROVIDER,
        fields,
        dedup_key(fields),
        command=command,
        event_type=push.type if isinstance(push, EventPush) else None,
        secret_field="crm_token",
        push=push,
    )
    count.labels(PROVIDER, command, "ok" if new else "duplicate").inc()
    return web.json_response({})
