"""The SMS / WhatsApp send queue's persistence (a queue of the engine, storage.queue) and the
stored daily counters the budgets count on.

Kill -9 safety: a claimed row is marked `attempted_at` (committed) before its network call. A
row claimed again with the mark set (its sender died mid-send: the SMS may have gone out) is
never sent again; the sender sets it aside as uncertain.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.channel_models import ChannelCounter, ChannelDelivery, ChannelMessageSeen
from storage.dialects import dialect_of, insert_for
from storage.queue import QueueTable, Status

QUEUE = QueueTable(
    ChannelDelivery.__table__,  # type: ignore[attr-defined]
    due="next_attempt_at",
    claimed=Status.RUNNING,
    dead=Status.FAILED,  # out of attempts: set aside as "failed", the error kept
)
UNSETTLED = (Status.PENDING.value, Status.RUNNING.value)
# Where a delivery can only move forward (a late "sent" after "read" changes nothing).
STATE_ORDER = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4, "uncertain": 4}


def new_delivery_id() -> str:
    return uuid.uuid4().hex


async def enqueue(
    session: AsyncSession,
    *,
    client_id: int,
    kind: str,
    address: str,
    text: str | None,
    template: dict[str, Any] | None,
    origin: str,
    due: datetime,
) -> ChannelDelivery:
    """Store a send in the caller's transaction (with its dialog line); the caller wakes the
    sender after the commit."""
    row = ChannelDelivery(
        delivery_id=new_delivery_id(),
        client_id=client_id,
        kind=kind,
        address=address,
        text=text,
        template=json.dumps(template, ensure_ascii=False) if template is not None else None,
        origin=origin[:200],
        next_attempt_at=due,
    )
    session.add(row)
    await session.flush()
    return row


async def by_provider_id(
    session: AsyncSession, kind: str, provider_message_id: str
) -> ChannelDelivery | None:
    query = select(ChannelDelivery).where(
        ChannelDelivery.kind == kind, ChannelDelivery.provider_message_id == provider_message_id
    )
    return (await session.exec(query)).first()


async def set_state(session: AsyncSession, row_id: int, state: str) -> None:
    await session.exec(
        update(ChannelDelivery).where(col(ChannelDelivery.id) == row_id).values(state=state)
    )


async def first_time_seen(session: AsyncSession, kind: str, provider_message_id: str) -> bool:
    """Record an incoming message's id; False when it was recorded before (a repeat)."""
    dialect = dialect_of(session)
    statement = (
        insert_for(dialect)(ChannelMessageSeen.__table__)  # type: ignore[attr-defined]
        .values(kind=kind, provider_message_id=provider_message_id[:128])
        .on_conflict_do_nothing()
        .returning(ChannelMessageSeen.__table__.c.id)  # type: ignore[attr-defined]
    )
    return (await session.exec(statement)).scalar_one_or_none() is not None


async def take_counter(session: AsyncSession, key: str, day: str, limit: int) -> bool:
    """Count one more for `key` on `day` unless `limit` is reached: one conditional UPDATE, so
    two processes can never both take the last one. False when the budget is spent."""
    dialect = dialect_of(session)
    table = ChannelCounter.__table__  # type: ignore[attr-defined]
    await session.exec(
        insert_for(dialect)(table).values(key=key, day=day, count=0).on_conflict_do_nothing()
    )
    result = await session.exec(
        update(table)
        .where(table.c.key == key, table.c.day == day, table.c.count < limit)
        .values(count=table.c.count + 1)
    )
    return int(result.rowcount) == 1


async def give_back(session: AsyncSession, key: str, day: str) -> None:
    """Undo one `take_counter` whose send did not happen after all."""
    table = ChannelCounter.__table__  # type: ignore[attr-defined]
    await session.exec(
        update(table)
        .where(table.c.key == key, table.c.day == day, table.c.count > 0)
        .values(count=table.c.count - 1)
    )


async def counter(session: AsyncSession, key: str, day: str) -> int:
    row = await session.get(ChannelCounter, (key, day))
    return row.count if row is not None else 0


async def deliveries_of(session: AsyncSession, client_id: int) -> Sequence[ChannelDelivery]:
    query = (
        select(ChannelDelivery)
        .where(ChannelDelivery.client_id == client_id)
        .order_by(col(ChannelDelivery.id))
    )
    return (await session.exec(query)).all()
