"""Scenario jobs: a matched rule's actions, stored so a `wait` survives a restart."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.types import UTCDateTime, utcnow


def _now() -> datetime:
    return utcnow()


class ScenarioJob(SQLModel, table=True):
    """One run of one rule for one client: its actions from `step` on, due at `due_at`.

    status: "pending" (due at due_at), "running" (claimed until lease_until; a crashed run is
    claimed again after that), "done", "cancelled" (its `if` no longer held when due; `error`
    says which) or "failed" (an action or template failed; `error` says why).
    """

    __tablename__ = "scenario_jobs"
    __table_args__ = (Index("ix_scenario_jobs_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=200)
    client_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    # What happened (trigger kind and value, its fields, the marks `since` counts from), JSON.
    payload: str = Field(default="{}", sa_type=Text)
    step: int = 0  # index of the next action to run
    status: str = Field(default="pending", max_length=16)
    due_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claim_token: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=_now, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
