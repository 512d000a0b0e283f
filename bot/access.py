"""Wiring access: the bootstrap token from the settings, the app's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.config import load_file_config
from bot.settings import Settings
from bot.shell import Shell
from handlers.web import access
from handlers.web.access import AccessService
from storage.db import Database
from telephony.access.retention import RetentionConfig, RetentionSweep
from telephony.infra.clock import Clock, SystemClock


def access_service(settings: Settings, db: Database, clock: Clock | None = None) -> AccessService:
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    return AccessService(db=db, bootstrap=token or None, clock=clock or SystemClock())


def retention_config(settings: Settings) -> RetentionConfig:
    """`[retention]` of trubka.toml; ConfigurationError names the wrong key."""
    return load_file_config(settings).section("retention", RetentionConfig)


RETENTION = web.AppKey("trubka_retention", RetentionSweep)


def setup_retention(
    app: web.Application, config: RetentionConfig, db: Database, clock: Clock | None = None
) -> RetentionSweep | None:
    """The retention sweep on the one worker runner (idempotent: blanking twice is harmless,
    so it needs no lease)."""
    if not config.enabled:
        return None
    sweep = RetentionSweep(db, config, clock)
    app[RETENTION] = sweep

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = sweep.worker.start()
        yield
        await sweep.worker.stop(task=task)

    app.cleanup_ctx.append(lifetime)
    return sweep


def setup_access(shell: Shell, retention: RetentionConfig) -> None:
    """Named tokens and scopes (the middleware is the shell's), the reports' per-person logins,
    and, in the background role, the retention sweep."""
    service = access_service(shell.settings, shell.db, shell.clock)
    access.setup(shell.app, service, http=shell.role.http)
    if shell.role.background:
        setup_retention(shell.app, retention, shell.db, shell.clock)  # personal data past it
