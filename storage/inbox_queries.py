"""The inbox's dead pushes, in the queue engine's words (storage/queue.py `Status`).

`call_events` keeps the lifecycle in two columns: pending (`processed_at` unset), done
(`processed_at` set, no `error`), dead (`processed_at` and `error` set: applying it failed for
a reason retrying cannot fix). `revive` puts dead pushes back in line, as `QueueTable.revive`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import CallEvent
from storage.outcome import Lane
from storage.queue import Status
from storage.types import utcnow


def push_status(event: CallEvent) -> Status:
    """Pending, done or dead."""
    if event.processed_at is None:
        return Status.PENDING
    return Status.DEAD if event.error is not None else Status.DONE


async def dead_pushes(db: Database, *, limit: int = 100) -> list[CallEvent]:
    """The newest dead pushes first."""
    async with db.read() as session:
        query = (
            select(CallEvent)
            .where(col(CallEvent.error).is_not(None))
            .order_by(col(CallEvent.id).desc())
            .limit(limit)
        )
        return list((await session.exec(query)).all())


async def mark_dead(db: Database, event_id: int, error: str) -> int:
    """A pending push is dead, with its error (kept for `trubka inbox`)."""
    async with db.session() as session:
        result = await session.exec(
            update(CallEvent)
            .where(col(CallEvent.id) == event_id, col(CallEvent.processed_at).is_(None))
            .values(processed_at=utcnow(), error=error[:2000])
        )
        return int(result.rowcount)


async def revive(db: Database, event_id: int | None = None) -> int:
    """Put one dead push (or all of them, with None) back in line, so the inbox applies it
    again in its turn; returns how many were revived."""
    statement = update(CallEvent).where(col(CallEvent.error).is_not(None))
    if event_id is not None:
        statement = statement.where(col(CallEvent.id) == event_id)
    async with db.session() as session:
        result = await session.exec(statement.values(processed_at=None, error=None))
        return int(result.rowcount)


def _demote_statement() -> Any:
    events = CallEvent.__table__  # type: ignore[attr-defined]
    # Every pending push of the call, whatever its lane: with the lane in the condition,
    # SQLite searched the index of the lane (every pending live push) instead of the call's.
    pending = (
        select(events.c.id)
        .where(events.c.processed_at.is_(None), events.c.call_key == bindparam("ended_call"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(events)
        .where(events.c.id.in_(pending.scalar_subquery()))
        .values(lane=int(Lane.HISTORY))
    )


# Built once, run once per call (executemany): an IN list of the calls was a new statement
# for every number of calls, built (6% of the event loop in saturation), compiled and kept
# by SQLite's statement cache each time.
_DEMOTE = _demote_statement()


async def demote(session: AsyncSession, call_keys: Collection[str]) -> None:
    """The pending pushes of these calls go to the history lane (the call ended long ago:
    telephony/calls/lanes.py). Rows an applier holds are being applied: skipped, not waited for
    (on SQLite there is no row lock to skip).

    Core, on the session's connection: the ORM's bulk update first selected the rows to
    synchronize a session that holds none of them."""
    if call_keys:
        connection = await session.connection()
        await connection.execute(_DEMOTE, [{"ended_call": key} for key in call_keys])


async def lane_backlog(db: Database) -> dict[Lane, int]:
    """Pending pushes per lane (/metrics), the spooled ones included (storage/inbox_spool.py);
    every lane listed, 0 when empty."""
    async with db.read() as session:
        query = (
            select(CallEvent.lane, func.count())
            .where(col(CallEvent.processed_at).is_(None))
            .group_by(col(CallEvent.lane))
        )
        counts = {Lane(lane): int(count) for lane, count in (await session.exec(query)).all()}
    spooled = await db.spool.lanes() if db.spool is not None else {}
    return {lane: counts.get(lane, 0) + spooled.get(int(lane), 0) for lane in Lane}
