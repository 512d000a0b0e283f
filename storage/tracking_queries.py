"""Call-tracking queries, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.dialects import dialect_of, insert_for
from storage.models import Call
from storage.tracking_models import TrackingLease, TrackingNumber


async def insert_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING for tables keyed by anything: True when the row is new."""
    insert = insert_for(dialect_of(session))
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


async def live_leases(
    session: AsyncSession, *, now: datetime, address: str | None = None, network: str | None = None
) -> int:
    """How many leases taken from an address (or a network) are still shown at `now`."""
    query = select(func.count()).select_from(TrackingLease).where(col(TrackingLease.ends_at) > now)
    if address is not None:
        query = query.where(TrackingLease.address == address)
    if network is not None:
        query = query.where(TrackingLease.network == network)
    return int((await session.exec(query)).one())


async def suspected_fraud_calls(session: AsyncSession, since: datetime, until: datetime) -> int:
    """Calls flagged `suspected_fraud` that came in within [since, until): for reports."""
    query = select(func.count()).where(
        col(Call.suspected_fraud).is_(True),
        col(Call.created_at) >= since,
        col(Call.created_at) < until,
    )
    return int((await session.exec(query)).one())
