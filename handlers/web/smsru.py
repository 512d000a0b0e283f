"""`POST /smsru_callback`: SMS.ru's delivery statuses (register this URL in the SMS.ru cabinet,
"API callback"). The answer is `100` as plain text: SMS.ru repeats a callback until it reads it.

SMS.ru signs nothing, so anyone can post here. A status therefore only ever changes a delivery
we sent: the domain (`ChannelInbound.statuses_received`) matches it by the sms_id SMS.ru gave
our send, and a status for an id we never got is dropped there. Repeats are harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from handlers.web.bodies import read_form_pairs
from handlers.web.channel_inbound import CHANNEL_INBOUND
from handlers.web.context import WEB
from handlers.web.errors import json_error
from telephony.channels.smsru import PROVIDER, InvalidCallback, parse_status_callback

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.post("/smsru_callback")
async def smsru_callback(request: web.Request) -> web.Response:
    context = request.app.get(WEB)
    count = context.metrics.webhooks if context is not None else None
    pairs = await read_form_pairs(request)
    try:
        statuses = parse_status_callback(pairs, received_at=datetime.now(UTC))
    except InvalidCallback as exc:
        log.warning("POST /smsru_callback: 400 Invalid parameters %s", exc.reason)
        if count is not None:
            count.labels(PROVIDER, "sms_status", "invalid").inc()
        return json_error(400, "Invalid parameters", detail=exc.reason)
    inbound = request.app.get(CHANNEL_INBOUND)
    if inbound is None:
        log.warning("POST /smsru_callback: SMS.ru is not configured (TRUBKA_SMSRU_API_ID)")
        return json_error(404, "SMS.ru is not configured")
    if statuses:
        await inbound.statuses_received(statuses)
    if count is not None:
        count.labels(PROVIDER, "sms_status", "ok").inc()
    return web.Response(text="100", content_type="text/plain")
