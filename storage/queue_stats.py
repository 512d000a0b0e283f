"""How far behind each durable queue is: backlog, the oldest due item's age, set-aside items.

One description per queue (which rows wait, when each became due, which were set aside), one
query shape for all of them, so `/metrics` and `/healthz` read every queue the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.sql.schema import Column

from storage.channel_models import ChannelDelivery
from storage.db import Database
from storage.leads_models import OutboxItem
from storage.models import CallEvent
from storage.queue import Status
from storage.scenario_models import ScenarioJob
from storage.telegram_models import TelegramDelivery
from storage.types import utcnow


@dataclass(frozen=True)
class QueueShape:
    name: str
    waiting: ColumnElement[bool]  # rows not finished yet (due now or later)
    due_at: Column[datetime]  # when a waiting row became (or becomes) due
    set_aside: ColumnElement[bool]  # rows given up on: kept with their error for an operator
    # SQLite: its rows land in the spool first (storage/inbox_spool.py), counted as waiting.
    spooled: bool = False


@dataclass(frozen=True)
class QueueStats:
    name: str
    backlog: int
    oldest_due_seconds: float  # 0 when nothing is due
    set_aside: int


def _c(model: object, name: str) -> Column[datetime]:
    return model.__table__.c[name]  # type: ignore[attr-defined, no-any-return]


INBOX = QueueShape(
    "inbox",
    _c(CallEvent, "processed_at").is_(None),
    _c(CallEvent, "received_at"),
    _c(CallEvent, "error").is_not(None),
    spooled=True,
)
QUEUES: tuple[QueueShape, ...] = (
    INBOX,
    QueueShape(
        "outbox",
        _c(OutboxItem, "status").in_(("pending", "delivering")),
        _c(OutboxItem, "next_attempt_at"),
        _c(OutboxItem, "status") == "dead",
    ),
    QueueShape(
        "telegram",
        _c(TelegramDelivery, "status").in_((Status.PENDING.value, Status.RUNNING.value)),
        _c(TelegramDelivery, "next_attempt_at"),
        _c(TelegramDelivery, "status") == Status.FAILED.value,  # refused, or out of tries
    ),
    QueueShape(
        "scenarios",
        _c(ScenarioJob, "status").in_(("pending", "running")),
        _c(ScenarioJob, "due_at"),
        _c(ScenarioJob, "status") == "failed",
    ),
    QueueShape(
        "channels",  # SMS / WhatsApp sends (set aside: refused, out of tries, or uncertain)
        _c(ChannelDelivery, "status").in_((Status.PENDING.value, Status.RUNNING.value)),
        _c(ChannelDelivery, "next_attempt_at"),
        _c(ChannelDelivery, "status") == Status.FAILED.value,
    ),
)


async def queue_stats(db: Database, shape: QueueShape, now: datetime | None = None) -> QueueStats:
    now = now or utcnow()
    table = shape.due_at.table
    async with db.read() as session:  # no write lock: /healthz and /metrics are polled
        connection = await session.connection()
        row = (
            await connection.execute(
                select(func.count(), func.min(shape.due_at)).select_from(table).where(shape.waiting)
            )
        ).one()
        backlog, oldest = int(row[0]), cast(datetime | None, row[1])
        set_aside = (
            await connection.execute(
                select(func.count()).select_from(table).where(shape.set_aside)
            )
        ).scalar_one()
    if shape.spooled and db.spool is not None:
        landed, first = await db.spool.backlog()
        backlog += landed
        # The older of the two: a row moved on but not applied landed before any still here.
        oldest = min((at for at in (oldest, first) if at is not None), default=None)
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return QueueStats(shape.name, int(backlog), max(0.0, age), int(set_aside))
