"""The app factory: builds the aiohttp application with every room wired in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot import singletons
from bot.background import end_task
from bot.leads import LEADS, ScenarioLeads, build_leads, leads_config
from bot.reports import setup_reports, setup_rollup
from bot.roles import Role
from bot.scenarios.wiring import load_scenario_settings, setup_scenarios
from bot.settings import Settings
from bot.tracking import Widgets, load_tracking, setup_tracking, visit_chats
from handlers.web import api, leads, managers_api, megafon, novofon, openapi, ops
from handlers.web.bodies import MAX_BODY_BYTES
from handlers.web.context import CONTEXT, WebContext
from handlers.web.errors import json_errors, quiet_protocol_errors
from storage.db import Database
from storage.migrate import upgrade
from storage.queue_stats import QUEUES, QueueShape, queue_stats
from telephony.calls.inbox import CallInbox
from telephony.events import CallObservers, CallUpdate, MessageObservers
from telephony.infra.clock import Clock
from telephony.infra.health import HealthCheck
from telephony.leads.outbox import OutboxWorker
from telephony.providers.megafon import PROVIDER as MEGAFON
from telephony.providers.megafon import MegafonClient, parse_call_push
from telephony.providers.novofon import PROVIDER as NOVOFON
from telephony.providers.novofon import NovofonClient
from telephony.providers.novofon.events import RECORDING_JOB, RecordingFetcher, stored_pushes
from telephony.scenarios.actions import TelegramOutlet

log = logging.getLogger("trubka")
LEADERSHIP = web.AppKey("trubka_leadership", singletons.Leadership)

class CallLog:
    """Logs every call change (ids and statuses only: no secrets, no personal data)."""

    async def call_updated(self, update: CallUpdate) -> None:
        call = update.call
        log.info(
            "call %s %s: %s status=%s", call.id, call.callid, update.trigger, call.status or "-"
        )


def queue_health(db: Database, shape: QueueShape, stuck_after: float) -> HealthCheck:
    async def check() -> str | None:
        stats = await queue_stats(db, shape)
        if stats.oldest_due_seconds > stuck_after:
            return f"oldest due item waits {stats.oldest_due_seconds:.0f} s"
        return None

    return check


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


def novofon_client(settings: Settings) -> NovofonClient | None:
    secret_key = secret(settings.novofon_secret)
    if not settings.novofon_key or not secret_key:
        return None
    return NovofonClient(
        settings.novofon_url,
        settings.novofon_key,
        secret_key,
        zone=settings.zone,
        timeout=settings.novofon_timeout,
    )


def check_files(settings: Settings) -> None:
    """trubka.toml (every section) and the scenario file; ConfigurationError names the key."""
    load_tracking(settings)
    leads_config(settings)
    load_scenario_settings(settings)


async def build_app(
    settings: Settings,
    *,
    db: Database | None = None,
    migrate: bool = True,
    clock: Clock | None = None,
    role: Role = Role.ALL,
) -> web.Application:
    """`db` may be given by tests (already migrated); otherwise it is made from the settings.
    `clock` drives the lead outbox's retry times, scenario waits and working hours (tests move
    a fake one). `role` (serve --role) says whether HTTP routes and background loops run here;
    the loops that must run once across processes are guarded by leases."""
    tracking = load_tracking(settings)  # a wrong trubka.toml stops here, before anything starts
    scenarios = load_scenario_settings(settings)  # so does a wrong scenario file
    database = db or Database(settings.database_url)
    observers = CallObservers([CallLog()])
    inbox = CallInbox(
        database,
        observers,
        {MEGAFON: parse_call_push, NOVOFON: stored_pushes(settings.zone)},
        stuck_after=settings.inbox_stuck_after,
    )
    context = WebContext(
        db=database,
        observer=observers,
        inbox=inbox,
        pbx=megafon_client(settings),
        megafon_crm_token=secret(settings.megafon_crm_token),
        api_token=secret(settings.api_token),
        novofon=novofon_client(settings),
        novofon_secret=secret(settings.novofon_secret),
        novofon_route_to_responsible=settings.novofon_route_to_responsible,
        novofon_calltracking_token=secret(settings.novofon_calltracking_token),
        timezone=settings.zone,
    )
    quiet_protocol_errors()
    app = web.Application(
        middlewares=[json_errors, api.bearer_auth], client_max_size=MAX_BODY_BYTES
    )
    app[CONTEXT] = context
    context.health.add("inbox", inbox.health)
    context.scrape_hooks.append(ops.queue_gauges(context))
    for shape in QUEUES[1:]:  # the inbox has its own check (it knows its loops)
        context.health.add(shape.name, queue_health(database, shape, settings.queue_stuck_after))
    leads_room = build_leads(
        settings,
        database,
        registry=context.metrics.registry,
        clock=clock,
        observer=context.lead_observers,
    )
    app[LEADS] = leads_room
    context.leads = leads_room.service
    context.jobs = OutboxWorker(
        database,
        {RECORDING_JOB: RecordingFetcher(context.novofon, inbox)} if context.novofon else {},
        clock=leads_room.worker.clock,
        policy=leads_room.worker.policy,
        metrics=leads_room.metrics,
    )
    jobs = context.jobs

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await upgrade(database)
        await inbox.start()
        jobs_task = asyncio.create_task(jobs.run(), name="jobs-worker") if jobs.sinks else None
        yield
        if jobs_task is not None:
            jobs.stop()
            await end_task(jobs_task, grace=10.0)
        await inbox.stop()
        if context.pbx is not None:
            await context.pbx.close()
        if context.novofon is not None:
            await context.novofon.close()
        if db is None:
            await database.dispose()

    app.cleanup_ctx.append(lifetime)
    # Leases are taken before any loop starts and given back after they all stopped.
    leadership = singletons.Leadership(database)
    app[LEADERSHIP] = leadership
    app.cleanup_ctx.append(lambda _app: leadership.lifetime())
    setup_tracking(
        app,
        settings,
        tracking,
        database,
        observers,
        http=role.http,
        widgets=Widgets(leads_room.service, scenarios.hours, context.metrics.registry, clock),
    )
    # After tracking's observer: a call is attributed to its visit before leads decide on it.
    observers.add(leads_room.service)
    if role.background:
        leads_room.guard(leadership)
        app.cleanup_ctx.append(lambda _app: leads_room.lifetime())
        setup_rollup(app, database, leadership, clock)  # the tracking report's closed hours
    if role.http:
        app.add_routes(megafon.routes)
        app.add_routes(novofon.routes)
        app.add_routes(api.routes)
        app.add_routes(managers_api.routes)
        app.add_routes(leads.routes)
        setup_reports(app, settings, database, scenarios.hours)  # /reports, /api/v1/reports
        openapi.setup(app)
    app.add_routes(ops.routes)
    # Telegram (issue 3): None without TRUBKA_TELEGRAM_TOKEN. Appended after `lifetime`, so
    # its cleanup (stop polling, the send queue) runs before the PBX client and DB close.
    messages = MessageObservers()
    telegram = None
    if settings.telegram_token is not None:
        # Imported only when used: aiogram's types take seconds to load.
        from bot.telegram.wiring import TELEGRAM, build_telegram

        telegram = build_telegram(
            settings,
            database,
            observers,
            context.dialers,
            messages=messages,
            health=context.health,
            registry=context.metrics.registry,
        )
        if telegram is not None:
            app[TELEGRAM] = telegram
            telegram.register(app, role, leadership)
            # `/start v<token>` from the site's messenger links (handlers/telegram/visit_start.py).
            telegram.dispatcher["visit_chats"] = visit_chats(
                settings, tracking, database, leads_room.service
            )
    # Scenarios (issue 6): after Telegram, so the scheduler stops before the send queue.
    setup_scenarios(
        app,
        settings,
        scenarios,
        database,
        calls=observers,
        messages=messages,
        leads=context.lead_observers,
        pbx=context.pbx,
        telegram=TelegramOutlet(settings.telegram_managers_chat_id, telegram.sender.wake)
        if telegram is not None
        else None,
        registry=context.metrics.registry,
        clock=clock,
        lead_maker=ScenarioLeads(leads_room.service),
        leadership=leadership if role.background else None,
    )
    return app
