"""Scenario jobs are a durable queue (storage.queue): each job is run by one worker, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.db import Database
from storage.queue import QueueTable, Status
from storage.scenario_models import ScenarioJob

JOBS = QueueTable(
    ScenarioJob.__table__,  # type: ignore[attr-defined]
    due="due_at",
    claimed=Status.RUNNING,
)


async def claim_due(
    db: Database, now: datetime, *, limit: int = 20, lease: timedelta
) -> list[ScenarioJob]:
    """Mark up to `limit` due jobs "running" until now+lease and return them.

    A job left "running" past its lease (its process died mid-run) is due again; only the
    holder of its `claim_token` can move it on (storage.queue).
    """
    rows = await JOBS.claim(db, now=now, limit=limit, lease=lease)
    return [ScenarioJob.model_validate(dict(row._mapping)) for row in rows]


async def next_due(db: Database) -> datetime | None:
    return await JOBS.next_due(db)
