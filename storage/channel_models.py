"""Channel tables: a client's identities in every channel, the queue of SMS / WhatsApp sends,
incoming messages already taken (webhooks repeat) and the stored daily counters of budgets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.base import created_now as _created
from storage.types import UTCDateTime


class ClientChannel(SQLModel, table=True):
    """One way to reach a client: (`kind`, `address`) is a Telegram user id, a WhatsApp wa_id or
    an SMS phone. A client has any number; an address belongs to one client."""

    __tablename__ = "client_channels"
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_client_channels_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(max_length=16)  # telephony.channels.base.ChannelKind
    address: str = Field(max_length=64)
    # When the client last wrote from it (routing's first choice; WhatsApp's 24 h window).
    last_incoming_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class ChannelDelivery(SQLModel, table=True):
    """One SMS or WhatsApp send, stored before it is tried (a queue of storage.queue).

    `delivery_id` is the stable id (never reused, survives retries). `status` is the engine's:
    "pending" → "running" (claimed) → "sent" | "failed" (refused for good, out of attempts, or
    uncertain after a crash: see `attempted_at`). `state` is the provider's word after that
    (`DeliveryState`: queued, sent, delivered, read, failed, uncertain).

    `attempted_at` is committed before the network call: a row claimed again with it set may
    have gone out (the process died mid-send), so it is not sent again (an SMS costs money and
    neither SMS.ru nor the Cloud API takes an idempotency key); it is set aside as uncertain.
    """

    __tablename__ = "channel_deliveries"
    __table_args__ = (
        Index("ix_channel_deliveries_status_due", "status", "next_attempt_at"),
        Index("ix_channel_deliveries_provider", "kind", "provider_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    client_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    kind: str = Field(max_length=16)
    address: str = Field(max_length=64)
    text: str | None = Field(default=None, sa_type=Text)
    template: str | None = Field(default=None, sa_type=Text)  # JSON {name, language, params}
    # Which scenario rule sent it, or "manager" for a reply from the topic.
    origin: str = Field(default="", max_length=200)
    provider_message_id: str | None = Field(default=None, max_length=128)
    state: str = Field(default="queued", max_length=16)
    cost: float | None = None
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChannelMessageSeen(SQLModel, table=True):
    """An incoming message already stored: providers repeat webhooks, the id is stable."""

    __tablename__ = "channel_messages_seen"
    __table_args__ = (
        UniqueConstraint("kind", "provider_message_id", name="uq_channel_messages_seen_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    provider_message_id: str = Field(max_length=128)
    received_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class ChannelCounter(SQLModel, table=True):
    """A budget's count for one local day (`sms` for the whole bot, `client:<id>` per client):
    stored so a restart does not reset it and several processes share it."""

    __tablename__ = "channel_counters"

    key: str = Field(max_length=64, primary_key=True)
    day: str = Field(max_length=10, primary_key=True)  # YYYY-MM-DD in TRUBKA_TIMEZONE
    count: int = 0
