"""The Telegram send queue's persistence, in one place: the one function that creates
deliveries (`enqueue`) and the reads and state changes the send scheduler makes (`pending`,
`complete`, `fail`, `postpone`, `drop`). The scheduler itself (bot/telegram/sender.py) decides
what goes when; this module only stores it.

Statuses: "pending" → "sent" | "failed" (refused for good, or out of attempts: dead) |
"dropped" (no longer needed: an escalation of a call someone took).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal_column
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import Call
from storage.telegram_models import CallTaker, TelegramDelivery, TelegramTopic
from storage.types import utcnow

# Priority lanes, lower first: a ringing or missed call, then people's messages, then the
# rest of a call's live message, then client cards.
ALERT, MESSAGE, LIVE, CARD = 0, 1, 2, 3
LANE_NAMES = {ALERT: "alert", MESSAGE: "message", LIVE: "live", CARD: "card"}
# A private alert sent later unless the missed call was taken by then.
ESCALATE = "escalate"
MAX_ATTEMPTS = 12


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
    session.add(row)
    return row


async def pending(db: Database, limit: int) -> list[TelegramDelivery]:
    """Pending deliveries, oldest first (due or not: the scheduler keeps each chat in order)."""
    async with db.session() as session:
        query = (
            select(TelegramDelivery)
            .where(TelegramDelivery.status == "pending")
            .order_by(col(TelegramDelivery.id))
            .limit(limit)
        )
        return list((await session.exec(query)).all())


async def ready_topics(db: Database, client_ids: set[int]) -> set[int]:
    """Clients among `client_ids` whose topic stands with its card sent."""
    if not client_ids:
        return set()
    async with db.session() as session:
        query = select(TelegramTopic.client_id).where(
            col(TelegramTopic.client_id).in_(client_ids),
            col(TelegramTopic.card_message_id).is_not(None),
        )
        return set((await session.exec(query)).all())


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
                (col(TelegramDelivery.id) <= up_to) | (col(TelegramDelivery.status) == "sent"),
            )
            .order_by(col(TelegramDelivery.id))
        )
        return list((await session.exec(query)).all())


async def complete(db: Database, rows: Sequence[TelegramDelivery], message_id: int | None) -> None:
    """Sent: several rows when they went as one message (coalesced live lines, merged alerts)."""
    now = utcnow()
    for row in rows:
        row.status, row.error, row.sent_message_id, row.sent_at = "sent", None, message_id, now
        row.attempts += 1
    await _save(db, rows)


async def fail(db: Database, row: TelegramDelivery, reason: str) -> None:
    row.status, row.error = "failed", reason
    row.attempts += 1
    await _save(db, [row])


async def drop(db: Database, row: TelegramDelivery, reason: str) -> None:
    row.status, row.error = "dropped", reason
    await _save(db, [row])


async def postpone(
    db: Database, row: TelegramDelivery, seconds: float, *, count: bool, error: str
) -> bool:
    """Try again in `seconds`; a counted failure past MAX_ATTEMPTS makes the row dead
    ("failed"). Returns whether it died."""
    if count:
        row.attempts += 1
    row.error = error
    row.next_attempt_at = utcnow() + timedelta(seconds=seconds)
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
    await _save(db, [row])
    return row.status == "failed"


async def _save(db: Database, rows: Sequence[TelegramDelivery]) -> None:
    async with db.session() as session:
        for row in rows:
            session.add(row)


async def depth(db: Database) -> dict[tuple[str, str], int]:
    """Pending deliveries by (lane name, chat kind "group"/"private"), for /metrics."""
    # One expression object in SELECT and GROUP BY, its 0 inlined: PostgreSQL compares them as
    # written, and two bound parameters ($1, $3) would be two different expressions.
    is_group = col(TelegramDelivery.chat_id) < literal_column("0")
    async with db.read() as session:
        rows = (
            await session.exec(
                select(TelegramDelivery.lane, is_group, func.count())
                .where(TelegramDelivery.status == "pending")
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
                    (col(Call.direction) == "out") | col(Call.answered).is_(True),
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
