"""Alembic, driven from code: `trubka db upgrade` and `serve` call `upgrade()`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, ProgrammingError

from storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x7472756B6261  # "trubka": the advisory lock migrations run under
# The newest migration (tests/test_migrations.py checks it is the scripts' one head): a database
# already at it is seen to be so without importing alembic.
HEAD = "0019_telegram_unsettled"


@contextmanager
def _without_pygments() -> Iterator[None]:
    """Alembic imported without pygments, which mako (its templates) loads when installed.

    Only for mako's HTML error pages, which alembic never renders: dozens of lexers, ~5 MB of
    every `serve`'s peak RSS. pygments comes with the test tools only; this makes a development
    virtualenv measure like the production image.
    """
    absent = "pygments" not in sys.modules
    if absent:
        sys.modules["pygments"] = None  # type: ignore[assignment]  # `import pygments` fails
    try:
        yield
    finally:
        if absent and sys.modules.get("pygments") is None:
            del sys.modules["pygments"]


def alembic_config(url: str) -> Config:
    with _without_pygments():  # imported here: only the commands that migrate need alembic
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def stored_revisions(db: Database) -> set[str]:
    """The revisions the database is at (none: nothing applied yet, a new database)."""
    async with db.engine.connect() as connection:
        try:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except (OperationalError, ProgrammingError):  # no such table (a connection error recurs)
            return set()
        return {row[0] for row in result}


async def at_head(db: Database) -> bool:
    return await stored_revisions(db) == {HEAD}


async def upgrade(db: Database, revision: str = "heads") -> None:
    """Apply migrations on the database's own engine (works inside a running event loop).

    Nothing to apply (the usual start): alembic (~7 MB, its scripts, mako) is not imported."""
    if revision == "heads" and await at_head(db):
        return

    def _run(connection: Connection) -> None:
        config = alembic_config(db.url)
        from alembic import command

        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together migrate one after the other; a transaction-level lock
            # is released at commit and works behind PgBouncer. (SQLite: BEGIN IMMEDIATE.)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        await connection.run_sync(_run)
