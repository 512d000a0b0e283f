"""Builds each report: one short read-only session of queries, then plain computation."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.report_queries import (
    DIMENSIONS,
    CallFilter,
    CallRow,
    Period,
    PoolDayRow,
    PoolHourRow,
    answered_by_manager,
    attributed_counts,
    calls_by,
    dead_deliveries,
    inbound_count,
    lead_counts,
    lead_days,
    lease_spans,
    manager_names,
    missed_calls,
    outbox_counts,
    pool_days,
    pool_hours,
    pool_sizes,
    rollup_done_until,
    visits_by_hour,
    with_unattributed,
)
from storage.types import utcnow
from storage.widget_queries import callback_rows, chat_lead_count
from telephony.reports import recovery
from telephony.reports.models import (
    CallbackFigures,
    CallFigures,
    CallsReport,
    DeadDelivery,
    Filters,
    LeadDay,
    LeadsReport,
    ManagerResponse,
    MissedReport,
    PeriodInfo,
    PoolFigures,
    PoolHour,
    Recommendation,
    RecoveryFigures,
    SinkFigures,
    TrackingReport,
    WaysIn,
)
from telephony.reports.periods import days_of, hours_of, local_period
from telephony.reports.pool_series import HOURLY_UP_TO_DAYS, Point, PoolSeries
from telephony.reports.rollup import ROLLUP
from telephony.reports.utilisation import HIGH_UTILISATION, hourly_peaks, numbers_needed
from telephony.scenarios.hours import DAYS, WorkingHours

CONFIDENCE_LEVELS = ("exact", "probable", "channel", "none")
NO_VALUE = ""
# Report queries running at once, across all requests: the machine's two cores (SQLite's read
# pool has four connections; the other two stay free for webhooks' lookups).
PARALLEL_READS = 2


T = TypeVar("T")


async def _nothing() -> list[Any]:
    return []


async def _no_names() -> dict[str, str]:
    return {}


class ReportService:
    def __init__(
        self, db: Database, hours: WorkingHours, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._hours = hours
        self._now = now
        self._reading = asyncio.Semaphore(PARALLEL_READS)

    async def _read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One query in its own read transaction. A report runs its queries side by side
        (SQLite: each on its own connection and thread, both cores busy); all reports together
        hold at most `PARALLEL_READS` connections, so webhooks' lookups always find one."""
        async with self._reading, self._db.read() as session:
            return await query(session)

    @property
    def zone_name(self) -> str:
        return str(self._hours.zone)

    def period(self, start: str | None, end: str | None) -> tuple[PeriodInfo, Period]:
        """Raises BadPeriod."""
        today = self._now().astimezone(self._hours.zone).date()
        first, last, period = local_period(start, end, self._hours.zone, today)
        return PeriodInfo(start=first, end=last, timezone=self.zone_name), period

    async def options(self) -> dict[str, list[tuple[str, str]]]:
        """Values the filters offer: providers, pools, managers (value, label)."""
        async with self._db.read() as session:
            names = await manager_names(session)
            pools = await pool_sizes(session)
        return {
            "provider": [("megafon", "МегаФон"), ("novofon", "Новофон")],
            "pool": [(pool, pool) for pool in sorted(pools)],
            "manager": sorted(names.items(), key=lambda item: item[1]),
        }

    async def calls(
        self, info: PeriodInfo, period: Period, flt: CallFilter, by: str = "source"
    ) -> CallsReport:
        if by not in DIMENSIONS:
            raise ValueError(by)
        one_day = info.start == info.end
        series_by = "hour" if one_day else "day"
        read = self._read
        # Each query reads its own snapshot: under live traffic a call that lands in between
        # can show in one figure and not yet in the next (the next load shows it everywhere).
        totals, rows, series, attributed, names = await asyncio.gather(
            read(lambda session: calls_by(session, period, flt, "total")),
            read(lambda session: calls_by(session, period, flt, by)),
            read(lambda session: calls_by(session, period, flt, series_by))
            if by != series_by
            else _nothing(),
            read(lambda session: attributed_counts(session, period, flt)),
            read(manager_names) if by == "manager" else _no_names(),
        )
        if by == series_by:
            series = rows
        keys = hours_of(info.start, info.end) if one_day else days_of(info.start, info.end)
        found = {row.key: row for row in series}
        filled = [
            _figures(found.get(key) or CallRow(key, 0, 0, 0, 0, 0), series_by) for key in keys
        ]
        if by in ("day", "hour"):
            rows_out = (
                filled if by == series_by else [_figures(row, by, one_day=one_day) for row in rows]
            )
        else:
            rows_out = sorted(
                (_figures(row, by, names) for row in rows), key=lambda f: (-f.total, f.label)
            )
        total = totals[0] if totals else CallRow("total", 0, 0, 0, 0, 0)
        confidence = with_unattributed(attributed, total.total)
        callback, chats = await asyncio.gather(
            read(lambda session: callback_rows(session, period.start, period.end)),
            read(lambda session: chat_lead_count(session, period.start, period.end)),
        )
        callback_figures = _callback_figures(callback)
        confidence = {level: confidence.get(level, 0) for level in CONFIDENCE_LEVELS}
        confidence_all = dict(confidence)
        confidence_all["exact"] += callback_figures.requested + chats
        return CallsReport(
            period=info,
            filters=_filters(flt),
            by=by,
            totals=_figures(total, "total"),
            rows=rows_out,
            series=filled,
            confidence=confidence,
            ways_in=WaysIn(calls=total.total, callbacks=callback_figures.requested, chats=chats),
            confidence_all=confidence_all,
            callback=callback_figures,
        )

    async def missed(self, info: PeriodInfo, period: Period, flt: CallFilter) -> MissedReport:
        read = self._read
        rows, per_manager, names = await asyncio.gather(
            read(lambda session: missed_calls(session, period, flt)),
            read(lambda session: answered_by_manager(session, period, flt)),
            read(manager_names),
        )
        summary = recovery.summarise(rows, self._hours, nobody=NO_VALUE)
        waits = summary.waits
        totals: Counter[str] = Counter()
        by_day: dict[str, Counter[str]] = defaultdict(Counter)
        for (day, result), count in summary.outcomes.items():
            totals[result] += count
            by_day[day][result] += count
        managers: dict[str, ManagerResponse] = {}
        for key, (answered, missed) in per_manager.items():
            login = key or NO_VALUE
            managers[login] = _manager(login, names, answered, missed, waits.get(login, []))
        for login, values in waits.items():
            if login not in managers:
                managers[login] = _manager(login, names, 0, 0, values)
        return MissedReport(
            period=info,
            filters=_filters(flt),
            totals=_recovery("total", totals),
            days=[
                _recovery(day, by_day.get(day, Counter())) for day in days_of(info.start, info.end)
            ],
            managers=sorted(managers.values(), key=lambda m: (m.manager == NO_VALUE, m.name)),
            working_hours=describe_hours(self._hours),
        )

    async def leads(self, info: PeriodInfo, period: Period) -> LeadsReport:
        read = self._read
        created, days, sinks, dead = await asyncio.gather(
            read(lambda session: lead_counts(session, period)),
            read(lambda session: lead_days(session, period)),
            read(lambda session: outbox_counts(session, period)),
            read(lambda session: dead_deliveries(session, period)),
        )
        per_day: dict[str, Counter[str]] = defaultdict(Counter)
        for day, source, count in days:
            per_day[day][source if source in ("call", "form") else "other"] += count
        figures: dict[str, Counter[str]] = defaultdict(Counter)
        for sink, status, failed, count in sinks:
            if status == "done":
                figures[sink]["delivered"] += count
            elif status == "dead":
                figures[sink]["dead"] += count
            else:
                figures[sink]["retrying" if failed else "pending"] += count
        zone = self._hours.zone
        return LeadsReport(
            period=info,
            created={**created, "total": sum(created.values())},
            days=[
                LeadDay(
                    day=day,
                    call=per_day[day]["call"],
                    form=per_day[day]["form"],
                    other=per_day[day]["other"],
                )
                for day in days_of(info.start, info.end)
            ],
            sinks=[
                SinkFigures(
                    sink=sink,
                    delivered=c["delivered"],
                    pending=c["pending"],
                    retrying=c["retrying"],
                    dead=c["dead"],
                )
                for sink, c in sorted(figures.items())
            ],
            dead=[
                DeadDelivery(
                    id=row.id,
                    sink=row.sink,
                    lead_id=row.lead_id,
                    call_id=row.call_id,
                    attempts=row.attempts,
                    last_error=row.last_error,
                    created_at=row.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                )
                for row in dead
            ],
        )

    async def tracking(self, info: PeriodInfo, period: Period, flt: CallFilter) -> TrackingReport:
        """Hours the rollup closed are read from `report_pool_hours` (summed per day in SQL for
        a long period); the rest (the last hours, or all of them when local hours are not whole
        UTC hours) are computed from every lease and visit."""

        read = self._read
        recent = period  # computed from leases and visits
        if period.offset_minutes % 60 == 0:
            done = await read(lambda session: rollup_done_until(session, ROLLUP))
            if done is not None and done > period.start:
                recent = Period(min(done, period.end), period.end, period.offset_minutes)
        days = (info.end - info.start).days + 1
        daily = days > HOURLY_UP_TO_DAYS

        async def closed_hours(session: AsyncSession) -> Sequence[PoolHourRow | PoolDayRow]:
            if daily:
                return await pool_days(session, period, recent.start, HIGH_UTILISATION, flt.pool)
            return await pool_hours(session, period.start, recent.start, flt.pool)

        # The queries run side by side, each in its own read transaction (SQLite: WAL readers
        # beside the writer). The rows before `recent.start` are there: the watermark was
        # committed with them and never moves back.
        computing = recent.start < recent.end
        rolled, spans, visits, sizes, attributed, inbound = await asyncio.gather(
            read(closed_hours) if recent.start > period.start else _nothing(),
            read(lambda session: lease_spans(session, recent, flt.pool))
            if computing
            else _nothing(),
            read(lambda session: visits_by_hour(session, recent, flt.pool))
            if computing
            else _nothing(),
            read(pool_sizes),
            read(lambda session: attributed_counts(session, period, flt)),
            read(lambda session: inbound_count(session, period, flt)),
        )
        confidence = with_unattributed(attributed, inbound)
        series = _pool_series(info, period, recent, daily, sizes, rolled, spans, visits)
        if flt.pool:
            series = {pool: s for pool, s in series.items() if pool == flt.pool}
        labels = days_of(info.start, info.end) if daily else hours_of(info.start, info.end)
        points: list[PoolHour] = []
        figures: list[PoolFigures] = []
        for pool, one in sorted(series.items()):
            size = one.size
            for label in labels:
                point = one.points.get(label) or Point()
                points.append(
                    PoolHour(
                        hour=label,
                        pool=pool,
                        peak_live=point.peak_live,
                        utilisation=round(point.peak_live / size, 4) if size else 0.0,
                        overloaded_visits=point.overloaded_visits,
                    )
                )
            figures.append(_pool_figures(pool, one, days))
        return TrackingReport(
            period=info,
            resolution="day" if daily else "hour",
            pools=figures,
            hours=points,
            confidence={level: confidence.get(level, 0) for level in CONFIDENCE_LEVELS},
        )


def _callback_figures(
    rows: Sequence[tuple[datetime, datetime | None, bool | None]],
) -> CallbackFigures:
    waits = sorted(
        (dialled - requested).total_seconds() for requested, dialled, _ in rows if dialled
    )
    return CallbackFigures(
        requested=len(rows),
        dialled=len(waits),
        answered=sum(1 for _, _, answered in rows if answered),
        median_seconds_to_ring=round(statistics.median(waits)) if waits else None,
    )


def _pool_series(
    info: PeriodInfo,
    period: Period,
    recent: Period,
    daily: bool,
    sizes: dict[str, int],
    rolled: Sequence[PoolHourRow | PoolDayRow],
    spans: Sequence[Any],
    visits: Sequence[tuple[str, str, int, int]],
) -> dict[str, PoolSeries]:
    """Every pool's points: the rollup's rows for closed hours, then the hours computed from
    leases and visits."""
    series: dict[str, PoolSeries] = {}

    def of(pool: str) -> PoolSeries:
        found = series.get(pool)
        if found is None:
            found = series[pool] = PoolSeries(sizes.get(pool, 0), daily)
        return found

    for pool in sizes:
        of(pool)
    if rolled:
        if daily:
            for row in rolled:
                assert isinstance(row, PoolDayRow)
                of(row.pool).add_day(
                    row.day, row.peak_live, row.visits, row.overloaded_visits, row.busy_hours
                )
        else:
            first = int(period.start.timestamp())
            labels = _hour_labels(info.start, int((recent.start - period.start).total_seconds()))
            for row in rolled:
                assert isinstance(row, PoolHourRow)
                of(row.pool).add_hour(
                    labels[(row.hour - first) // 3600],
                    row.peak_live,
                    row.visits,
                    row.overloaded_visits,
                )
    if recent.start < recent.end:
        peaks = hourly_peaks(spans, recent)
        visit_counts: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for pool, hour, count, overloaded in visits:
            visit_counts[pool][hour] = (count, overloaded)
        for pool in set(peaks) | set(visit_counts):
            per_hour, per_visits = peaks.get(pool, {}), visit_counts.get(pool, {})
            for hour in set(per_hour) | set(per_visits):
                count, overloaded = per_visits.get(hour, (0, 0))
                of(pool).add_hour(hour, per_hour.get(hour, 0), count, overloaded)
    return series


def _pool_figures(pool: str, series: PoolSeries, days: int) -> PoolFigures:
    size, peak = series.size, series.peak_live
    total_visits, overloaded = series.visits, series.overloaded_visits
    utilisation = peak / size if size else 0.0
    advice = None
    if utilisation > HIGH_UTILISATION or overloaded:
        per_day = max(round(total_visits / days), 1)
        advice = Recommendation(
            numbers=max(numbers_needed(peak), size + (1 if overloaded else 0)),
            visits_per_day=per_day,
            command=f"trubka pool plan --visits-per-day {per_day}",
        )
    return PoolFigures(
        pool=pool,
        numbers=size,
        peak_live=peak,
        peak_utilisation=round(utilisation, 4),
        hours_over_75=series.busy_hours,
        visits=total_visits,
        overloaded_visits=overloaded,
        recommendation=advice,
    )


def _hour_labels(first: date, seconds: int) -> list[str]:
    """Local `YYYY-MM-DD HH` of each hour from the first day's midnight, at that day's offset
    (as the live sweep labels them)."""
    count = -(-seconds // 3600)
    days = [(first + timedelta(days=n)).isoformat() for n in range(count // 24 + 1)]
    return [f"{days[index // 24]} {index % 24:02d}" for index in range(count)]


def _filters(flt: CallFilter) -> Filters:
    return Filters(provider=flt.provider, pool=flt.pool, manager=flt.manager)


def _label(
    key: str | None, by: str, names: dict[str, str] | None = None, one_day: bool = True
) -> str:
    if not key:
        return {
            "manager": "без менеджера",
            "pool": "без пула",
            "source": "без источника",
            "campaign": "без кампании",
            "landing": "без страницы входа",
        }.get(by, "—")
    if by == "day":
        return date.fromisoformat(key).strftime("%d.%m")
    if by == "hour":  # `YYYY-MM-DD HH`: the hour alone when one day is shown
        return f"{key[11:13]}:00" if one_day else f"{key[8:10]}.{key[5:7]} {key[11:13]}:00"
    if names and key in names:
        return names[key]
    return key


def _figures(
    row: CallRow, by: str, names: dict[str, str] | None = None, one_day: bool = True
) -> CallFigures:
    return CallFigures(
        key=row.key or NO_VALUE,
        label=_label(row.key, by, names, one_day),
        total=row.total,
        unique=row.unique,
        first_time=row.first_time,
        answered=row.answered,
        missed=row.missed,
    )


def _recovery(key: str, counts: Counter[str]) -> RecoveryFigures:
    return RecoveryFigures(
        key=key, missed=sum(counts.values()), **{name: counts[name] for name in recovery.OUTCOMES}
    )


def _manager(
    login: str, names: dict[str, str], answered: int, missed: int, waits: list[float]
) -> ManagerResponse:
    median = recovery.percentile(waits, 0.5)
    p90 = recovery.percentile(waits, 0.9)
    return ManagerResponse(
        manager=login,
        name=names.get(login, login) if login else "без менеджера",
        answered=answered,
        missed=missed,
        callbacks=len(waits),
        median_minutes=round(median, 1) if median is not None else None,
        p90_minutes=round(p90, 1) if p90 is not None else None,
    )


def describe_hours(hours: WorkingHours) -> str:
    """`пн–пт 09:00–18:00; сб 10:00–15:00` (the weekdays of the scenario file, equal days
    joined)."""
    names = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
    parts: list[str] = []
    index = 0
    while index < len(DAYS):
        spans = hours.week.get(index, [])
        last = index
        while last + 1 < len(DAYS) and hours.week.get(last + 1, []) == spans:
            last += 1
        if spans:
            days = names[index] if last == index else f"{names[index]}–{names[last]}"
            text = ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in spans)
            parts.append(f"{days} {text}")
        index = last + 1
    return "; ".join(parts) or "не заданы"
