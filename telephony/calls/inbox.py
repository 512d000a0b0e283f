"""The call inbox: a push is stored durably and answered at once, then applied in order.

Why: the PBX waits for our answer and documents no retries, so the answer must be fast and must
not depend on how long applying a push takes. Storing first also means nothing accepted is lost:
pushes not yet applied when the process stops are applied after the next start.

- `submit()` adds the raw push to a group commit: concurrent pushes share one INSERT and one
  transaction. A repeated push (same dedup key) is recognized there and changes nothing.
- each push is stored with its lane and call (telephony/calls/lanes.py): the processor applies
  the live lane (what a person waits for) before the history lane, and one call's pushes always
  in stored order, in short transactions (a time slice), so new pushes are never stuck behind
  a long batch or a replayed backlog; a push that fails is marked with its error without
  holding back the others. The call pipeline (telephony/calls/pipeline.py) decides in the same
  transaction and finishes after the commit.
- On PostgreSQL every process applies: a slice claims whole calls (storage/inbox_claim.py:
  `SKIP LOCKED` rows, an advisory lock per call), so two processes never apply one call at
  once or out of order. SQLite has one writer, hence one applier at a time.
- A push's lifecycle uses the queue engine's words (storage/queue.py `Status`): pending
  (`processed_at` unset), done (applied), dead (set aside with its `error`: its content cannot
  be applied); `revive` puts a dead push back in line. An operational error (lock timeout,
  dropped connection) says nothing about the push: it is retried by the engine's `RetryPolicy`
  and the push is dead only when the policy gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.inbox_claim import Claim, ClaimedPush, claim
from storage.inbox_queries import demote, mark_dead
from storage.inbox_queries import revive as revive_pushes
from storage.inbox_spool import inbox_rows
from storage.models import CallEvent
from storage.outcome import Lane
from storage.planner_statistics import PlannerStatistics
from storage.queries import ignore_many, insert_many_or_ignore, insert_many_or_ignore_now
from storage.queue import RetryPolicy
from storage.queue_stats import INBOX, queue_stats
from storage.types import utcnow
from telephony.calls.apply import CallPush, apply_push
from telephony.calls.apply_set import SlicePush, apply_slice
from telephony.calls.lanes import live_event, route
from telephony.calls.pipeline import CallPipeline, Decided
from telephony.events import CallUpdate
from telephony.infra.worker import Worker

log = logging.getLogger(__name__)

# Turns a stored push's fields back into the pushes to apply (one for MegaFon; a provider whose
# single notification means two things, like "ended" and "its outcome", may give several).
PushParser = Callable[[Mapping[str, str]], Sequence[CallPush]]


@dataclass
class _Submitted:
    values: dict[str, Any]
    done: asyncio.Future[bool]
    late_end: bool = False  # its call ended long ago: the call's pending live pushes are history


class CallInbox:
    def __init__(
        self,
        db: Database,
        pipeline: CallPipeline,
        parsers: Mapping[str, PushParser],
        *,
        slice_seconds: float | None = None,
        move_seconds: float = 0.5,
        gather_seconds: float | None = None,
        batch_limit: int = 200,
        poll_seconds: float = 1.0,
        stuck_after: float = 60.0,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self.pipeline = pipeline
        self._parsers = dict(parsers)
        self._spool = db.spool
        # SQLite, 50 ms: a set-wise slice of up to 200 pushes keeps up with 300 events/s (20 ms
        # slices fell behind). It holds SQLite's writer: pushes land in a file of their own
        # meanwhile (storage/inbox_spool.py), so answers do not wait for it.
        # PostgreSQL, 100 ms: a slice holds no one else's writes, and most of its time is its
        # statements' round trips, each waiting for a busy event loop, whatever its size. In
        # 50 ms such slices applied ~10 pushes each and fell behind 300 events/s.
        if slice_seconds is None:
            slice_seconds = SQLITE_SLICE if db.dialect == "sqlite" else POSTGRES_SLICE
        self._slice = slice_seconds
        # SQLite: how long a slice may move what landed before it claims (`_land`). Long enough
        # to move a replay's backlog in a few slices (a call ringing behind it waits for the
        # move), short enough that the other writers, the leases' renewals among them (1.67 s),
        # get the writer in between.
        self._move = move_seconds
        # A slice that emptied the inbox is followed by the next one `gather_seconds` after it
        # began at the earliest: what arrives meanwhile is applied together (`_process_step`).
        self._gather = GATHER if gather_seconds is None else gather_seconds
        self._next_slice_at = 0.0
        self._claimed = 0  # how many pushes the last slice asked for
        self._batch_limit = batch_limit
        # The applying loop is the house's one worker runner: woken when pushes are stored,
        # polling when idle (pushes stored by another process), stopped between slices.
        self._processor = Worker(
            "inbox-processor", self._process_step, idle_poll=poll_seconds, error_pause=poll_seconds
        )
        self._queue: list[_Submitted] = []
        self._queued = asyncio.Event()
        self._written = asyncio.Condition()
        self._processing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # Rows fetched per slice follow how many the last slice managed: no loading of
        # pushes that a short slice would not reach.
        self._fetch = 4
        # An operational failure is retried by this policy (its delay is the loop's pause);
        # the push is dead when the policy gives up.
        self.retry = retry or transient_retry(poll_seconds)
        self._rng = rng or random.Random()
        # Tries of the oldest push so far that failed for operational reasons. In memory: the
        # table has no attempts column (a restart gives the push a fresh count).
        self._attempts: dict[int, int] = {}
        self._retry_in: float | None = None
        self.dead_total = 0
        self._reached = 1  # pushes the current slice has started on (to replay one by one)
        self._busy = False  # the last claim found only calls another process was applying
        # /healthz calls the inbox stuck when its oldest unapplied push is older than this.
        self.stuck_after = stuck_after
        # PostgreSQL plans the claim from statistics that may predate a backlog: refreshed
        # while one waits (storage/planner_statistics.py).
        self._statistics = (
            PlannerStatistics(db, "call_events") if db.dialect == "postgresql" else None
        )

    def register(self, provider: str, parser: PushParser) -> None:
        self._parsers[provider] = parser

    async def submit(
        self,
        provider: str,
        fields: Mapping[str, str],
        key: str,
        *,
        command: str,
        event_type: str | None = None,
        secret_field: str | None = None,
        push: CallPush | None = None,
    ) -> bool:
        """Store a push durably; True if new, False if it was a duplicate (nothing changes).

        `push` is the parsed push the row holds: it decides the lane and the call (without it
        the row is history, its own call)."""
        payload = {k: v for k, v in fields.items() if k != secret_field}
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        received = utcnow()
        routing = route(provider, push, received)
        values = {
            "provider": provider,
            "dedup_key": key,
            "command": command[:32],
            "event_type": event_type[:32] if event_type else None,
            "payload": json.dumps(payload, ensure_ascii=False),
            "received_at": received,
            "lane": int(routing.lane),
            "call_key": routing.call_key,
        }
        self._queue.append(_Submitted(values, done, late_end=routing.late_end))
        self._queued.set()
        return await done

    async def start(self, *, process: bool = True) -> None:
        """Start storing; and applying, unless another process does that (`process=False`)."""
        self._tasks = [asyncio.create_task(self._write_loop(), name="inbox-writer")]
        if process:
            self._tasks.append(self._processor.start())

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Apply what is stored, within a grace period; what is left is applied after restart."""
        try:
            async with asyncio.timeout(grace_seconds):
                await self.drain()
        except Exception as exc:  # the database may be gone; stored pushes wait for the restart
            log.warning("inbox: stopped with pushes not yet applied: %s", exc.__class__.__name__)
        if self._processor.running:
            await self._processor.stop(grace=1.0)  # between two slices, not in one
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self, *, process: bool = True) -> None:
        """Wait until every submitted push is stored, and applied (tests, shutdown)."""
        while self._queue:
            async with self._written:
                await self._written.wait_for(lambda: not self._queue)
        while process and await self.process_once():
            pass

    async def _write_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                await self._write(batch)
            async with self._written:
                self._written.notify_all()

    async def _write(self, batch: list[_Submitted]) -> None:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for item in batch:  # one row per key: a push repeated within the batch is a duplicate
            rows.setdefault(_key(item), item.values)
        ended = {i.values["call_key"] for i in batch if i.late_end and i.values["call_key"]}
        try:
            try:
                inserted = await self._store(batch, rows, ended)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                # The server dropped the connection (a restart; idle connections alone are
                # pinged: storage/db.py). The PBX does not resend: once more, on a new one.
                log.warning("inbox: the database connection was lost; storing again")
                inserted = await self._store(batch, rows, ended)
        except Exception as exc:
            log.exception("inbox: storing %d pushes failed", len(batch))
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        # The processor is woken before the answers go out, so it takes the connection before
        # any request that follows an answer (a GET right after the webhook sees the push).
        self._processor.wake()
        for item in batch:
            key = _key(item)
            new = key in inserted and rows[key] is item.values
            if not item.done.done():
                item.done.set_result(new)

    async def _store(
        self,
        batch: list[_Submitted],
        rows: dict[tuple[str, str], dict[str, Any]],
        ended: set[str],
    ) -> set[tuple[str, str]]:
        """Store the batch's rows (late outcomes demote their calls' live pushes); the keys
        that were new."""
        if self._spool is not None:  # SQLite: the landing file, with its own writer
            late = {_key(item) for item in batch if item.late_end}
            return await self._spool.store(list(rows.values()), late)
        if not ended and self._db.dialect == "postgresql":
            # Nothing else to change with it: one statement, one round trip (each round
            # trip waits for the event loop, which the applier keeps busy).
            return await insert_many_or_ignore_now(
                self._db, CallEvent, list(rows.values()), ("provider", "dedup_key")
            )
        async with self._db.session() as session:
            inserted = await insert_many_or_ignore(
                session, CallEvent, list(rows.values()), ("provider", "dedup_key")
            )
            if ended:  # in the same commit: a replayed call never looks live
                await demote(session, ended)
        return inserted

    async def move_spooled(self) -> int:
        """Move what landed in the spool into `call_events`, in transactions of its own (before
        pushes are applied one by one, and in tests; a slice moves them in its own
        transaction); returns how many were moved. What lands meanwhile is left to the next
        slice once a move found less than a batch (a flood is not chased)."""
        moved = 0
        while True:
            async with self._db.session() as session:
                landed = await self._land(session)
            if landed is None:
                return moved
            assert self._spool is not None
            await self._spool.forget(landed[0])
            moved += landed[1]
            if landed[1] < _MOVE_AT_ONCE:
                return moved

    async def _land(self, session: AsyncSession) -> tuple[int, int] | None:
        """Copy what landed in the spool into `call_events` (in the order it was stored, so
        the claim picks the live lane from all of it; what had landed, for `move_seconds` at
        most, so the writer is given up between slices, also under a flood) in the caller's
        transaction; the last spooled id copied and how many, to be forgotten after the commit.
        A crash before forgetting copies them again: ignored by their dedup key."""
        if self._spool is None:
            return None
        await session.connection()  # the writer first: a request after an answer sees it applied
        began = time.monotonic()
        last, moved = 0, 0
        while moved < _MOVE_AT_MOST:
            spooled = await self._spool.oldest(_MOVE_AT_ONCE, after=last)
            if not spooled:
                break
            ended = {row.call_key for row in spooled if row.late_end and row.call_key}
            await ignore_many(session, CallEvent, inbox_rows(spooled))
            if ended:  # in the same commit: a replayed call never looks live
                await demote(session, ended)
            last, moved = spooled[-1].id, moved + len(spooled)
            # What lands meanwhile is the next slice's. Chasing a flood here held the writer for
            # as long as the flood lasted: no slice applied, and every other writer (the
            # leases, the Telegram sender, the API) waited it out.
            if len(spooled) < _MOVE_AT_ONCE or time.monotonic() - began > self._move:
                break
        return (last, moved) if moved else None

    async def _process_step(self) -> float | None:
        """One slice; at once again while there is work, else at the next wake or poll. Work
        held by another process (PostgreSQL) is looked at again after a slice's length.

        A slice costs about as many statements for 1 push as for 30, so under a steady stream
        applying a few pushes per slice, as they came, spent most of the applier's time on the
        slices themselves (2.2 ms of the event loop per push at 300 events/s, against 0.6 ms
        in slices of a backlog). A slice that took less than it asked for (it emptied the
        inbox) is followed by the next one `gather_seconds` after it began at the earliest:
        a push waits that long at most, and only while others arrive within it. A backlog is
        applied slice after slice, and a push after a quiet moment at once."""
        gathering = self._next_slice_at - time.monotonic()
        if gathering > 0:
            await asyncio.sleep(gathering)
        try:
            began = time.monotonic()
            if handled := await self.process_once():
                emptied = handled < self._claimed
                self._next_slice_at = began + self._gather if emptied else 0.0
                return 0
            return self._slice if self._busy else None
        except Exception as exc:  # the database is away: the pushes wait, /healthz tells
            log.warning("inbox: processing failed (%s); retrying shortly", _describe(exc))
            pause, self._retry_in = self._retry_in, None
            return self._processor.error_pause if pause is None else pause

    async def process_once(self) -> int:
        """Apply the oldest stored pushes for one time slice; returns how many were handled."""
        async with self._processing:
            self._retry_in = None
            try:
                handled, decided = await self._apply_slice()
            except Exception as exc:
                # Something in the slice failed and the whole slice was rolled back: apply the
                # pushes it reached one per transaction, so only the push that really fails is
                # set aside.
                log.warning(
                    "inbox: a slice failed (%s); applying its %d pushes one by one",
                    exc.__class__.__name__,
                    self._reached,
                )
                handled, decided = 0, []
                for _ in range(self._reached):
                    one, more = await self._apply_oldest_alone()
                    handled, decided = handled + one, decided + more
                    if not one:
                        break
            for each in decided:
                await self.pipeline.committed(each)
            return handled

    async def _claim(self, session: AsyncSession, limit: int) -> list[ClaimedPush]:
        """The pushes this slice may apply, in order (live lane first, a call's pushes in
        stored order, calls another process applies left out): storage/inbox_claim.py."""
        claimed: Claim = await claim(session, limit, postgres=self._db.dialect == "postgresql")
        self._busy = claimed.busy > 0 and not claimed.events
        return claimed.events

    async def _apply_slice(self) -> tuple[int, list[Decided]]:
        self._reached = 1
        async with self._db.session() as session:
            landed = await self._land(session)
            # Moving has a length of its own (`_land`): a backlog in the landing file would
            # otherwise shrink every slice's claim to nothing while it lasts.
            began = time.monotonic()
            self._claimed = self._claim_size()
            events = await self._claim(session, self._claimed)
            # Applied set-wise (telephony/calls/apply_set.py): a few statements for the slice.
            handled = self._reached = len(events)
            pushes = self._parse(events)
            updates = await apply_slice(session, pushes) if events else []
            _mark_replays(events, pushes, updates)
            # The pipeline's steps in the slice's transaction: no transaction of their own.
            decided = await self.pipeline.decide_many(session, updates)
        if landed is not None and self._spool is not None:
            await self._spool.forget(landed[0])
        if handled:
            # The next slice claims twice as many while slices stay within their time (fewer
            # transactions, rounds of more calls for the steps), half as many when one did not.
            if time.monotonic() - began <= self._slice:
                self._fetch = min(self._batch_limit, max(self._fetch, 2 * handled))
            else:
                self._fetch = max(2, handled // 2)
        if handled >= _BACKLOG_SLICE and self._statistics is not None:
            await self._statistics.refresh()  # after the sizing: not part of the slice's time
        return handled, decided

    def _claim_size(self) -> int:
        """A set-wise slice does not stop half-way, so its size is chosen before it starts. New
        pushes waiting to be stored go first (the PBX waits for our answer, and the slice's
        work shares the event loop with storing them; without the SQLite landing file, the
        writer too): while a few wait, a slice takes a few pushes (a slice per push would
        spend its time on its own transaction and fall behind)."""
        if self._queue:
            return min(self._fetch, _SLICE_WHILE_STORING)
        return self._fetch

    async def _apply_oldest_alone(self) -> tuple[int, list[Decided]]:
        """Apply the oldest push in its own transaction; if it fails, mark it dead in another
        one (the failed transaction is rolled back first, so marking always can work). Its
        pipeline steps run in savepoints: a failing step never makes the push dead."""
        events: list[ClaimedPush] = []
        event_id = 0
        provider = ""
        await self.move_spooled()  # the failed slice's move was rolled back with it
        try:
            async with self._db.session() as session:
                events = (await self._claim(session, 1))[:1]
                if not events:
                    return 0, []
                event = events[0]
                event_id, provider = event.id, event.provider
                updates = await self._apply(session, event)
                decided = [
                    await self.pipeline.decide(session, update_, alone=True) for update_ in updates
                ]
            self._attempts.pop(event_id, None)  # it went through after all
            return 1, decided
        except Exception as exc:
            if not events:
                raise  # reading failed: the database itself is in trouble; the loop retries
            if _transient(exc) and self._retry_later(event_id):
                raise
            failure = exc
        log.error(
            "inbox: push %s (%s) is dead: %s: %s",
            event_id,
            provider,
            failure.__class__.__name__,
            str(failure)[:300],
        )
        await mark_dead(self._db, event_id, f"{failure.__class__.__name__}: {failure}")
        self.dead_total += 1
        return 1, []

    def _retry_later(self, event_id: int) -> bool:
        """Count an operational failure of this push; whether the retry policy tries again
        (then the loop pauses for the policy's delay) or gives up (the push is dead)."""
        attempts = self._attempts.get(event_id, 0) + 1
        now = utcnow()
        next_at = self.retry.next_attempt(attempts, self._rng, now=now)
        if self.retry.gives_up(attempts, next_at, give_up_at=None):
            self._attempts.pop(event_id, None)
            return False
        self._attempts = {event_id: attempts}  # only the oldest push is ever retried
        self._retry_in = (next_at - now).total_seconds()
        return True

    def _parse(self, events: Sequence[ClaimedPush]) -> list[SlicePush]:
        pushes: list[SlicePush] = []
        for event in events:
            parser = self._parsers[event.provider]
            pushes.extend(
                (event.id, event.provider, push) for push in parser(json.loads(event.payload))
            )
        return pushes

    async def _apply(self, session: AsyncSession, event: ClaimedPush) -> list[CallUpdate]:
        parser = self._parsers[event.provider]
        return [
            await apply_push(session, push, event.id, event.provider)
            for push in parser(json.loads(event.payload))
        ]

    async def revive(self, event_id: int) -> bool:
        """Put a dead push back in line (after a fix); False when there is no such push."""
        found = await revive_pushes(self._db, event_id) > 0
        if found:
            self._processor.wake()
        return found

    async def health(self) -> str | None:
        """A problem for /healthz: the applying loop died, or the oldest push waits too long."""
        for task in self._tasks:
            if task.done():
                return f"{task.get_name()} stopped"
        age = await oldest_pending_age(self._db)
        if age is not None and age > self.stuck_after:
            return f"oldest unapplied push waits {age:.0f} s"
        return None


# Spooled pushes moved into `call_events` per statement (one executemany), and at most before
# a slice (with `move_seconds`: a flood faster than moving still lets slices run).
_MOVE_AT_ONCE = 1000
_MOVE_AT_MOST = 10_000
# The shortest time between the starts of two slices when the first emptied the inbox (seconds):
# pushes arriving meanwhile are applied together (`CallInbox._process_step`).
GATHER = 0.05
# How long a slice may take (seconds) before the next one claims half as many pushes.
SQLITE_SLICE = 0.05
POSTGRES_SLICE = 0.1
# Pushes a slice claims at most while pushes wait to be stored.
_SLICE_WHILE_STORING = 32
# A slice that applied this many pushes (or more) had a backlog to take them from.
_BACKLOG_SLICE = 32


def _mark_replays(
    events: Sequence[ClaimedPush], pushes: Sequence[SlicePush], updates: Sequence[CallUpdate]
) -> None:
    """A ringing or end stored in the history lane was moved there by its call's late outcome
    (telephony/calls/lanes.py): its update is a replay."""
    lanes = {event.id: event.lane for event in events}
    for (event_id, _provider, push), update in zip(pushes, updates, strict=True):
        if lanes.get(event_id) == Lane.HISTORY and live_event(push):
            update.replayed = True


def transient_retry(pause: float) -> RetryPolicy:
    """An operational error (lock timeout, dropped connection) is retried, backing off from the
    loop's pause, before the push is dead: it says nothing about the push itself."""
    return RetryPolicy(base_delay=pause, max_delay=8 * pause, max_attempts=6)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


async def oldest_pending_age(db: Database) -> float | None:
    """Seconds the oldest unapplied push has waited, in `call_events` or still in the SQLite
    landing file (None: nothing waits); the same figure as the inbox's /metrics gauge."""
    stats = await queue_stats(db, INBOX)
    return stats.oldest_due_seconds if stats.backlog else None


def _describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def _key(item: _Submitted) -> tuple[str, str]:
    return (item.values["provider"], item.values["dedup_key"])
