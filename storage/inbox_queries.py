"""The inbox's set-aside pushes: listed for an operator, put back in line after a fix."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from storage.db import Database
from storage.models import CallEvent


async def set_aside_pushes(db: Database, *, limit: int = 100) -> list[CallEvent]:
    """The newest set-aside pushes first."""
    async with db.read() as session:
        query = (
            select(CallEvent)
            .where(col(CallEvent.error).is_not(None))
            .order_by(col(CallEvent.id).desc())
            .limit(limit)
        )
        return list((await session.exec(query)).all())


async def put_back(db: Database, event_id: int | None = None) -> int:
    """Mark one set-aside push (or all of them, with None) as not applied, so the inbox applies
    it again in its turn; returns how many were put back."""
    statement = update(CallEvent).where(col(CallEvent.error).is_not(None))
    if event_id is not None:
        statement = statement.where(col(CallEvent.id) == event_id)
    async with db.session() as session:
        result = await session.exec(statement.values(processed_at=None, error=None))
        return int(result.rowcount)
