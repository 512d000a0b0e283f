"""The app factory: builds the aiohttp application with every room wired in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.leads import LEADS, build_leads
from bot.settings import Settings
from handlers.web import api, leads, megafon, ops
from handlers.web.context import CONTEXT, WebContext
from handlers.web.errors import json_errors
from storage.db import Database
from storage.migrate import upgrade
from telephony.leads.clock import Clock
from telephony.megafon import MegafonClient
from telephony.notify import CallObservers, CallUpdate

log = logging.getLogger("trubka")

# Webhook bodies are small forms; anything larger is not a PBX.
MAX_BODY_BYTES = 256 * 1024


class CallLog:
    """Logs every call change (ids and statuses only: no secrets, no personal data)."""

    async def call_updated(self, update: CallUpdate) -> None:
        call = update.call
        log.info(
            "call %s %s: %s status=%s", call.id, call.callid, update.trigger, call.status or "-"
        )


def secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter is not None else None


def megafon_client(settings: Settings) -> MegafonClient | None:
    key = secret(settings.megafon_api_key)
    if not settings.megafon_url or not key:
        return None
    return MegafonClient(
        settings.megafon_url, key, api=settings.megafon_api, timeout=settings.megafon_timeout
    )


async def build_app(
    settings: Settings,
    *,
    db: Database | None = None,
    migrate: bool = True,
    clock: Clock | None = None,
) -> web.Application:
    """`db` may be given by tests (already migrated); otherwise it is made from the settings.
    `clock` drives the lead outbox's retry times (tests move a fake one)."""
    database = db or Database(settings.database_url)
    observers = CallObservers([CallLog()])
    context = WebContext(
        db=database,
        observer=observers,
        pbx=megafon_client(settings),
        megafon_crm_token=secret(settings.megafon_crm_token),
        api_token=secret(settings.api_token),
    )
    app = web.Application(
        middlewares=[json_errors, api.bearer_auth], client_max_size=MAX_BODY_BYTES
    )
    app[CONTEXT] = context
    leads_room = build_leads(settings, database, registry=context.metrics.registry, clock=clock)
    app[LEADS] = leads_room
    context.leads = leads_room.service
    observers.add(leads_room.service)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await upgrade(database)
        yield
        if context.pbx is not None:
            await context.pbx.close()
        if db is None:
            await database.dispose()

    app.cleanup_ctx.append(lifetime)
    app.cleanup_ctx.append(lambda _app: leads_room.lifetime())
    app.add_routes(megafon.routes)
    app.add_routes(api.routes)
    app.add_routes(ops.routes)
    app.add_routes(leads.routes)
    return app
