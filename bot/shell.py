"""What every feature's `setup_*` gets from `build_app`: the application being built and the
services the features share (frozen: a feature adds to the app, never to the shell)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot import singletons
from bot.roles import Role
from bot.settings import Settings, secret
from handlers.web import access
from handlers.web.bodies import MAX_BODY_BYTES
from handlers.web.context import WEB, WebCore
from handlers.web.errors import json_errors, quiet_protocol_errors
from storage.db import Database, is_memory
from storage.migrate import at_head, upgrade
from telephony.calls.pipeline import CallPipeline
from telephony.events import CallUpdate
from telephony.infra.clock import Clock

log = logging.getLogger("trubka")
# Where `bot` is imported from: a child process started here runs this same code.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[1])
LEADERSHIP = web.AppKey("trubka_leadership", singletons.Leadership)


@dataclass(frozen=True)
class Shell:
    app: web.Application
    settings: Settings
    db: Database
    role: Role
    # Drives the lead outbox's retry times, scenario waits and working hours (tests move a
    # fake one); None: the system clock.
    clock: Clock | None
    # Drives the Telegram send scheduler's budgets, waits and due times; apart because
    # deliveries are due from the moment they are stored (a real-time column default), so it
    # must not lie behind real time (tests give it one that skips its waits).
    telegram_clock: Clock | None
    web: WebCore
    # The call pipeline (telephony/calls/pipeline.py): each feature plugs its step in.
    pipeline: CallPipeline
    leadership: singletons.Leadership


class CallLog:
    """Logs every call change (ids and statuses only: no secrets, no personal data)."""

    async def call_updated(self, update: CallUpdate) -> None:
        call = update.call
        log.info(
            "call %s %s: %s status=%s", call.id, call.callid, update.trigger, call.status or "-"
        )


def new_shell(
    settings: Settings,
    *,
    db: Database | None,
    clock: Clock | None,
    role: Role,
    telegram_clock: Clock | None = None,
) -> Shell:
    """The application with its error handling and bearer auth, and the shared services."""
    database = db or Database(settings.database_url)
    quiet_protocol_errors()
    app = web.Application(
        middlewares=[json_errors, access.require_scope], client_max_size=MAX_BODY_BYTES
    )
    core = WebCore(db=database, api_token=secret(settings.api_token), timezone=settings.zone)
    app[WEB] = core
    leadership = singletons.Leadership(database)
    app[LEADERSHIP] = leadership
    return Shell(
        app=app,
        settings=settings,
        db=database,
        role=role,
        clock=clock,
        telegram_clock=telegram_clock,
        web=core,
        pipeline=CallPipeline(database, after=[CallLog()]),
        leadership=leadership,
    )


def setup_database(shell: Shell, *, migrate: bool, owned: bool) -> None:
    """First to start (the schema is upgraded before anything reads it), last to stop (the
    database is disposed of after every loop stopped); `owned`: made here, not by a test."""

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await upgrade_schema(shell.db)
        yield
        if owned:
            await shell.db.dispose()

    shell.app.cleanup_ctx.append(lifetime)


async def upgrade_schema(db: Database) -> None:
    """The app's schema upgrade. At head (the usual start): nothing, alembic is not imported.
    Behind: `trubka db upgrade` in a child process, so that the long-lived server never holds
    what migrating loads (alembic, mako, every script, the DDL: ~7 MB of `serve`'s peak RSS).
    An in-memory database exists only in this process: it is migrated here."""
    if await at_head(db):
        return
    if is_memory(db.url):
        await upgrade(db)
        return
    path = os.pathsep.join(filter(None, (_SOURCE_ROOT, os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "TRUBKA_DATABASE_URL": db.url, "PYTHONPATH": path}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "db", "upgrade", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"`trubka db upgrade` failed (exit {code}), its log above says why")


def setup_leadership(shell: Shell) -> None:
    """Leases are taken before any guarded loop starts and given back after they all stopped:
    set up after the database and calls, before the features whose loops need a lease."""
    shell.app.cleanup_ctx.append(lambda _app: shell.leadership.lifetime())
