"""Alembic, driven from code: `trubka db upgrade` and `serve` call `upgrade()`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_KEY = 0x7472756B6261  # "trubka": the advisory lock migrations run under


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(db: Database, revision: str = "heads") -> None:
    """Apply migrations on the database's own engine (works inside a running event loop)."""

    def _run(connection: Connection) -> None:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes starting together migrate one after the other; a transaction-level lock
            # is released at commit and works behind PgBouncer. (SQLite: BEGIN IMMEDIATE.)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        await connection.run_sync(_run)
