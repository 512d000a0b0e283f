"""The durable outbox: one row per (sink, key), delivered at least once, claimed exclusively.

A worker claims due rows in one atomic UPDATE … RETURNING: on PostgreSQL the candidate rows are
selected `FOR UPDATE SKIP LOCKED`, so two workers never take the same row; on SQLite the
statement runs under `BEGIN IMMEDIATE` (one writer at a time), which makes it atomic there too.
A claim is a lease: a worker that dies mid-delivery leaves the row to be claimed again when the
lease ends. Only the holder of the current claim token can finish a row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.leads_models import OutboxItem
from storage.queue import QueueTable, RetryPolicy, Status
from telephony.infra.clock import Clock
from telephony.infra.worker import Worker
from telephony.leads.metrics import LeadMetrics

log = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "Status"]  # RetryPolicy lives in storage.queue; kept importable here
PENDING, DELIVERING, DONE, DEAD = Status.PENDING, Status.DELIVERING, Status.DONE, Status.DEAD
QUEUE = QueueTable(
    OutboxItem.__table__,  # type: ignore[attr-defined]
    due="next_attempt_at",
    claimed=Status.DELIVERING,
)
_CLAIMED_COLUMNS = ("sink", "key", "payload", "lead_id", "call_id", "give_up_at")


class DeliveryError(Exception):
    """A delivery failed and should be retried; `retry_after` is the upstream's own hint."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds until its lease ends."""

    id: int
    sink: str
    key: str
    payload: dict[str, Any]
    attempts: int
    claim_token: str
    lead_id: int | None
    call_id: int | None
    give_up_at: datetime


class Sink(Protocol):
    async def deliver(self, item: Claimed) -> str | None:
        """Deliver or raise DeliveryError; the returned text is kept as the row's result."""
        ...


async def enqueue(
    session: AsyncSession,
    sink: str,
    key: str,
    payload: Mapping[str, Any],
    *,
    now: datetime,
    policy: RetryPolicy,
    lead_id: int | None = None,
    call_id: int | None = None,
) -> int | None:
    """Add a row unless (sink, key) exists. The new id, or None for a repeat."""
    return await QUEUE.enqueue(
        session,
        {
            "sink": sink,
            "key": key,
            "lead_id": lead_id,
            "call_id": call_id,
            "payload": json.dumps(payload, ensure_ascii=False),
            "next_attempt_at": now,
            "give_up_at": now + policy.give_up_after,
            "created_at": now,
        },
    )


async def claim(
    db: Database, sinks: Iterable[str], *, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    rows = await QUEUE.claim(
        db,
        now=now,
        limit=limit,
        lease=lease,
        where=[col(OutboxItem.sink).in_(list(sinks))],
        returning=_CLAIMED_COLUMNS,
    )
    return [
        Claimed(
            id=row.id,
            sink=row.sink,
            key=row.key,
            payload=json.loads(row.payload),
            attempts=row.attempts,
            claim_token=row.claim_token,
            lead_id=row.lead_id,
            call_id=row.call_id,
            give_up_at=row.give_up_at,
        )
        for row in rows
    ]


async def complete(db: Database, item: Claimed, *, now: datetime, result: str | None) -> bool:
    done = await QUEUE.complete(
        db, item.id, item.claim_token, delivered_at=now, result=result, last_error=None
    )
    return bool(done)


async def fail(
    db: Database,
    item: Claimed,
    error: DeliveryError,
    *,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> str:
    """Schedule the next attempt, or mark the row dead after the give-up moment. Its new status."""
    return await QUEUE.fail(
        db,
        item.id,
        item.claim_token,
        attempts=item.attempts,
        give_up_at=item.give_up_at,
        policy=policy,
        now=now,
        rng=rng,
        error=error.message,
        retry_after=error.retry_after,
    )


async def stats(db: Database) -> dict[str, dict[str, int]]:
    """Counts per sink: pending (never failed), failed (pending after a failure), delivering,
    done, dead."""
    state = func.coalesce(col(OutboxItem.status), "")
    failed = and_(col(OutboxItem.status) == PENDING, col(OutboxItem.attempts) > 0)
    async with db.read() as session:
        rows = (
            await session.exec(
                select(OutboxItem.sink, state, failed, func.count())
                .group_by(col(OutboxItem.sink), state, failed)
                .order_by(col(OutboxItem.sink))
            )
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for sink, status, was_failed, count in rows:
        name = "failed" if was_failed else status
        per_sink = counts.setdefault(
            sink, dict.fromkeys((PENDING, "failed", DELIVERING, DONE, DEAD), 0)
        )
        per_sink[name] = per_sink.get(name, 0) + int(count)
    return counts


async def problem_rows(db: Database, *, limit: int = 50) -> list[OutboxItem]:
    """Dead rows and rows that failed at least once, newest first."""
    async with db.read() as session:
        rows = await session.exec(
            select(OutboxItem)
            .where(
                or_(
                    col(OutboxItem.status) == DEAD,
                    and_(col(OutboxItem.status) == PENDING, col(OutboxItem.attempts) > 0),
                )
            )
            .order_by(col(OutboxItem.id).desc())
            .limit(limit)
        )
        return list(rows.all())


async def retry_dead(
    db: Database, *, now: datetime, policy: RetryPolicy, row_id: int | None = None
) -> int:
    """Give dead rows (one, or all) a fresh retry window. The number revived."""
    return await QUEUE.revive(db, now=now, give_up_at=now + policy.give_up_after, row_id=row_id)


class OutboxWorker:
    """Delivers due rows of its sinks; `run()` loops until `stop()`, `run_once()` is one pass."""

    def __init__(
        self,
        db: Database,
        sinks: Mapping[str, Sink],
        *,
        clock: Clock,
        policy: RetryPolicy,
        metrics: LeadMetrics,
        batch_size: int = 20,
        poll_interval: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.sinks = dict(sinks)
        self.clock = clock
        self.policy = policy
        self.metrics = metrics
        self.batch_size = batch_size
        self.rng = rng or random.Random()
        self._passes = 0  # run_once() calls in progress in this process (drain waits for them)
        self._idle = asyncio.Condition()
        self._ticks = 0
        self.worker = Worker("outbox-worker", self._step, idle_poll=poll_interval)

    def wake(self) -> None:
        """New rows were enqueued in this process: look now instead of at the next poll."""
        self.worker.wake()

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them. The number of rows handled."""
        if not self.sinks:
            return 0
        self._passes += 1
        try:
            items = await claim(
                self.db,
                self.sinks,
                now=self.clock.now(),
                limit=self.batch_size,
                lease=self.policy.lease,
            )
            await asyncio.gather(*(self._deliver(item) for item in items))
            return len(items)
        finally:
            self._passes -= 1
            async with self._idle:
                self._idle.notify_all()

    async def drain(self) -> int:
        """Passes until nothing is due and no pass of this process's own loop is still
        delivering (tests, the CLI)."""
        total = 0
        while True:
            handled = await self.run_once()
            total += handled
            if self._passes:
                async with self._idle:
                    await self._idle.wait_for(lambda: self._passes == 0)
            elif not handled:
                return total

    async def _step(self) -> float | None:
        handled = await self.run_once()
        if self._ticks % 30 == 0 and self.sinks:
            await self.refresh_gauges()
        self._ticks += 1
        return 0 if handled >= self.batch_size else None

    async def _deliver(self, item: Claimed) -> None:
        sink = self.sinks[item.sink]
        try:
            result = await sink.deliver(item)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # a bug in a sink must not kill the worker or lose the row
            log.exception("outbox %s row %s: unexpected error", item.sink, item.id)
            error = DeliveryError(f"internal error: {exc.__class__.__name__}")
        else:
            if await complete(self.db, item, now=self.clock.now(), result=result):
                self.metrics.delivered.labels(item.sink).inc()
            return
        status = await fail(
            self.db, item, error, now=self.clock.now(), policy=self.policy, rng=self.rng
        )
        if status == DEAD:
            self.metrics.dead.labels(item.sink).inc()
            log.error("outbox %s row %s is dead: %s", item.sink, item.id, error.message)
        else:
            self.metrics.failures.labels(item.sink).inc()
            log.warning(
                "outbox %s row %s attempt %s failed: %s",
                item.sink,
                item.id,
                item.attempts,
                error.message,
            )

    async def refresh_gauges(self) -> None:
        for sink, states in (await stats(self.db)).items():
            for state, count in states.items():
                self.metrics.rows.labels(sink, state).set(count)

    def stop(self) -> None:
        """Ask `run()` to return after the current pass (no delivery is cut in half)."""
        self.worker.request_stop()

    async def run(self) -> None:
        await self.worker.run()
