"""The inbox's dead pushes, in the queue engine's words (storage/queue.py `Status`).

`call_events` keeps the lifecycle in two columns: pending (`processed_at` unset), done
(`processed_at` set, no `error`), dead (`processed_at` and `error` set: applying it failed for
a reason retrying cannot fix). `revive` puts dead pushes back in line, as `QueueTable.revive`.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from storage.db import Database
from storage.models import CallEvent
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
