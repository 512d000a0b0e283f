"""Site widgets: callback requests and the stored budgets that stop callback bombing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime, utcnow


def _now() -> datetime:
    return utcnow()


class CallbackRequest(SQLModel, table=True):
    """A "Перезвоните мне" from a site visit: the lead it made, and the call that answered it.

    status: "calling" (promised at once), "scheduled" (promised at `due_at`), "dialled" (the PBX
    was asked: `call_id`, `dialled_at`)."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        # The call placed for a phone finds its open request; reports read a period.
        Index("ix_callback_requests_phone_requested", "phone", "requested_at"),
        Index("ix_callback_requests_requested_at", "requested_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    visit_id: str | None = Field(
        default=None,
        sa_column=Column(
            String(64), ForeignKey("tracking_visits.id", ondelete="SET NULL"), nullable=True
        ),
    )
    site: str | None = Field(default=None, max_length=200)
    phone: str = Field(max_length=32)
    lead_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True),
    )
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    status: str = Field(default="calling", max_length=16)
    requested_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dialled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WidgetCounter(SQLModel, table=True):
    """How many callbacks a key (a phone, a site) spent in a window (a day, an hour): budgets
    that survive restarts and hold across processes (one atomic UPDATE … WHERE count < limit)."""

    __tablename__ = "widget_counters"
    __table_args__ = (Index("ix_widget_counters_window", "window_start"),)

    key: str = Field(primary_key=True, max_length=120)
    window_start: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    count: int = 0
