"""Wiring the scenarios into the app: the file (TRUBKA_SCENARIOS), the engine as the call
pipeline's `scenarios` step and an observer of client messages and leads, and the scheduler
loop inside `trubka serve`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from bot.settings import ConfigurationError, Settings
from bot.shell import Shell
from bot.singletons import SCENARIO_SCHEDULER
from telephony.events import FanOut, LeadMaker, LeadObserver, MessageObserver
from telephony.infra.clock import SystemClock
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
    shell: Shell,
    scenarios: Scenarios,
    *,
    messages: FanOut[MessageObserver],
    leads: FanOut[LeadObserver],
    lead_maker: LeadMaker,
    pbx: MegafonClient | None,
    telegram: TelegramOutlet | None,
) -> ScenarioEngine:
    """The pipeline's `scenarios` step and the observer of client messages and leads. Its
    scheduler loop runs in background roles while this process holds the "scenario-scheduler"
    lease (none in `serve --role web`)."""
    app = shell.app
    engine = ScenarioEngine(
        shell.db,
        scenarios,
        zone=shell.settings.zone,
        clock=shell.clock or SystemClock(),
        call_observer=shell.pipeline,
        pbx=pbx,
        leads=lead_maker,
        telegram=telegram,
        metrics=ScenarioMetrics(shell.web.metrics.registry),
    )
    shell.pipeline.steps.scenarios = engine
    messages.add(engine)
    leads.add(engine)
    app[SCENARIOS] = engine

    if scenarios.path is not None:
        log.info("scenarios: %d rules from %s", len(scenarios.rules), scenarios.path)

    if not shell.role.background:
        return engine
    guard = shell.leadership.guard(SCENARIO_SCHEDULER)
    engine.gate = guard.held
    guard.on_gain(engine.wake)

    async def scheduler(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.run(), name="scenario-scheduler")
        yield
        await engine.stop(task)

    app.cleanup_ctx.append(scheduler)
    return engine
