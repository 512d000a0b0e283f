"""Call-tracking tables: site visits, the pool's numbers and every lease ever given (history)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Text
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime, utcnow


def _now() -> datetime:
    return utcnow()


class TrackingVisit(SQLModel, table=True):
    """A visit to the site as the tracker reported it; its id lives in a first-party cookie."""

    __tablename__ = "tracking_visits"
    # Pool reports count a period's visits per pool and find those never given a number.
    __table_args__ = (Index("ix_tracking_visits_created_pool", "created_at", "pool", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    pool: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=200)
    utm_source: str | None = Field(default=None, max_length=300)
    utm_medium: str | None = Field(default=None, max_length=300)
    utm_campaign: str | None = Field(default=None, max_length=300)
    utm_content: str | None = Field(default=None, max_length=300)
    utm_term: str | None = Field(default=None, max_length=300)
    yclid: str | None = Field(default=None, max_length=100)
    metrika_client_id: str | None = Field(default=None, max_length=64)
    roistat_visit: str | None = Field(default=None, max_length=64)
    ga_client_id: str | None = Field(default=None, max_length=100)
    landing_url: str | None = Field(default=None, sa_type=Text)
    last_url: str | None = Field(default=None, sa_type=Text)
    referrer: str | None = Field(default=None, sa_type=Text)
    device: str | None = Field(default=None, max_length=16)  # desktop / mobile / tablet
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime, index=True)
    last_seen_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)


class TrackingNumber(SQLModel, table=True):
    """A pool number and its place in the queue: the free one held longest ago goes first."""

    __tablename__ = "tracking_numbers"
    __table_args__ = (Index("ix_tracking_numbers_queue", "pool", "held_until"),)

    number: str = Field(primary_key=True, max_length=32)
    pool: str = Field(max_length=100)
    active: bool = True  # False once removed from trubka.toml (its history stays)
    # The newest lease of this number (no foreign key: leases point back at numbers).
    lease_id: int | None = None
    # Until then the number is shown to somebody; after it, it is free.
    held_until: datetime = Field(sa_type=UTCDateTime)


class TrackingLease(SQLModel, table=True):
    """A number shown to a visit from `started_at` to `ends_at`; kept after it ends.

    A call at time t belongs to the newest lease of its number with started_at <= t <= counts_until
    (`counts_until` is the end plus the grace after the last ping).
    """

    __tablename__ = "tracking_leases"
    __table_args__ = (
        Index("ix_tracking_leases_number_started", "number", "started_at"),
        # Live leases per address and per network (the caps against draining the pool).
        Index("ix_tracking_leases_address_ends", "address", "ends_at"),
        Index("ix_tracking_leases_network_ends", "network", "ends_at"),
        # Pool utilisation reads the leases of a time range: covering, no table lookups.
        Index("ix_tracking_leases_started_at", "started_at", "ends_at", "pool"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(
        sa_column=Column(
            String(32),
            ForeignKey("tracking_numbers.number", ondelete="CASCADE"),
            nullable=False,
        )
    )
    pool: str = Field(max_length=100)
    visit_id: str | None = Field(
        default=None,
        sa_column=Column(
            String(64),
            ForeignKey("tracking_visits.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
    )
    started_at: datetime = Field(sa_type=UTCDateTime)
    last_ping_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    counts_until: datetime = Field(sa_type=UTCDateTime)
    # The public address that took the lease and its /24 or /48 network (None: not limited).
    address: str | None = Field(default=None, max_length=64)
    network: str | None = Field(default=None, max_length=64)
