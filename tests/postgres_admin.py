"""A PostgreSQL database made for one test or bench run and dropped after it (the benches
import it as they import tests/fakes).

A database reused across runs keeps what earlier runs left (a Telegram backlog of thousands of
notes, calls, clients), and the figures grow with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL of ours as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def admin(url: str, statement: str) -> None:
    """Run one statement (CREATE or DROP DATABASE) on the server of `url`, outside a
    transaction, through asyncpg (the driver the app uses on PostgreSQL)."""
    import asyncpg

    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def sibling_url(url: str, name: str) -> str:
    """The URL of database `name` on the same server as `url` (its query kept: a Unix socket's
    directory rides in it, `?host=/var/run/postgresql`)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(url: str, name: str) -> str:
    """Database `name` made new on the server of `url` (dropped first if a crashed run left it);
    its URL."""
    await admin(url, f'DROP DATABASE IF EXISTS "{name}"')
    await admin(url, f'CREATE DATABASE "{name}"')
    return sibling_url(url, name)


async def drop_database(url: str, name: str) -> None:
    await admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(url: str, name: str) -> AsyncIterator[str]:
    """`create_database`, yielding its URL; dropped afterwards."""
    created = await create_database(url, name)
    try:
        yield created
    finally:
        await drop_database(url, name)
