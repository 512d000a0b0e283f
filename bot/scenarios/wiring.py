"""Wiring the scenarios into the app: the file (TRUBKA_SCENARIOS), the engine as an observer
of calls, client messages and leads, and the scheduler loop inside `trubka serve`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.settings import ConfigurationError, Settings
from bot.singletons import SCENARIO_SCHEDULER, Leadership
from storage.db import Database
from telephony.events import CallObservers, LeadMaker, LeadObservers, MessageObservers
from telephony.infra.clock import Clock, SystemClock
from telephony.providers.megafon import MegafonClient
from telephony.scenarios.actions import TelegramOutlet
from telephony.scenarios.engine import ScenarioEngine, ScenarioMetrics
from telephony.scenarios.load import ScenarioError, Scenarios, load_scenarios, parse_scenarios

DEFAULT_PATH = Path("scenarios.yaml")
log = logging.getLogger("trubka.scenarios")
SCENARIOS = web.AppKey("trubka_scenarios", ScenarioEngine)


def load_scenario_settings(settings: Settings) -> Scenarios:
    """TRUBKA_SCENARIOS if set (it must exist), else ./scenarios.yaml if present, else no rules.
    A wrong file is a ConfigurationError naming the setting, the rule and the field."""
    path = Path(settings.scenarios) if settings.scenarios else DEFAULT_PATH
    if not path.exists():
        if settings.scenarios:
            raise ConfigurationError(f"TRUBKA_SCENARIOS: file not found: {path}")
        return parse_scenarios("rules: []", settings.zone)
    try:
        return load_scenarios(path, settings.zone)
    except ScenarioError as exc:
        raise ConfigurationError(f"TRUBKA_SCENARIOS: {exc}") from None


def setup_scenarios(
    app: web.Application,
    settings: Settings,
    scenarios: Scenarios,
    db: Database,
    *,
    calls: CallObservers,
    messages: MessageObservers,
    leads: LeadObservers,
    pbx: MegafonClient | None,
    telegram: TelegramOutlet | None,
    registry: CollectorRegistry,
    lead_maker: LeadMaker,
    clock: Clock | None = None,
    leadership: Leadership | None = None,
) -> ScenarioEngine:
    """`leadership` None: no scheduler loop here (`serve --role web`); else it runs while this
    process holds the "scenario-scheduler" lease."""
    engine = ScenarioEngine(
        db,
        scenarios,
        zone=settings.zone,
        clock=clock or SystemClock(),
        call_observer=calls,
        pbx=pbx,
        leads=lead_maker,
        telegram=telegram,
        metrics=ScenarioMetrics(registry),
    )
    calls.add(engine)
    messages.add(engine)
    leads.add(engine)
    app[SCENARIOS] = engine

    if scenarios.path is not None:
        log.info("scenarios: %d rules from %s", len(scenarios.rules), scenarios.path)

    if leadership is None:
        return engine
    guard = leadership.guard(SCENARIO_SCHEDULER)
    engine.gate = guard.held
    guard.on_gain(engine.wake)

    async def scheduler(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.run(), name="scenario-scheduler")
        yield
        await engine.stop(task)

    app.cleanup_ctx.append(scheduler)
    return engine
