"""Report gauges for `/metrics`, read from the database when Prometheus scrapes: pool
utilisation and overload per pool, the Telegram send queue's depth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge

from storage.db import Database
from storage.report_queries import (
    live_leases,
    overloaded_visits_since,
    pool_sizes,
)
from storage.types import utcnow


class ReportGauges:
    def __init__(
        self, db: Database, registry: CollectorRegistry, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._now = now
        self.numbers = Gauge(
            "trubka_tracking_pool_numbers", "Active numbers per pool", ["pool"], registry=registry
        )
        self.live = Gauge(
            "trubka_tracking_pool_live_leases", "Numbers shown to visitors now", ["pool"],
            registry=registry,
        )
        self.utilisation = Gauge(
            "trubka_tracking_pool_utilisation", "Live leases ÷ numbers (0..1)", ["pool"],
            registry=registry,
        )
        self.overloaded = Gauge(
            "trubka_tracking_pool_overloaded_visits_last_hour",
            "Visits of the last hour shown the static number (every number was busy)",
            ["pool"],
            registry=registry,
        )

    async def refresh(self) -> None:
        now = self._now()
        async with self._db.read() as session:
            sizes = await pool_sizes(session)
            live = await live_leases(session, now)
            overloaded = await overloaded_visits_since(session, now - timedelta(hours=1))
        for pool in set(sizes) | set(live) | set(overloaded):
            size, held = sizes.get(pool, 0), live.get(pool, 0)
            self.numbers.labels(pool).set(size)
            self.live.labels(pool).set(held)
            self.utilisation.labels(pool).set(held / size if size else 0.0)
            self.overloaded.labels(pool).set(overloaded.get(pool, 0))
