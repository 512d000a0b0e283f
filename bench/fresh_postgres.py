"""A PostgreSQL database made for one bench run and dropped after it.

A database reused across runs keeps what earlier runs left (a Telegram backlog of thousands of
notes, calls, clients), and the figures grow with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def admin(admin_url: str, statement: str) -> None:
    import asyncpg  # the driver the app uses on PostgreSQL

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """Create database `name` on the server of `admin_url` (dropped first if a crashed run left
    it); yields its URL; drops it afterwards."""
    await admin(admin_url, f"DROP DATABASE IF EXISTS {name}")
    await admin(admin_url, f"CREATE DATABASE {name}")
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
