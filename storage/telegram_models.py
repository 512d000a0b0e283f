"""Telegram tables: the client's forum topic and the queue of outgoing Bot API sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime, utcnow


def _created() -> datetime:
    return utcnow()


class TelegramTopic(SQLModel, table=True):
    """The client's topic in the managers' forum supergroup (created again if deleted)."""

    __tablename__ = "telegram_topics"

    client_id: int = Field(
        sa_column=Column(Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    )
    chat_id: int = Field(sa_type=BigInteger)
    message_thread_id: int = Field(index=True)
    # The client card at the top of the topic, edited by "🔄 Обновить".
    card_message_id: int | None = None
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


# Not settled yet: waiting, or claimed by a sender. Queries repeat it word for word (literals, not
# parameters), so that both databases see that the partial indexes below cover them.
UNSETTLED_WHERE = "status IN ('pending', 'running')"


class TelegramDelivery(SQLModel, table=True):
    """One Bot API send, stored before it is tried: a failed send is retried, never lost.

    `target` is "topic" (the client's topic in the managers' group, resolved at send time so a
    deleted topic is re-created) or "chat" (`chat_id` as is: a client's private chat).
    `method` is "send" (our text, HTML), "copy" (copyMessage of `from_chat_id`/`from_message_id`)
    or "live": a line of the call's live message — the call's live lines so far, joined, are sent
    once and then edited into that one message as the call progresses.
    """

    __tablename__ = "telegram_deliveries"
    __table_args__ = (
        Index("ix_telegram_deliveries_status_id", "status", "id"),
        # The sender reads the oldest unsettled rows (and the alerts among them) every pass.
        # Two statuses in id order cannot come from (status, id) without sorting all of them:
        # behind a backlog of 14,000 notes that was 7 ms per pass. Partial indexes in id order
        # walk the unsettled rows only, as far as the pass reads.
        Index(
            "ix_telegram_deliveries_unsettled",
            "id",
            sqlite_where=text(UNSETTLED_WHERE),
            postgresql_where=text(UNSETTLED_WHERE),
        ),
        Index(
            "ix_telegram_deliveries_unsettled_lane",
            "lane",
            "id",
            sqlite_where=text(UNSETTLED_WHERE),
            postgresql_where=text(UNSETTLED_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(default="topic", max_length=8)
    chat_id: int = Field(sa_type=BigInteger)
    client_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=True),
    )
    dialog_message_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("dialog_messages.id", ondelete="SET NULL"),
            nullable=True,
            index=True,  # the start-up catch-up looks lines up by it
        ),
    )
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    method: str = Field(default="send", max_length=8)
    # Priority lane (storage.telegram_queue: 0 alerts … 3 cards): lower goes first.
    lane: int = Field(default=1)
    text: str = Field(default="", sa_type=Text)
    reply_markup: str | None = Field(default=None, sa_type=Text)  # JSON
    from_chat_id: int | None = Field(default=None, sa_type=BigInteger)
    from_message_id: int | None = None
    # A queue of the engine (storage.queue, statuses from its `Status`): "pending" (due at
    # next_attempt_at) → "running" (claimed by the sender until lease_until; a crashed sender's
    # rows are due again after it) → "sent"; or "failed" once Telegram refuses for good
    # (blocked, bad request) or the retries ran out; or "dropped" when it is no longer needed
    # (an escalation of a call someone took).
    status: str = Field(default="pending", max_length=8)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_message_id: int | None = None
    # The topic it went into: a "live" message is edited only while its topic still exists.
    sent_thread_id: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CallTaker(SQLModel, table=True):
    """Who took a missed call («Беру» in a private escalation): one manager per call."""

    __tablename__ = "call_takers"

    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    )
    manager_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("managers.id", ondelete="SET NULL"), nullable=True),
    )
    taken_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
