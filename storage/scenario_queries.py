"""Claiming due scenario jobs: each job is run by one worker, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import col, select

from storage.db import Database
from storage.scenario_models import ScenarioJob


async def claim_due(
    db: Database, now: datetime, *, limit: int = 20, lease: timedelta
) -> list[ScenarioJob]:
    """Mark up to `limit` due jobs "running" until now+lease and return them.

    A job left "running" past its lease (its process died mid-run) is due again. PostgreSQL:
    FOR UPDATE SKIP LOCKED lets several processes claim side by side; SQLite: the write
    transaction (BEGIN IMMEDIATE) makes select-and-mark atomic.
    """
    async with db.session() as session:
        due = or_(
            (col(ScenarioJob.status) == "pending") & (col(ScenarioJob.due_at) <= now),
            (col(ScenarioJob.status) == "running") & (col(ScenarioJob.lease_until) <= now),
        )
        query = (
            select(ScenarioJob)
            .where(due)
            .order_by(col(ScenarioJob.due_at), col(ScenarioJob.id))
            .limit(limit)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        jobs = list((await session.exec(query)).all())
        if not jobs:
            return []
        await session.exec(
            update(ScenarioJob)
            .where(col(ScenarioJob.id).in_([job.id for job in jobs]))
            .values(
                status="running", lease_until=now + lease, attempts=col(ScenarioJob.attempts) + 1
            )
        )
        for job in jobs:
            job.status, job.lease_until = "running", now + lease
    return jobs


async def next_due(db: Database) -> datetime | None:
    async with db.session() as session:
        value = (
            await session.exec(
                select(func.min(ScenarioJob.due_at)).where(ScenarioJob.status == "pending")
            )
        ).one()
    return value
