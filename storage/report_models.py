"""Report rollups: figures of closed hours kept so a long report reads a few rows per hour
instead of every lease and visit behind them (telephony/reports/rollup.py fills them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime


class ReportPoolHour(SQLModel, table=True):
    """One tracking pool in one closed UTC hour. A row exists for every hour the pool had a
    lease live or starting, or a visit (hours without any have no row)."""

    __tablename__ = "report_pool_hours"
    # The tracking report reads a range of hours of every pool.
    __table_args__ = (Index("ix_report_pool_hours_hour", "hour"),)

    pool: str = Field(primary_key=True, max_length=100)
    hour: datetime = Field(primary_key=True, sa_type=UTCDateTime)  # its start, UTC
    peak_live: int  # most leases live at once during the hour
    visits: int  # visits created in the hour
    overloaded_visits: int  # of them, never given a number (shown the static one)


class ReportRollup(SQLModel, table=True):
    """How far a rollup went: every hour before `done_until` has its rows (written in the same
    transaction), so a report may read them instead of computing those hours."""

    __tablename__ = "report_rollups"

    name: str = Field(primary_key=True, max_length=64)
    done_until: datetime = Field(sa_type=UTCDateTime)
