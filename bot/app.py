"""The app factory: `build_app` sets the features up, in order, on one application.

Why this order (each `setup_*` says what it needs): the database first (the schema is upgraded
before anything reads it, disposed of after everything stopped); the leads room is built before
the calls (their jobs queue shares its outbox); the calls' inbox starts before the leases are
taken; leases before every guarded loop; Telegram after the calls (it stops before the PBX
clients close); the scenarios last (their scheduler stops before Telegram's send queue).
The order of the call pipeline's steps is not decided here: see telephony/calls/pipeline.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.access import retention_config, setup_access
from bot.calls import setup_calls
from bot.channels import setup_channels
from bot.leads import ScenarioLeads, leads_config, serve_leads, setup_leads
from bot.ops import setup_ops
from bot.reports import setup_reports, setup_rollup
from bot.roles import Role
from bot.scenarios.wiring import load_scenario_settings, setup_scenarios
from bot.settings import Settings
from bot.shell import Shell, new_shell, setup_database, setup_leadership
from bot.tracking import Widgets, load_tracking, setup_tracking, visit_chats
from handlers.web import openapi
from storage.db import Database
from telephony.calls.dialing import Dialers
from telephony.events import FanOut, MessageObserver, message_observers
from telephony.infra.clock import Clock
from telephony.scenarios.actions import TelegramOutlet
from telephony.tracking.chat_visits import WhatsAppVisitCodes


def check_files(settings: Settings) -> None:
    """trubka.toml (every section) and the scenario file; ConfigurationError names the key."""
    load_tracking(settings)
    leads_config(settings)
    load_scenario_settings(settings)
    retention_config(settings)


async def build_app(
    settings: Settings,
    *,
    db: Database | None = None,
    migrate: bool = True,
    clock: Clock | None = None,
    telegram_clock: Clock | None = None,
    role: Role = Role.ALL,
) -> web.Application:
    """`db` may be given by tests (already migrated); otherwise it is made from the settings.
    `clock` drives the lead outbox's retry times, scenario waits and working hours (tests move
    a fake one, often at another date); `telegram_clock` the Telegram send scheduler (see
    `bot.shell.Shell`). `role` (serve --role) says whether HTTP routes and background loops run
    here; the loops that must run once across processes are guarded by leases."""
    tracking = load_tracking(settings)  # a wrong trubka.toml stops here, before anything starts
    scenarios = load_scenario_settings(settings)  # so does a wrong scenario file
    retention = retention_config(settings)  # and a wrong [retention]
    shell = new_shell(settings, db=db, clock=clock, role=role, telegram_clock=telegram_clock)
    setup_database(shell, migrate=migrate, owned=db is None)
    setup_access(shell, retention)
    leads = setup_leads(shell)
    calls = setup_calls(shell, leads)
    setup_leadership(shell)
    setup_tracking(shell, tracking, Widgets(leads.service, scenarios.hours))
    serve_leads(shell, leads)
    setup_rollup(shell)
    setup_reports(shell, scenarios.hours)
    if role.http:
        openapi.setup(shell.app)  # after every /api/v1 route: it describes them
    setup_ops(shell)
    messages = message_observers()
    telegram = setup_telegram(shell, calls.dialers, messages)
    # The site's messenger links: `/start v<token>` in Telegram, the prefilled code in WhatsApp.
    chats = visit_chats(settings, tracking, shell.db, leads.service)
    if telegram is not None:
        from bot.telegram.wiring import TELEGRAM

        shell.app[TELEGRAM].dispatcher["visit_chats"] = chats
    if chats is not None:
        messages.add(WhatsAppVisitCodes(chats))
    setup_scenarios(
        shell,
        scenarios,
        messages=messages,
        leads=leads.service.observers,
        lead_maker=ScenarioLeads(leads.service),
        pbx=calls.pbx,
        telegram=telegram,
    )
    # SMS, WhatsApp, routing (issue 20): after Telegram and the scenarios.
    setup_channels(shell, messages=messages)
    return shell.app


def setup_telegram(
    shell: Shell, dialers: Dialers, messages: FanOut[MessageObserver]
) -> TelegramOutlet | None:
    """Telegram (None without TRUBKA_TELEGRAM_TOKEN); the scenarios' outlet to its send queue."""
    if shell.settings.telegram_token is None:
        return None
    # Imported only when used: aiogram's types take seconds to load.
    from bot.telegram.wiring import setup_telegram as setup_bot

    telegram = setup_bot(shell, dialers, messages)
    if telegram is None:
        return None
    return TelegramOutlet(shell.settings.telegram_managers_chat_id, telegram.sender.wake)
