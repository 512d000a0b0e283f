"""Queries behind an attribution's confidence: every lease that could explain a call, and the
caller's earlier tracked visit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Call, CallAttribution
from storage.tracking_models import TrackingLease

# More candidates than this say nothing more: the number was busy.
MAX_CANDIDATES = 5


async def leases_at(session: AsyncSession, number: str, at: datetime) -> list[TrackingLease]:
    """The leases of a number still counting at a moment, newest first (the first one is what
    `lease_at` picks)."""
    query = (
        select(TrackingLease)
        .where(
            TrackingLease.number == number,
            col(TrackingLease.started_at) <= at,
            col(TrackingLease.counts_until) >= at,
        )
        .order_by(col(TrackingLease.started_at).desc(), col(TrackingLease.id).desc())
        .limit(MAX_CANDIDATES)
    )
    return list((await session.exec(query)).all())


async def earlier_visit_of_caller(
    session: AsyncSession, phone: str, call_id: int, since: datetime, until: datetime
) -> str | None:
    """The visit of this caller's newest earlier call that was tied to a visit, in a window."""
    query = (
        select(CallAttribution.visit_id)
        .join(Call, col(Call.id) == col(CallAttribution.call_id))
        .where(
            Call.phone == phone,
            col(Call.id) != call_id,
            col(Call.started_at) >= since,
            col(Call.started_at) <= until,
            col(CallAttribution.visit_id).is_not(None),
        )
        .order_by(col(Call.started_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
