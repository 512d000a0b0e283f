"""Lease rows with a fencing epoch: what must run in one process at a time (the Telegram
sender, polling, Metrika batches, the scenario scheduler, sweeps) runs where the row says.

Each take or renew is one UPDATE (or one INSERT for a new name) in its own short transaction:
no session-level advisory lock, so it works behind PgBouncer in transaction mode, and on
SQLite. The epoch grows every time the row changes hands, so a holder that was paused past its
expiry can tell (`still_held`) that it was replaced before it writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.db import Database
from storage.types import UTCDateTime, utcnow


class WorkerLease(SQLModel, table=True):
    __tablename__ = "worker_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    epoch: int = Field(default=1)
    expires_at: datetime = Field(sa_type=UTCDateTime)


async def take(
    db: Database, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None
) -> int | None:
    """Take the lease (free or expired) or renew it (ours). Returns the epoch while we hold it,
    None while someone else does. Taking it from another holder increases the epoch."""
    now = now or utcnow()
    table = WorkerLease.__table__  # type: ignore[attr-defined]
    ours = table.c.holder == holder
    async with db.engine.begin() as connection:
        renewed = await connection.execute(
            update(table)
            .where(table.c.name == name, ours | (table.c.expires_at <= now))
            .values(
                epoch=case((ours, table.c.epoch), else_=table.c.epoch + 1),
                holder=holder,
                expires_at=now + ttl,
            )
            .returning(table.c.epoch)
        )
        epoch = renewed.scalar()
        if epoch is not None:
            return int(epoch)
        # A table module imports only the shared base (tests/test_schema_imports.py), so not
        # storage.dialects: its own two-way choice.
        insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        created = await connection.execute(
            insert(table)
            .values(name=name, holder=holder, epoch=1, expires_at=now + ttl)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(table.c.epoch)
        )
        epoch = created.scalar()
        return None if epoch is None else int(epoch)


async def release(db: Database, name: str, holder: str, epoch: int) -> None:
    """Hand the lease back at once (a clean stop), so the next holder need not wait it out."""
    table = WorkerLease.__table__  # type: ignore[attr-defined]
    async with db.engine.begin() as connection:
        await connection.execute(
            update(table)
            .where(table.c.name == name, table.c.holder == holder, table.c.epoch == epoch)
            .values(expires_at=utcnow())
        )


async def still_held(db: Database, name: str, holder: str, epoch: int) -> bool:
    """The fencing check: is the row still ours, at our epoch, and not expired?"""
    table = WorkerLease.__table__  # type: ignore[attr-defined]
    async with db.engine.begin() as connection:
        found = await connection.execute(
            select(table.c.name).where(
                table.c.name == name,
                table.c.holder == holder,
                table.c.epoch == epoch,
                table.c.expires_at > utcnow(),
            )
        )
        return found.first() is not None


async def holders(db: Database) -> dict[str, tuple[str, int, datetime]]:
    """name → (holder, epoch, expires_at), for operators and tests."""
    async with db.engine.begin() as connection:
        rows = (
            await connection.execute(select(WorkerLease.__table__))  # type: ignore[attr-defined]
        ).all()
    return {row.name: (row.holder, row.epoch, row.expires_at) for row in rows}
