"""The hourly rollup of the tracking pools: per pool and closed UTC hour, the peak of live
leases, the visits and the visits never given a number (`report_pool_hours`).

The tracking report reads these rows for the hours they cover and computes only the hours
after them from leases and visits, with the same code as before (the figures are the same).

When an hour is closed: once it ended `SETTLE` ago.
- A lease still live at the hour's end needs no wait: a ping moves `ends_at` only to moments
  after the ping, and ending a lease early sets it to the moment it is ended — both later than
  the closed hour, so the lease's share of that hour is already final.
- Rows are stamped with the moment a request began and committed a little later (a slow
  transaction, another process's clock a little behind): the margin covers that.
- A visit shown the static number (every number busy) still gets one on a later ping while its
  page stays open, and then no longer counts as overloaded. Pings come every few seconds, so an
  hour after the hour ended such a visit has got its number or left.

Each pass rolls up to a week of hours after the watermark (`report_rollups`): computed in a
read transaction, then upserted with the new watermark in one short write transaction, so a
report sees the rows and the watermark together. Running a pass again changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.report_queries import (
    Period,
    PoolHourRow,
    first_tracking_moment,
    lease_spans,
    rollup_done_until,
    save_pool_hours,
    visits_by_hour,
)
from storage.types import utcnow
from telephony.infra.worker import Worker
from telephony.reports.utilisation import peaks_by_index

log = logging.getLogger(__name__)

ROLLUP = "pool-hours"  # its row in report_rollups
HOUR = timedelta(hours=1)
SETTLE = timedelta(hours=1)
BATCH = timedelta(days=7)  # hours per pass: a short write transaction even on a first run
IDLE_POLL = 600.0  # seconds; a pass that finds nothing closed is one small read


def hour_floor(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


async def compute(db: Database, start: datetime, end: datetime) -> list[PoolHourRow]:
    """The rows of the hours in [start, end) (hour-aligned, UTC), from the leases and visits:
    the same queries and sweep the live report runs, at UTC."""
    period = Period(start, end, 0)
    async with db.read() as session:  # one snapshot for both
        spans = await lease_spans(session, period)
        visits = await visits_by_hour(session, period)
    first = int(start.timestamp())
    count = int((end - start).total_seconds()) // 3600
    peaks = peaks_by_index(spans, first, count)
    labels = {
        (start + timedelta(hours=index)).strftime("%Y-%m-%d %H"): index for index in range(count)
    }
    visit_counts: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for pool, label, visits_n, overloaded in visits:
        visit_counts[pool][labels[label]] = (visits_n, overloaded)
    # A lease that starts and ends in the same second is live for no hour, yet it puts its pool
    # in the live report: its hour gets a row too.
    started: dict[str, set[int]] = defaultdict(set)
    for pool, begin, _end in spans:
        if 0 <= begin - first < count * 3600:
            started[pool].add((begin - first) // 3600)
    rows: list[PoolHourRow] = []
    for pool in sorted(set(peaks) | set(visit_counts)):
        per_hour = peaks.get(pool, [0] * count)
        per_visits = visit_counts.get(pool, {})
        for index in range(count):
            visits_n, overloaded = per_visits.get(index, (0, 0))
            if per_hour[index] or visits_n or index in started[pool]:
                rows.append(
                    PoolHourRow(pool, first + index * 3600, per_hour[index], visits_n, overloaded)
                )
    return rows


class PoolHourRollup:
    """Fills `report_pool_hours` for closed hours; `worker` runs it in `trubka serve`."""

    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        settle: timedelta = SETTLE,
        batch: timedelta = BATCH,
    ) -> None:
        self.db = db
        self.now = now
        self.settle = settle
        self.batch = batch
        self.worker = Worker("report-rollup", self._step, idle_poll=IDLE_POLL, error_pause=60.0)
        # Several processes: only the holder of the "report-rollup" lease rolls up.
        self.gate: Callable[[], bool] = lambda: True

    def closed_until(self) -> datetime:
        """Hours that ended `settle` ago or earlier are closed: every hour before this."""
        return hour_floor(self.now() - self.settle)

    async def roll_once(self) -> int:
        """Roll up the next batch of closed hours; how many hours it covered (0: up to date)."""
        limit = self.closed_until()
        async with self.db.read() as session:
            done = await rollup_done_until(session, ROLLUP)
            start = done if done is not None else await first_tracking_moment(session)
        if start is None:  # no tracking data yet: nothing to start from
            return 0
        start = hour_floor(start)
        if start >= limit:
            return 0
        end = min(limit, start + self.batch)
        rows = await compute(self.db, start, end)
        async with self.db.session() as session:
            await save_pool_hours(session, ROLLUP, rows, end)
        hours = int((end - start).total_seconds()) // 3600
        log.debug("report rollup: %d hour(s) from %s, %d row(s)", hours, start, len(rows))
        return hours

    async def catch_up(self) -> int:
        """Every closed hour (demo, bench, tests); how many hours were rolled up."""
        total = 0
        while hours := await self.roll_once():
            total += hours
        return total

    async def _step(self) -> float | None:
        if not self.gate():  # another process holds the "report-rollup" lease
            return None
        if await self.roll_once():
            return 0  # more batches may be waiting (a first run over a year)
        due = self.closed_until() + HOUR + self.settle  # the next hour closes then
        return max(1.0, (due - self.now()).total_seconds())
