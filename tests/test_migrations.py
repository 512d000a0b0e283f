"""Alembic migrations build exactly the tables the models describe."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot import shell
from storage.db import Database
from storage.migrate import HEAD, alembic_config, at_head, stored_revisions
from tests.postgres_admin import fresh_database
from tests.test_megafon_call import run_cli


async def test_models_and_migrations_agree(any_db: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))

    async with any_db.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


async def test_db_upgrade_command_creates_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    env = {"TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    code, out, _ = await run_cli(env, "db", "upgrade")
    assert (code, out.strip()) == (0, "database is up to date")
    code, _, _ = await run_cli(env, "db", "upgrade")  # again: nothing to do
    assert code == 0
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert {
        "clients",
        "client_variables",
        "phone_index",
        "managers",
        "calls",
        "call_events",
        "dialog_messages",
    } <= tables
    assert journal == "wal"


def test_migrations_form_one_line() -> None:
    """One head: a migration written beside another (a branch) must be chained before landing."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert [rev.revision for rev in script.walk_revisions()][-1] == "0001"


def test_head_names_the_newest_migration() -> None:
    """`HEAD` lets a database at it skip alembic: a new migration must move it."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [HEAD]


async def test_a_new_database_is_not_at_head_and_a_migrated_one_is(
    tmp_path: Path, any_db: Database
) -> None:
    new = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        assert await stored_revisions(new) == set()
        assert not await at_head(new)
    finally:
        await new.dispose()
    assert await at_head(any_db)


async def test_processes_starting_together_on_a_new_database_all_succeed(
    tmp_path: Path, postgres_url: str
) -> None:
    """Four `db upgrade`s at once: SQLite waits for the lock (busy_timeout before WAL),
    PostgreSQL takes turns under an advisory lock; none fails, the schema is made once."""
    async with fresh_database(postgres_url, f"{postgres_url.rpartition('/')[2]}_fresh") as fresh:
        for url in (f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", fresh):
            env = {"TRUBKA_DATABASE_URL": url}
            results = await asyncio.gather(*(run_cli(env, "db", "upgrade") for _ in range(4)))
            assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for *_, err in results]


async def test_serve_migrates_in_a_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving process never runs alembic itself (it would hold what that loaded)."""

    async def in_this_process(_db: Database) -> None:
        raise AssertionError("migrated in the serving process")

    monkeypatch.setattr(shell, "upgrade", in_this_process)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        await shell.upgrade_schema(db)
        assert await at_head(db)
        await shell.upgrade_schema(db)  # at head: nothing to do, no child
    finally:
        await db.dispose()
