"""Claiming stored pushes for one slice: live lane first, each call's pushes in stored order,
and on PostgreSQL one applier per call at a time (any number of processes may apply).

The claim, in the slice's own transaction:

1. candidates: the first `limit` pending pushes, live lane first, then by id. On PostgreSQL
   `FOR UPDATE SKIP LOCKED`: rows another applier took are skipped, so concurrent appliers
   start from different rows instead of all from the head of the backlog.
2. calls: each candidate's call (`call_key`; a push without one is its own call). On PostgreSQL
   the call is locked with `pg_try_advisory_xact_lock` on a hash of its key; a call another
   applier holds is left for later (never waited for), so claims cannot deadlock on each other.
3. pushes: every pending push of an owned call up to its latest candidate, in id order, so a
   live push always comes with the earlier pushes of its call and after them. On PostgreSQL
   these rows are locked `SKIP LOCKED` too, and a call's pushes stop at the first row some
   other transaction holds (an applier's step 1 that lost the call): nothing after a push is
   applied before it, and nobody waits for a row lock while holding a call.

Why this is enough: the advisory lock lives until the slice commits, so two appliers never
apply one call at once; the applier that gets it next reads the call's pending rows afresh
(read committed: a statement after the lock sees the previous holder's commit), so it never
repeats or skips a push. Row locks are only ever tried (`SKIP LOCKED`), advisory locks only
tried: the only waits left are those of applying itself (a call's or client's row).

SQLite has one writer at a time (`BEGIN IMMEDIATE`): the same order, without locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, or_, text
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among
from storage.models import CallEvent

_PENDING = col(CallEvent.processed_at).is_(None)
# Call keys are hashed with a prefix of their own (migrations lock one fixed 64-bit key).
_TRY_LOCK_CALLS = text(
    "SELECT k FROM unnest(CAST(:keys AS text[])) AS k "
    "WHERE pg_try_advisory_xact_lock(hashtextextended('trubka-inbox|' || k, 0))"
)


class ClaimedPush(NamedTuple):
    """What applying reads of a claimed push's row. Plain rows, not ORM objects: a slice
    claims up to hundreds of pushes and only reads them, and an ORM object's identity, state
    and change tracking (with every column read, dates parsed) cost more than applying them."""

    id: int
    provider: str
    payload: str  # JSON of the fields
    lane: int
    call_key: str | None
    event_type: str | None


_EVENTS = CallEvent.__table__  # type: ignore[attr-defined]
# The columns of a ClaimedPush, in its order.
_CLAIMED = [_EVENTS.c[name] for name in ClaimedPush._fields]


@dataclass
class _Call:
    key: str | None  # None: a push without a call, claimed alone
    last: int  # its latest candidate: pushes up to it are claimed
    alone: int | None = None
    rows: list[ClaimedPush] = field(default_factory=list)


@dataclass
class Claim:
    events: list[ClaimedPush]  # in applying order
    busy: int = 0  # candidate calls another applier holds (they are applied there, or later)


async def claim(session: AsyncSession, limit: int, *, postgres: bool) -> Claim:
    """The pushes this slice applies, in applying order: calls by their first candidate (live
    first), each call's pushes by id."""
    calls = await _candidates(session, limit, postgres=postgres)
    busy = 0
    if postgres and calls:
        owned = await _lock_calls(session, list(calls))
        busy = len(calls) - len(owned)
        calls = {lock: call for lock, call in calls.items() if lock in owned}
    if not calls:
        return Claim([], busy)
    rows = await _pending_of(session, list(calls.values()), postgres=postgres)
    if postgres:  # a call stops at its first pending row another transaction holds
        taken = {row.id for row in rows}
        for event_id, key in await _pending_ids(session, list(calls.values())):
            call = _call_of(calls, key, event_id)
            if event_id not in taken and call is not None:
                call.last = min(call.last, event_id - 1)
    for row in rows:
        call = _call_of(calls, row.call_key, row.id)
        if call is not None and row.id <= call.last:
            call.rows.append(row)
    return Claim([row for call in calls.values() for row in call.rows], busy)


def _call_of(calls: dict[str, _Call], key: str | None, event_id: int | None) -> _Call | None:
    return calls.get(key if key is not None else f"#{event_id}")


async def _candidates(session: AsyncSession, limit: int, *, postgres: bool) -> dict[str, _Call]:
    query = (
        select(CallEvent.id, CallEvent.call_key)
        .where(_PENDING)
        .order_by(col(CallEvent.lane), col(CallEvent.id))
        .limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    calls: dict[str, _Call] = {}
    for event_id, key in (await session.exec(query)).all():
        assert event_id is not None
        lock = key if key is not None else f"#{event_id}"
        call = calls.get(lock)
        if call is None:
            calls[lock] = _Call(key, event_id, alone=event_id if key is None else None)
        else:
            call.last = max(call.last, event_id)
    return calls


async def _lock_calls(session: AsyncSession, locks: Sequence[str]) -> set[str]:
    connection = await session.connection()
    result = await connection.execute(_TRY_LOCK_CALLS, {"keys": list(locks)})
    return {str(key) for key in result.scalars()}


def _of_calls(calls: Sequence[_Call]) -> ColumnElement[bool]:
    keys = [call.key for call in calls if call.key is not None]
    alone = [call.alone for call in calls if call.alone is not None]
    last = max(call.last for call in calls)
    return or_(
        and_(among(col(CallEvent.call_key), keys), col(CallEvent.id) <= last),
        among(col(CallEvent.id), alone),
    )


async def _pending_of(
    session: AsyncSession, calls: Sequence[_Call], *, postgres: bool
) -> list[ClaimedPush]:
    """The pending pushes of these calls, by id. Sorted here: ordered by id in SQL, SQLite
    walked every pending push in id order (the whole backlog, each slice: 8 ms a slice behind
    13,000 pushes, so applying fell behind 300 pushes/s) instead of searching each call's."""
    query = core_select(*_CLAIMED).where(_PENDING, _of_calls(calls))
    if postgres:
        query = query.with_for_update(skip_locked=True)
    connection = await session.connection()
    rows = (await connection.execute(query)).all()
    return sorted(map(ClaimedPush._make, rows), key=lambda row: row.id)


async def _pending_ids(
    session: AsyncSession, calls: Sequence[_Call]
) -> Sequence[tuple[int, str | None]]:
    """Every pending push of the calls, locked or not (a plain read waits for no lock)."""
    query = select(CallEvent.id, CallEvent.call_key).where(_PENDING, _of_calls(calls))
    return [(event_id, key) for event_id, key in (await session.exec(query)).all() if event_id]
