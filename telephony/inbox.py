"""The call inbox: a push is stored durably and answered at once, then applied in order.

Why: the PBX waits for our answer and documents no retries, so the answer must be fast and must
not depend on how long applying a push takes. Storing first also means nothing accepted is lost:
pushes not yet applied when the process stops are applied after the next start.

- `submit()` adds the raw push to a group commit: concurrent pushes share one INSERT and one
  transaction. A repeated push (same dedup key) is recognized there and changes nothing.
- the processor applies stored pushes oldest first, in short transactions (a time slice), so
  new pushes are never stuck behind a long batch; each push in a savepoint, so a push that
  fails is marked with its error without holding back the others. Observers are told after
  the commit. On PostgreSQL several processes may share the inbox (rows claimed with
  SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import CallEvent
from storage.queries import insert_many_or_ignore
from storage.types import utcnow
from telephony.calls import CallPush, apply_push, deferred_writes
from telephony.notify import CallObserver, CallUpdate

log = logging.getLogger(__name__)

# Turns a stored push's fields back into the pushes to apply (one for MegaFon; a provider whose
# single notification means two things, like "ended" and "its outcome", may give several).
PushParser = Callable[[Mapping[str, str]], Sequence[CallPush]]


@dataclass
class _Submitted:
    values: dict[str, Any]
    done: asyncio.Future[bool]


class CallInbox:
    def __init__(
        self,
        db: Database,
        observer: CallObserver,
        parsers: Mapping[str, PushParser],
        *,
        slice_seconds: float = 0.02,
        batch_limit: int = 50,
        poll_seconds: float = 1.0,
    ) -> None:
        self._db = db
        self._observer = observer
        self._parsers = dict(parsers)
        self._slice = slice_seconds
        self._batch_limit = batch_limit
        self._poll = poll_seconds
        self._queue: list[_Submitted] = []
        self._queued = asyncio.Event()
        self._stored = asyncio.Event()
        self._written = asyncio.Condition()
        self._processing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # Rows fetched per slice follow how many the last slice managed: no loading of
        # pushes that a short slice would not reach.
        self._fetch = 4

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
    ) -> bool:
        """Store a push durably; True if new, False if it was a duplicate (nothing changes)."""
        payload = {k: v for k, v in fields.items() if k != secret_field}
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        values = {
            "provider": provider,
            "dedup_key": key,
            "command": command[:32],
            "event_type": event_type[:32] if event_type else None,
            "payload": json.dumps(payload, ensure_ascii=False),
            "received_at": utcnow(),
        }
        self._queue.append(_Submitted(values, done))
        self._queued.set()
        return await done

    async def start(self, *, process: bool = True) -> None:
        """Start storing; and applying, unless another process does that (`process=False`)."""
        self._tasks = [asyncio.create_task(self._write_loop(), name="inbox-writer")]
        if process:
            self._tasks.append(asyncio.create_task(self._process_loop(), name="inbox-processor"))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Apply what is stored, within a grace period; what is left is applied after restart."""
        try:
            async with asyncio.timeout(grace_seconds):
                await self.drain()
        except Exception as exc:  # the database may be gone; stored pushes wait for the restart
            log.warning("inbox: stopped with pushes not yet applied: %s", exc.__class__.__name__)
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
        try:
            async with self._db.session() as session:
                inserted = await insert_many_or_ignore(
                    session, CallEvent, list(rows.values()), ("provider", "dedup_key")
                )
        except Exception as exc:
            log.exception("inbox: storing %d pushes failed", len(batch))
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        # The processor is woken before the answers go out, so it takes the connection before
        # any request that follows an answer (a GET right after the webhook sees the push).
        self._stored.set()
        for item in batch:
            key = _key(item)
            new = key in inserted and rows[key] is item.values
            if not item.done.done():
                item.done.set_result(new)

    async def _process_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):  # no extra task: wakes at once
                    await self._stored.wait()
            self._stored.clear()
            try:
                while await self.process_once():
                    pass
            except Exception:
                log.exception("inbox: processing failed; retrying shortly")

    async def process_once(self) -> int:
        """Apply the oldest stored pushes for one time slice; returns how many were applied."""
        async with self._processing:
            updates: list[CallUpdate] = []
            try:
                handled, updates = await self._apply_slice(one_by_one=False)
            except Exception:
                # Something in the slice failed: apply its pushes one per transaction instead,
                # so only the failing push is set aside (with its error).
                log.warning("inbox: a slice failed; applying its pushes one by one")
                handled, updates = await self._apply_slice(one_by_one=True)
            for update_ in updates:
                await self._observer.call_updated(update_)
            return handled

    async def _apply_slice(self, *, one_by_one: bool) -> tuple[int, list[CallUpdate]]:
        updates: list[CallUpdate] = []
        handled = 0
        async with self._db.session() as session:
            query = (
                select(CallEvent)
                .where(col(CallEvent.processed_at).is_(None))
                .order_by(col(CallEvent.id))
                .limit(1 if one_by_one else self._fetch)
            )
            if self._db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            events = list((await session.exec(query)).all())
            deadline = time.monotonic() + self._slice
            batched = contextlib.nullcontext() if one_by_one else deferred_writes(session)
            async with batched:
                for event in events:
                    handled += 1
                    if one_by_one:
                        updates.extend(await self._apply_or_set_aside(session, event))
                    else:
                        updates.extend(await self._apply(session, event))
                    # New pushes waiting to be stored go first: the PBX waits for our answer.
                    if time.monotonic() >= deadline or self._queue:
                        break
            await self._decide(session, updates, one_by_one=one_by_one)
        if not one_by_one:
            self._fetch = max(2, min(self._batch_limit, handled * 2))
        return handled, updates

    async def _decide(
        self, session: AsyncSession, updates: list[CallUpdate], *, one_by_one: bool
    ) -> None:
        """Deciders (call tracking, leads) in the slice's transaction: no transaction of their
        own per push. When a slice is retried one by one, a failing decision is left to the
        observer half after the commit (as if it had no decider), never holding a push back."""
        decide = getattr(self._observer, "decide", None)
        if decide is None:
            return
        for update_ in updates:
            if not one_by_one:
                await decide(session, update_)
                continue
            try:
                async with session.begin_nested():
                    await decide(session, update_)
            except Exception:
                log.exception("inbox: deciding on call %s failed", update_.call.id)
                update_.decided.clear()

    async def _apply(self, session: AsyncSession, event: CallEvent) -> list[CallUpdate]:
        assert event.id is not None
        parser = self._parsers[event.provider]
        return [
            await apply_push(session, push, event.id, event.provider)
            for push in parser(json.loads(event.payload))
        ]

    async def _apply_or_set_aside(
        self, session: AsyncSession, event: CallEvent
    ) -> list[CallUpdate]:
        try:
            async with session.begin_nested():
                return await self._apply(session, event)
        except Exception as exc:
            log.exception("inbox: push %s (%s) could not be applied", event.id, event.provider)
            await session.exec(
                update(CallEvent)
                .where(col(CallEvent.id) == event.id)
                .values(processed_at=utcnow(), error=f"{exc.__class__.__name__}: {exc}"[:2000])
            )
            return []


def _key(item: _Submitted) -> tuple[str, str]:
    return (item.values["provider"], item.values["dedup_key"])
