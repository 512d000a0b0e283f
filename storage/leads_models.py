"""Leads and the durable outbox that delivers them (Roistat, Metrika)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime, utcnow


def _now() -> datetime:
    return utcnow()


class Lead(SQLModel, table=True):
    """A sales lead: made from a call (by the lead rules) or posted by a site form."""

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("call_id", name="uq_leads_call_id"),
        UniqueConstraint("external_key", name="uq_leads_external_key"),
        # With the source the leads report counts a period from the index alone.
        Index("ix_leads_created_source", "created_at", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)  # "call" or "form"
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    client_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    # A form's Idempotency-Key: the same submission posted twice is one lead.
    external_key: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=1024)
    email: str | None = Field(default=None, max_length=1024)
    comment: str | None = Field(default=None, sa_type=Text)
    is_need_callback: bool | None = None
    roistat_visit: str | None = Field(default=None, max_length=64)
    metrika_client_id: str | None = Field(default=None, max_length=64)
    yclid: str | None = Field(default=None, max_length=100)
    utm_source: str | None = Field(default=None, max_length=300)
    utm_medium: str | None = Field(default=None, max_length=300)
    utm_campaign: str | None = Field(default=None, max_length=300)
    utm_content: str | None = Field(default=None, max_length=300)
    utm_term: str | None = Field(default=None, max_length=300)
    landing_url: str | None = Field(default=None, sa_type=Text)
    referrer: str | None = Field(default=None, sa_type=Text)
    # The proxy-lead id Roistat answered, once delivered (messages/add needs it).
    roistat_lead_id: str | None = Field(default=None, max_length=64)
    # What the lead told Roistat about the call; a later change is appended with messages/add.
    reported_status: str | None = Field(default=None, max_length=32)
    reported_record_link: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)


class OutboxItem(SQLModel, table=True):
    """One delivery to one sink, keyed for idempotency: (sink, key) is written once.

    status: "pending" (due at next_attempt_at; with attempts > 0 it has failed before),
    "delivering" (claimed until lease_until), "done", "dead" (gave up; last_error says why).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("sink", "key", name="uq_outbox_sink_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The leads report counts deliveries of a period by sink and state (covering).
        Index("ix_outbox_created_at", "created_at", "sink", "status", "attempts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sink: str = Field(max_length=32)
    key: str = Field(max_length=200)
    lead_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("leads.id", ondelete="CASCADE"), nullable=True),
    )
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    payload: str = Field(sa_type=Text)  # JSON, built when enqueued
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    # Retries stop (the row goes dead) after this moment.
    give_up_at: datetime = Field(sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    result: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MetrikaUpload(SQLModel, table=True):
    """One `upload_calls` request and the processing status Metrika reported for it."""

    __tablename__ = "metrika_uploads"

    id: int | None = Field(default=None, primary_key=True)
    uploading_id: str = Field(max_length=64, index=True)
    client_id_type: str = Field(max_length=16)
    line_count: int = 0
    status: str = Field(default="UPLOADED", max_length=32)
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
