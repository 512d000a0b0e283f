"""Call-tracking queries, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tracking_models import TrackingLease, TrackingNumber


async def insert_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING for tables keyed by anything: True when the row is new."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key)
    )
    result = await session.exec(statement)
    return result.first() is not None


async def next_free_number(
    session: AsyncSession, pool: str, now: datetime
) -> TrackingNumber | None:
    """The free number of a pool that was released longest ago (never used ones first), locked.

    SKIP LOCKED: on PostgreSQL two visitors arriving together take two different numbers
    instead of waiting for each other; SQLite has one writer at a time anyway.
    """
    query = (
        select(TrackingNumber)
        .where(
            TrackingNumber.pool == pool,
            col(TrackingNumber.active).is_(True),
            col(TrackingNumber.held_until) <= now,
        )
        .order_by(col(TrackingNumber.held_until), col(TrackingNumber.number))
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def lock_number(session: AsyncSession, number: str) -> TrackingNumber | None:
    query = (
        select(TrackingNumber)
        .where(TrackingNumber.number == number)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def newest_lease(session: AsyncSession, visit_id: str) -> TrackingLease | None:
    query = (
        select(TrackingLease)
        .where(TrackingLease.visit_id == visit_id)
        .order_by(col(TrackingLease.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def lease_at(session: AsyncSession, number: str, at: datetime) -> TrackingLease | None:
    """The lease that held a number at a moment: the newest one started by then still counting."""
    query = (
        select(TrackingLease)
        .where(
            TrackingLease.number == number,
            col(TrackingLease.started_at) <= at,
            col(TrackingLease.counts_until) >= at,
        )
        .order_by(col(TrackingLease.started_at).desc(), col(TrackingLease.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
