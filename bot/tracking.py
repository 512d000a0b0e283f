"""Wiring call tracking into the app: its `[tracking]` settings, routes, pipeline steps, numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.config import load_file_config
from bot.settings import ConfigurationError, Settings
from bot.shell import Shell
from handlers.web import tracking as tracking_web
from telephony.tracking import TrackingAttributor, TrackingConfig, check, sync_numbers
from telephony.tracking.config import ConfigProblem
from telephony.tracking.guard import RequestBudget
from telephony.tracking.script import render_tracker
from telephony.tracking.short_calls import ShortCallFlagger


def load_tracking(settings: Settings) -> TrackingConfig:
    """`[tracking]` of trubka.toml; ConfigurationError names the wrong key."""
    config = load_file_config(settings).section("tracking", TrackingConfig)
    try:
        check(config)
    except ConfigProblem as exc:
        raise ConfigurationError(str(exc)) from None
    return config


def setup_tracking(shell: Shell, config: TrackingConfig) -> None:
    """The tracker script and its routes; when on, the pipeline's `tracking` and `fraud` steps
    and the pool's numbers synced at start."""
    app, db = shell.app, shell.db
    script = render_tracker(config, shell.settings.public_url).encode("utf-8")
    app[tracking_web.TRACKING] = tracking_web.TrackingWeb(
        config=config, script=script, budget=RequestBudget(config.limits)
    )
    if shell.role.http:
        app.middlewares.append(tracking_web.cors)
        app.add_routes(tracking_web.routes)
    if not config.enabled:
        return
    shell.pipeline.steps.tracking = TrackingAttributor(config)
    shell.pipeline.steps.fraud = ShortCallFlagger(config)

    async def numbers(_app: web.Application) -> AsyncIterator[None]:
        async with db.session() as session:
            await sync_numbers(session, config)
        yield

    app.cleanup_ctx.append(numbers)
