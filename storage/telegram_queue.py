"""The Telegram send queue's persistence, in one place: the one function that creates
deliveries (`enqueue`) and the reads and state changes the send scheduler makes. The scheduler
itself (bot/telegram/sender.py) decides what goes when; this module only stores it.

Deliveries are a queue of the engine (storage.queue, `QUEUE`): the scheduler reads the
`candidates` and decides in memory (per-chat order, lanes, coalescing, budgets), then `claim`s
exactly the batch it chose (a lease and a token) before any Bot API call, and settles it with
that token: `sent`, `release` (a 429's wait, or rows handed back unsent: not a try), `retry`
(a counted failure: the engine's `RetryPolicy`, dead after its max attempts) or `finish`
(refused for good, or no longer needed). A sender that dies mid-send leaves its rows claimed;
they are due again when the lease ends, and its stale token changes nothing after that.

Statuses (`Status`): "pending" → "running" (claimed) → "sent" | "failed" (refused for good,
or out of attempts: dead) | "dropped" (no longer needed: an escalation of a call someone took).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal_column, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from storage.among import among
from storage.db import Database
from storage.models import Call
from storage.outcome import CallOutcome
from storage.queue import QueueTable, RetryPolicy, Status
from storage.telegram_models import CallTaker, TelegramDelivery, TelegramTopic
from storage.types import utcnow

# Priority lanes, lower first: a ringing or missed call, then people's messages, then the
# rest of a call's live message, then client cards.
ALERT, MESSAGE, LIVE, CARD = 0, 1, 2, 3
LANE_NAMES = {ALERT: "alert", MESSAGE: "message", LIVE: "live", CARD: "card"}
# A private alert sent later unless the missed call was taken by then.
ESCALATE = "escalate"
MAX_ATTEMPTS = 12  # counted tries (a 429's wait is not one) before a delivery is dead

QUEUE = QueueTable(
    TelegramDelivery.__table__,  # type: ignore[attr-defined]
    due="next_attempt_at",
    claimed=Status.RUNNING,
    order=("lane",),
    dead=Status.FAILED,  # out of attempts: set aside as "failed", like a refusal for good
)
# Not settled yet: waiting, or claimed by a sender (the `depth` gauge counts both).
UNSETTLED = (Status.PENDING.value, Status.RUNNING.value)
# As literals, the way the partial indexes' WHERE is written (storage/telegram_models.py): with
# bound parameters neither database could tell that the indexes cover the query.
_IS_UNSETTLED = col(TelegramDelivery.status).in_([literal_column(f"'{s}'") for s in UNSETTLED])
# A later call the client got through on: answered by CallOutcome's rule (a voicemail is not).
_GOT_THROUGH = CallOutcome.sql(Call.__table__).answered  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Outgoing:
    """What to send. `target` "topic" (the client's topic, resolved at send time) or "chat".

    `method`: "send" (our HTML text), "copy" (copyMessage), "live" (a line of the call's one
    live message), "card" (redraw the client's card and topic title), "escalate" (a private
    alert sent at `due_at` unless the call was taken).
    """

    target: str
    chat_id: int
    lane: int = MESSAGE
    method: str = "send"
    text: str = ""
    client_id: int | None = None
    call_id: int | None = None
    dialog_message_id: int | None = None
    reply_markup: str | None = None
    from_chat_id: int | None = None
    from_message_id: int | None = None
    due_at: datetime | None = None


def enqueue(session: AsyncSession, outgoing: Outgoing) -> TelegramDelivery:
    """Store a send in the caller's transaction (with the dialog line it belongs to); the
    caller wakes the scheduler after the commit. The only code that creates deliveries."""
    row = _row(outgoing)
    session.add(row)
    return row


async def enqueue_many(session: AsyncSession, outgoing: Sequence[Outgoing]) -> None:
    """`enqueue` for several sends at once, in this order: one multi-row INSERT (the rows'
    values as `enqueue` makes them), written now in the caller's transaction."""
    if outgoing:
        now = utcnow()
        rows = [_values(each, now) for each in outgoing]
        if any(isinstance(row, TelegramDelivery) for row in session.new):
            await session.flush()  # sends added one by one before these keep their place
        await session.exec(_INSERT, params=rows)


_INSERT = insert(TelegramDelivery.__table__)  # type: ignore[attr-defined]


def _values(outgoing: Outgoing, now: datetime) -> dict[str, Any]:
    """A new row's values, as `_row` makes them (a model instance costs more than the INSERT)."""
    return {
        "target": outgoing.target,
        "chat_id": outgoing.chat_id,
        "client_id": outgoing.client_id,
        "dialog_message_id": outgoing.dialog_message_id,
        "call_id": outgoing.call_id,
        "method": outgoing.method,
        "lane": outgoing.lane,
        "text": outgoing.text,
        "reply_markup": outgoing.reply_markup,
        "from_chat_id": outgoing.from_chat_id,
        "from_message_id": outgoing.from_message_id,
        "status": Status.PENDING.value,
        "attempts": 0,
        "next_attempt_at": outgoing.due_at or now,
        "claim_token": None,
        "lease_until": None,
        "sent_message_id": None,
        "sent_thread_id": None,
        "error": None,
        "created_at": now,
        "sent_at": None,
    }


def _row(outgoing: Outgoing) -> TelegramDelivery:
    row = TelegramDelivery(
        target=outgoing.target,
        chat_id=outgoing.chat_id,
        client_id=outgoing.client_id,
        dialog_message_id=outgoing.dialog_message_id,
        call_id=outgoing.call_id,
        method=outgoing.method,
        lane=outgoing.lane,
        text=outgoing.text,
        reply_markup=outgoing.reply_markup,
        from_chat_id=outgoing.from_chat_id,
        from_message_id=outgoing.from_message_id,
    )
    if outgoing.due_at is not None:
        row.next_attempt_at = outgoing.due_at
    return row


async def candidates(
    db: Database, limit: int, *, urgent: int = 50, now: datetime | None = None
) -> list[TelegramDelivery]:
    """Deliveries not settled yet, oldest first: pending ones (due or not: the scheduler keeps
    each chat in order) and claimed ones (`held` while their lease runs; after it, their sender
    died and they are due again). A read only: `claim` decides who sends.

    Behind a backlog longer than `limit`, the oldest `urgent` alerts past it (a ringing or
    missed call) come too, each with its chat's earlier rows, so they are not left waiting
    for thousands of older notes while their chat's order is kept."""
    async with db.read() as session:
        rows = list((await session.exec(_unsettled().limit(limit))).all())
        if len(rows) < limit:
            return rows
        last = rows[-1].id
        alerts = list(
            (
                await session.exec(
                    _unsettled()
                    .where(
                        col(TelegramDelivery.lane) == ALERT,
                        col(TelegramDelivery.id) > last,
                        # due now (`now`: the sender's clock), not a scheduled escalation
                        col(TelegramDelivery.next_attempt_at) <= (now or utcnow()),
                    )
                    .limit(urgent)
                )
            ).all()
        )
        if not alerts:
            return rows
        topics = {r.client_id for r in alerts if r.target == "topic" and r.client_id is not None}
        chats = {r.chat_id for r in alerts if r.target != "topic" or r.client_id is None}
        topic_row = (col(TelegramDelivery.target) == "topic") & col(
            TelegramDelivery.client_id
        ).is_not(None)
        same_line = or_(
            topic_row & among(col(TelegramDelivery.client_id), topics),
            ~topic_row & among(col(TelegramDelivery.chat_id), chats),
        )
        earlier = (
            await session.exec(
                _unsettled()
                .where(
                    col(TelegramDelivery.id) > last,
                    col(TelegramDelivery.id) <= alerts[-1].id,
                    same_line,
                )
                .limit(limit)
            )
        ).all()
        return rows + list(earlier)


def _unsettled() -> SelectOfScalar[TelegramDelivery]:
    return (
        select(TelegramDelivery).where(_IS_UNSETTLED).order_by(col(TelegramDelivery.id))
    )


# What a claim refreshes on the rows the scheduler read (with id, claim_token and attempts).
_CLAIMED = ("status", "lease_until", "next_attempt_at", "client_id")


def held(row: TelegramDelivery, now: datetime) -> bool:
    """Claimed by a sender whose lease still runs (the engine's `due_now`, the other way)."""
    return row.status == Status.RUNNING and row.lease_until is not None and row.lease_until >= now


async def claim(
    db: Database,
    batch: Sequence[TelegramDelivery],
    *,
    lease: timedelta,
    now: datetime | None = None,
) -> list[TelegramDelivery]:
    """Claim exactly the deliveries of `batch` (one token for all), before any is sent.

    Returns the longest head of `batch` that was claimed, its rows refreshed from the table
    (token, lease, attempts counted); a row that is not due any more (settled or claimed
    meanwhile) ends it, and rows claimed after such a gap are handed back at once."""
    ids = [row.id for row in batch if row.id is not None]
    claimed = await QUEUE.claim(
        db, now=now or utcnow(), lease=lease, ids=ids, returning=_CLAIMED
    )
    fresh = {int(row.id): row for row in claimed}
    kept: list[TelegramDelivery] = []
    for row in batch:
        got = fresh.pop(row.id or 0, None)
        if got is None:
            break
        for name, value in got._mapping.items():
            setattr(row, name, value)
        kept.append(row)
    if fresh:
        token = next(iter(fresh.values())).claim_token
        await QUEUE.release(db, list(fresh), token, attempts=QUEUE.c("attempts") - 1)
    return kept


async def topics(db: Database, client_ids: set[int]) -> dict[int, TelegramTopic]:
    """The standing topics of the clients among `client_ids` (a pass of the scheduler reads
    them once, not once per send)."""
    if not client_ids:
        return {}
    async with db.read() as session:
        query = select(TelegramTopic).where(among(col(TelegramTopic.client_id), client_ids))
        return {topic.client_id: topic for topic in (await session.exec(query)).all()}


async def live_lines(db: Database, call_id: int | None, up_to: int) -> list[TelegramDelivery]:
    """The call's live lines up to delivery `up_to`, and every line already sent, oldest
    first. (With several processes a line can be committed after a newer one was sent: the
    edit that finally sends it must keep the newer one's text.)"""
    async with db.session() as session:
        query = (
            select(TelegramDelivery)
            .where(
                TelegramDelivery.call_id == call_id,
                TelegramDelivery.method == "live",
                (col(TelegramDelivery.id) <= up_to)
                | (col(TelegramDelivery.status) == Status.SENT.value),
            )
            .order_by(col(TelegramDelivery.id))
        )
        return list((await session.exec(query)).all())


def _ids(rows: Sequence[TelegramDelivery]) -> list[int]:
    return [row.id for row in rows if row.id is not None]


async def sent(
    db: Database,
    rows: Sequence[TelegramDelivery],
    message_id: int | None,
    *,
    now: datetime | None = None,
) -> int:
    """Sent: the rows of one claim, several when they went as one message (coalesced live
    lines, merged alerts), in one statement. How many this claim still held."""
    if not rows:
        return 0
    head = rows[0]
    return await QUEUE.complete(
        db,
        _ids(rows),
        head.claim_token,
        status=Status.SENT,
        error=None,
        sent_message_id=message_id,
        sent_at=now or utcnow(),
        sent_thread_id=head.sent_thread_id,
    )


async def finish(
    db: Database, row: TelegramDelivery, status: Status, reason: str, **values: Any
) -> bool:
    """End one claimed row for good: FAILED (refused: retrying cannot help) or DROPPED."""
    assert row.id is not None
    return bool(
        await QUEUE.complete(db, row.id, row.claim_token, status=status, error=reason, **values)
    )


async def release(
    db: Database,
    rows: Sequence[TelegramDelivery],
    *,
    due: datetime | None = None,
    error: str | None = None,
) -> int:
    """Back to pending, the claim not counted as a try: a 429's wait (`due`), or rows handed
    back unsent behind a head that failed (`due` None: their place in line is kept)."""
    if not rows:
        return 0
    values: dict[str, Any] = {"attempts": QUEUE.c("attempts") - 1}
    if error is not None:
        values["error"] = error
    return await QUEUE.release(db, _ids(rows), rows[0].claim_token, due=due, **values)


async def retry(
    db: Database,
    row: TelegramDelivery,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    error: str,
    now: datetime | None = None,
) -> Status:
    """A counted failed try: pending again when `policy` says, or dead ("failed") after its
    `max_attempts`. The row's new status."""
    assert row.id is not None
    return await QUEUE.fail(
        db,
        row.id,
        row.claim_token,
        attempts=row.attempts,
        give_up_at=None,
        policy=policy,
        now=now or utcnow(),
        rng=rng,
        error=error,
        error_column="error",
    )


async def depth(db: Database) -> dict[tuple[str, str], int]:
    """Deliveries not sent yet (pending, or claimed: being sent, or held by a sender that
    died) by (lane name, chat kind "group"/"private"), for /metrics."""
    # One expression object in SELECT and GROUP BY, its 0 inlined: PostgreSQL compares them as
    # written, and two bound parameters ($1, $3) would be two different expressions.
    is_group = col(TelegramDelivery.chat_id) < literal_column("0")
    async with db.read() as session:
        rows = (
            await session.exec(
                select(TelegramDelivery.lane, is_group, func.count())
                .where(_IS_UNSETTLED)
                .group_by(col(TelegramDelivery.lane), is_group)
            )
        ).all()
    found: dict[tuple[str, str], int] = {}
    for lane, group, count in rows:
        key = (LANE_NAMES.get(lane, str(lane)), "group" if group else "private")
        found[key] = found.get(key, 0) + int(count)
    return found


async def call_taken(db: Database, call_id: int | None) -> bool:
    """A missed call is taken once a manager said «Беру», or the client was called back or
    got through since."""
    if call_id is None:
        return False
    async with db.session() as session:
        if await session.get(CallTaker, call_id) is not None:
            return True
        missed = await session.get(Call, call_id)
        if missed is None:
            return True  # nothing left to escalate
        later = (
            await session.exec(
                select(Call.id)
                .where(
                    Call.client_id == missed.client_id,
                    col(Call.id) > call_id,
                    (col(Call.direction) == "out") | _GOT_THROUGH,
                )
                .limit(1)
            )
        ).first()
        return later is not None


async def take_call(session: AsyncSession, call_id: int, manager_id: int | None) -> CallTaker:
    """Record who took a missed call; the first one to tap keeps it."""
    taker = await session.get(CallTaker, call_id)
    if taker is None:
        taker = CallTaker(call_id=call_id, manager_id=manager_id, taken_at=utcnow())
        session.add(taker)
        await session.flush()
    return taker
