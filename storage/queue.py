"""The durable queue engine: rows in a table, claimed with a lease and a token, retried, dead.

Every background queue of the house is a table with the same few columns, and this module is
the only code that claims, finishes, retries or revives their rows (the lead outbox, scenario
jobs, Telegram deliveries; the call inbox claims with SKIP LOCKED on its own, in `processed_at`
order, but speaks the same lifecycle: pending, done, dead and `revive`, retried by `RetryPolicy`).

A queue table has: an integer `id`; a `status` (`Status`); a due-time column (when a pending
row may run); `attempts`; `claim_token` and `lease_until`. A `QueueTable` names these columns
and which status means "claimed" for that table.

    QUEUE = QueueTable(OutboxItem.__table__, due="next_attempt_at", claimed=Status.DELIVERING)

    async with db.session() as session:                  # in the producer's own transaction
        await QUEUE.enqueue(session, {...row values...})   # ON CONFLICT DO NOTHING: idempotent
    rows = await QUEUE.claim(db, now=now, limit=20, lease=timedelta(minutes=5))
    for row in rows:                                     # no session is open here: deliver
        ...
        await QUEUE.complete(db, row.id, row.claim_token, now=now)          # or
        await QUEUE.fail(db, row.id, row.claim_token, row.attempts, give_up_at, policy, now=now,
                         rng=rng, error="HTTP 500", retry_after=None)

- `claim` is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`: two
  workers (two processes on PostgreSQL) never take the same row; on SQLite the write
  transaction (`BEGIN IMMEDIATE`, one writer) makes it atomic. A claimed row whose lease has
  passed (its worker died) is due again.
- Only the holder of the current token can finish a row (`complete`, `fail`, `release`,
  `update_claimed`): a worker whose lease was passed on changes nothing.
- `fail` schedules the next attempt with the `RetryPolicy` (exponential backoff with equal
  jitter, an upstream's Retry-After honoured) or marks the row dead (`DEAD`, or the table's
  own `dead` status: Telegram keeps "failed") after `give_up_at` or the policy's
  `max_attempts` tries; `revive` gives dead rows a fresh window.

How a queue adopts it (Telegram deliveries were the last to, storage/telegram_queue.py): its
table gets the columns above (a migration), it declares a `QueueTable`, enqueues in the
transaction that decides the send, claims with `claim(..., where=...)` (extra conditions) or
`claim(..., ids=...)` (the Telegram scheduler decides in memory, then claims exactly the rows
of the batch it chose and skips those it could not claim), and ends each row with `complete`
/ `fail` / `release` (back to pending, due at a given moment: a 429's wait; pass
`attempts=row.attempts - 1` to not count the claim as a try). The finishers take one id or the
ids of one claim (a coalesced send is settled in one statement). Its loop is a
`telephony.infra.worker.Worker` whose step returns 0 after a full batch, else the seconds until its
next row is due (or None: the idle poll).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among, among_param
from storage.db import Database
from storage.dialects import dialect_of, insert_for


class Status(StrEnum):
    """Every status a queued row can have (stored as these strings)."""

    PENDING = "pending"  # waiting; due at the table's due column
    DELIVERING = "delivering"  # claimed (outbox): a worker holds it until lease_until
    RUNNING = "running"  # claimed (scenario jobs)
    DONE = "done"
    SENT = "sent"  # done, for Telegram deliveries
    DEAD = "dead"  # retries gave up; last error kept
    FAILED = "failed"  # ended with an error that retrying cannot fix
    CANCELLED = "cancelled"  # no longer wanted when it came due
    DROPPED = "dropped"  # no longer needed (a Telegram escalation of a call someone took)


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed row is tried again, and when it is given up: past its `give_up_at` (a
    time window from `give_up_after`), or after `max_attempts` tries when that is set."""

    base_delay: float = 10.0
    max_delay: float = 1800.0
    give_up_after: timedelta = timedelta(hours=48)
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int | None = None

    def gives_up(self, attempts: int, next_at: datetime, give_up_at: datetime | None) -> bool:
        """Whether a row that failed its `attempts`-th try (next one at `next_at`) is dead."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return give_up_at is not None and next_at > give_up_at

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))

    def next_attempt(
        self,
        attempts: int,
        rng: random.Random,
        *,
        now: datetime,
        retry_after: float | None = None,
    ) -> datetime:
        delay = self.delay(attempts, rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return now + timedelta(seconds=delay)


@dataclass(frozen=True)
class QueueTable:
    """How one table is a queue: its due column, the status that means "claimed" and the one
    a row gets when its retries run out."""

    table: Table
    due: str
    claimed: Status
    order: tuple[str, ...] = ()  # claim order after the due time; id always last
    dead: Status = Status.DEAD  # what `fail` sets when retries give up (and `revive` undoes)
    # Claim statements built once (see `_claiming`).
    _statements: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def c(self, name: str) -> Any:
        return self.table.c[name]

    def due_now(self, now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
        """Pending and due, or claimed by a worker whose lease has passed."""
        return or_(
            and_(self.c("status") == Status.PENDING.value, self.c(self.due) <= now),
            and_(self.c("status") == self.claimed.value, self.c("lease_until") < now),
        )

    async def enqueue(self, session: AsyncSession, values: Mapping[str, Any]) -> int | None:
        """Add a row unless its unique key exists (idempotent producers). The id, or None."""
        dialect = dialect_of(session)
        statement = (
            insert_for(dialect)(self.table)
            .values(**{"status": Status.PENDING.value, "attempts": 0, **values})
            .on_conflict_do_nothing()
            .returning(self.c("id"))
        )
        new_id = (await session.exec(statement)).scalar_one_or_none()
        return int(new_id) if new_id is not None else None

    async def claim(
        self,
        db: Database,
        *,
        now: datetime,
        limit: int | None = None,
        lease: timedelta,
        where: Sequence[ColumnElement[bool]] = (),
        returning: Sequence[str] | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[Row[Any]]:
        """Claim up to `limit` due rows for `lease` or, with `ids`, exactly those of these rows
        that are still due (a scheduler that chose them in memory); they come back ordered by
        id, each with its `claim_token` (and the columns named in `returning`, default all)."""
        params: dict[str, Any] = {
            "claim_now": now,
            "claim_new_token": uuid.uuid4().hex,
            "claim_lease_until": now + lease,
        }
        async with db.session() as session:
            connection = await session.connection()
            if ids is not None:
                params["claim_ids"] = list(ids)
            else:
                if limit is None:
                    raise ValueError("claim: a limit or the ids to claim")
                due = and_(self.due_now(now), *where)
                order = [self.c(self.due), *(self.c(name) for name in self.order), self.c("id")]
                candidates = (
                    select(self.c("id"))
                    .where(due)
                    .order_by(*order)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                # Two statements in one transaction: PostgreSQL may run an `IN (SELECT … LIMIT
                # n FOR UPDATE SKIP LOCKED)` subquery more than once and claim more than `limit`.
                params["claim_ids"] = list((await connection.execute(candidates)).scalars().all())
                if not params["claim_ids"]:
                    return []
            statement = self._claiming(
                named=ids is not None,
                where=tuple(where),
                returning=None if returning is None else tuple(returning),
            )
            rows = list((await connection.execute(statement, params)).all())
        return sorted(rows, key=lambda row: int(row.id))

    def _claiming(
        self,
        *,
        named: bool,
        where: tuple[ColumnElement[bool], ...],
        returning: tuple[str, ...] | None,
    ) -> Any:
        """The claim's UPDATE, its values bound at run time (claim_now, claim_ids,
        claim_new_token, claim_lease_until); built once per shape with no extra conditions."""
        key = (named, returning)
        if not where and key in self._statements:
            return self._statements[key]
        due = and_(self.due_now(bindparam("claim_now")), *where)
        if named:
            # One statement: with no LIMIT, PostgreSQL running the subquery again cannot claim
            # more than the rows named (FOR UPDATE re-checks each row it locks). `due` only
            # inside: beside `id IN (…)` SQLite would scan the status index.
            chosen = select(self.c("id")).where(among_param(self.c("id"), "claim_ids"), due)
            claimable = self.c("id").in_(chosen.with_for_update(skip_locked=True))
        else:
            claimable = and_(among_param(self.c("id"), "claim_ids"), due)
        columns = (
            list(self.table.c)
            if returning is None
            else [self.c(name) for name in ("id", "claim_token", "attempts", *returning)]
        )
        statement = (
            update(self.table)
            .where(claimable)
            .values(
                status=self.claimed.value,
                claim_token=bindparam("claim_new_token"),
                lease_until=bindparam("claim_lease_until", type_=self.c("lease_until").type),
                attempts=self.c("attempts") + 1,
            )
            .returning(*columns)
        )
        if not where:
            self._statements[key] = statement
        return statement

    async def update_claimed(
        self, db: Database, row_id: int | Sequence[int], token: str | None, **values: Any
    ) -> int:
        """Change rows (one id, or the ids of one claim) only while this claim holds them (a
        lease may have passed them on). How many were changed: 0 for a stale token."""
        ids = [row_id] if isinstance(row_id, int) else list(row_id)
        if not ids:
            return 0
        async with db.session() as session:
            result = await session.exec(
                update(self.table)
                .where(
                    among(self.c("id"), ids),
                    self.c("claim_token") == token,
                    self.c("status") == self.claimed.value,
                )
                .values(**values)
            )
            return int(result.rowcount)

    async def complete(
        self,
        db: Database,
        row_id: int | Sequence[int],
        token: str | None,
        *,
        status: Status = Status.DONE,
        **values: Any,
    ) -> int:
        """End claimed rows (done, or another final status: cancelled, failed, sent, dropped);
        several ids of one claim go in one statement (a coalesced Telegram send)."""
        return await self.update_claimed(
            db, row_id, token, status=status.value, claim_token=None, lease_until=None, **values
        )

    async def release(
        self,
        db: Database,
        row_id: int | Sequence[int],
        token: str | None,
        *,
        due: datetime | None = None,
        **values: Any,
    ) -> int:
        """Back to pending, due at `due` (a wait, a postponement; None: as it was); the claim
        ends. Pass `attempts=row.attempts - 1` (or `attempts=QUEUE.c("attempts") - 1` for
        several rows) when the claim was not a try (a 429's wait, a row handed back unsent)."""
        moved = {} if due is None else {self.due: due}
        return await self.update_claimed(
            db,
            row_id,
            token,
            status=Status.PENDING.value,
            claim_token=None,
            lease_until=None,
            **{**moved, **values},
        )

    async def fail(
        self,
        db: Database,
        row_id: int,
        token: str | None,
        *,
        attempts: int,
        give_up_at: datetime | None,
        policy: RetryPolicy,
        now: datetime,
        rng: random.Random,
        error: str,
        retry_after: float | None = None,
        error_column: str = "last_error",
    ) -> Status:
        """Schedule the next attempt, or mark the row dead (the table's `dead` status) past
        `give_up_at` or after the policy's `max_attempts`. Its new status."""
        next_at = policy.next_attempt(attempts, rng, now=now, retry_after=retry_after)
        status = self.dead if policy.gives_up(attempts, next_at, give_up_at) else Status.PENDING
        await self.update_claimed(
            db,
            row_id,
            token,
            status=status.value,
            claim_token=None,
            lease_until=None,
            **{self.due: next_at, error_column: error[:2000]},
        )
        return status

    async def revive(
        self,
        db: Database,
        *,
        now: datetime,
        give_up_at: datetime | None = None,
        row_id: int | None = None,
    ) -> int:
        """Give dead rows (one, or all) a fresh retry window. The number revived."""
        statement = update(self.table).where(self.c("status") == self.dead.value)
        if row_id is not None:
            statement = statement.where(self.c("id") == row_id)
        values: dict[str, Any] = {"status": Status.PENDING.value, "attempts": 0, self.due: now}
        if give_up_at is not None:
            values["give_up_at"] = give_up_at
        async with db.session() as session:
            return int((await session.exec(statement.values(**values))).rowcount)

    async def next_due(self, db: Database) -> datetime | None:
        """When the earliest pending row comes due (None: nothing pending)."""
        async with db.read() as session:
            value: datetime | None = await session.scalar(
                select(func.min(self.c(self.due))).where(self.c("status") == Status.PENDING.value)
            )
        return value
