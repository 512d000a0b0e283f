"""`[retention]` of trubka.toml: how many days personal data is kept, then blanked.

Each kind is swept in small batches (one short transaction each, never holding SQLite's write
lock for long) by a Worker of the one runner: dialog texts, visits' addresses and user agents
(and the number leases' addresses), recording links, audit rows. Rows stay (reports count
them); only the personal fields are emptied (audit rows are deleted). Unset = kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, or_, select, update
from sqlmodel import col

from storage.access_models import AuditEntry
from storage.db import Database
from storage.leads_models import Lead
from storage.models import Call, ClientVariable, DialogMessage
from storage.tracking_models import TrackingLease, TrackingVisit
from telephony.infra.clock import Clock, SystemClock
from telephony.infra.worker import Worker

RECORD_VARIABLE = "megafon_record_link"
IDLE = 3600.0  # seconds between sweeps once nothing is left


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dialog_days: int | None = Field(default=None, ge=1, description="dialog texts")
    visits_days: int | None = Field(
        default=None, ge=1, description="visits' IP addresses and user agents, pages, referrers"
    )
    recordings_days: int | None = Field(default=None, ge=1, description="recording links")
    audit_days: int | None = Field(default=None, ge=1, description="audit rows")
    batch: int = Field(default=500, ge=1, le=10_000, description="rows per transaction")

    @property
    def enabled(self) -> bool:
        return any(
            days is not None
            for days in (self.dialog_days, self.visits_days, self.recordings_days, self.audit_days)
        )


Statement = Callable[[datetime, int], Any]


def _dialog(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(DialogMessage.id)).where(
        col(DialogMessage.created_at) < cutoff, col(DialogMessage.text) != ""
    )
    return (
        update(DialogMessage).where(col(DialogMessage.id).in_(chosen.limit(batch))).values(text="")
    )


def _visits(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(TrackingVisit.id)).where(
        col(TrackingVisit.created_at) < cutoff,
        or_(
            col(TrackingVisit.ip).is_not(None),
            col(TrackingVisit.user_agent).is_not(None),
            col(TrackingVisit.landing_url).is_not(None),
            col(TrackingVisit.last_url).is_not(None),
            col(TrackingVisit.referrer).is_not(None),
        ),
    )
    return (
        update(TrackingVisit)
        .where(col(TrackingVisit.id).in_(chosen.limit(batch)))
        .values(ip=None, user_agent=None, landing_url=None, last_url=None, referrer=None)
    )


def _leases(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(TrackingLease.id)).where(
        col(TrackingLease.ends_at) < cutoff, col(TrackingLease.address).is_not(None)
    )
    return (
        update(TrackingLease)
        .where(col(TrackingLease.id).in_(chosen.limit(batch)))
        .values(address=None, network=None)
    )


def _recordings(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(Call.id)).where(
        col(Call.created_at) < cutoff, col(Call.record_link).is_not(None)
    )
    return update(Call).where(col(Call.id).in_(chosen.limit(batch))).values(record_link=None)


def _lead_recordings(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(Lead.id)).where(
        col(Lead.created_at) < cutoff, col(Lead.reported_record_link).is_not(None)
    )
    return (
        update(Lead).where(col(Lead.id).in_(chosen.limit(batch))).values(reported_record_link=None)
    )


def _record_variables(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(ClientVariable.id)).where(
        col(ClientVariable.name) == RECORD_VARIABLE,
        col(ClientVariable.updated_at) < cutoff,
        col(ClientVariable.value) != "",
    )
    return (
        update(ClientVariable)
        .where(col(ClientVariable.id).in_(chosen.limit(batch)))
        .values(value="")
    )


def _audit(cutoff: datetime, batch: int) -> Any:
    chosen = select(col(AuditEntry.id)).where(col(AuditEntry.at) < cutoff)
    return delete(AuditEntry).where(col(AuditEntry.id).in_(chosen.limit(batch)))


class RetentionSweep:
    """One pass: a batch of each kind that is due. `worker` runs it (wake it to sweep now)."""

    def __init__(self, db: Database, config: RetentionConfig, clock: Clock | None = None) -> None:
        self.db = db
        self.config = config
        self.clock = clock or SystemClock()
        self.worker = Worker("retention", self.step, idle_poll=IDLE, error_pause=60.0)

    def _jobs(self) -> list[tuple[str, int, Statement]]:
        c = self.config
        jobs: list[tuple[str, int | None, Statement]] = [
            ("dialog_messages", c.dialog_days, _dialog),
            ("tracking_visits", c.visits_days, _visits),
            ("tracking_leases", c.visits_days, _leases),
            ("calls", c.recordings_days, _recordings),
            ("leads", c.recordings_days, _lead_recordings),
            ("client_variables", c.recordings_days, _record_variables),
            ("audit_log", c.audit_days, _audit),
        ]
        return [(name, days, make) for name, days, make in jobs if days is not None]

    async def sweep_once(self) -> dict[str, int]:
        """One batch of each kind, each in its own transaction; rows changed per table."""
        now = self.clock.now()
        changed: dict[str, int] = {}
        for name, days, make in self._jobs():
            async with self.db.session() as session:
                connection = await session.connection()
                result = await connection.execute(
                    make(now - timedelta(days=days), self.config.batch)
                )
                changed[name] = changed.get(name, 0) + int(getattr(result, "rowcount", 0) or 0)
        return changed

    async def step(self) -> float | None:
        changed = await self.sweep_once()
        full = any(count >= self.config.batch for count in changed.values())
        return 0 if full else None

    async def run_all(self) -> int:
        """Sweep until nothing is due (tests, the CLI); rows changed."""
        total = 0
        while True:
            changed = sum((await self.sweep_once()).values())
            total += changed
            if not changed:
                return total
