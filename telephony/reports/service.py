"""Builds each report: one short read-only session of queries, then plain computation."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.report_queries import (
    DIMENSIONS,
    CallFilter,
    CallRow,
    Period,
    answered_by_manager,
    calls_by,
    confidence_counts,
    dead_deliveries,
    lead_counts,
    lead_days,
    lease_spans,
    manager_names,
    missed_calls,
    outbox_counts,
    pool_hours,
    pool_sizes,
    rollup_done_until,
    visits_by_hour,
)
from storage.types import utcnow
from telephony.reports import recovery
from telephony.reports.models import (
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
)
from telephony.reports.periods import days_of, hours_of, local_period
from telephony.reports.rollup import ROLLUP
from telephony.reports.utilisation import HIGH_UTILISATION, hourly_peaks, numbers_needed
from telephony.scenarios.hours import DAYS, WorkingHours

CONFIDENCE_LEVELS = ("exact", "probable", "channel", "none")
NO_VALUE = ""


T = TypeVar("T")


async def _sizes_and_confidence(
    session: AsyncSession, period: Period, flt: CallFilter
) -> tuple[dict[str, int], dict[str, int]]:
    return await pool_sizes(session), await confidence_counts(session, period, flt)


async def _nothing() -> list[Any]:
    return []


class ReportService:
    def __init__(
        self, db: Database, hours: WorkingHours, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._hours = hours
        self._now = now

    async def _read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self._db.read() as session:
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
        async with self._db.read() as session:
            totals = await calls_by(session, period, flt, "total")
            rows = await calls_by(session, period, flt, by)
            series = rows if by == series_by else await calls_by(session, period, flt, series_by)
            confidence = await confidence_counts(session, period, flt)
            names = await manager_names(session) if by == "manager" else {}
        keys = hours_of(info.start, info.end) if one_day else days_of(info.start, info.end)
        found = {row.key: row for row in series}
        filled = [_figures(found.get(key) or CallRow(key, 0, 0, 0, 0), series_by) for key in keys]
        if by in ("day", "hour"):
            rows_out = (
                filled if by == series_by else [_figures(row, by, one_day=one_day) for row in rows]
            )
        else:
            rows_out = sorted(
                (_figures(row, by, names) for row in rows), key=lambda f: (-f.total, f.label)
            )
        total = totals[0] if totals else CallRow("total", 0, 0, 0, 0)
        return CallsReport(
            period=info,
            filters=_filters(flt),
            by=by,
            totals=_figures(
                CallRow("total", total.total, total.unique, total.first_time, total.answered),
                "total",
            ),
            rows=rows_out,
            series=filled,
            confidence={level: confidence.get(level, 0) for level in CONFIDENCE_LEVELS},
        )

    async def missed(self, info: PeriodInfo, period: Period, flt: CallFilter) -> MissedReport:
        async with self._db.read() as session:
            rows = await missed_calls(session, period, flt)
            per_manager = await answered_by_manager(session, period, flt)
            names = await manager_names(session)
        zone = self._hours.zone
        totals: Counter[str] = Counter()
        by_day: dict[str, Counter[str]] = defaultdict(Counter)
        waits: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            result = recovery.outcome(row)
            totals[result] += 1
            by_day[row.started_at.astimezone(zone).date().isoformat()][result] += 1
            if result in (recovery.WITHIN_15M, recovery.WITHIN_24H, recovery.LATER):
                assert row.callback_at is not None
                seconds = recovery.working_seconds(self._hours, row.started_at, row.callback_at)
                waits[row.callback_manager or NO_VALUE].append(seconds / 60)
        managers: dict[str, ManagerResponse] = {}
        for key, (total, answered) in per_manager.items():
            login = key or NO_VALUE
            missed = total - answered
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
        async with self._db.read() as session:
            created = await lead_counts(session, period)
            days = await lead_days(session, period)
            sinks = await outbox_counts(session, period)
            dead = await dead_deliveries(session, period)
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
        """Hours the rollup closed are read from `report_pool_hours`; the rest (the last hours,
        or all of them when local hours are not whole UTC hours) from every lease and visit."""

        read = self._read
        recent = period  # computed from leases and visits
        if period.offset_minutes % 60 == 0:
            done = await read(lambda session: rollup_done_until(session, ROLLUP))
            if done is not None and done > period.start:
                recent = Period(min(done, period.end), period.end, period.offset_minutes)

        # The queries run side by side, each in its own read transaction (SQLite: WAL readers
        # beside the writer). The rows before `recent.start` are there: the watermark was
        # committed with them and never moves back.
        computing = recent.start < recent.end
        rolled, spans, visits, (sizes, confidence) = await asyncio.gather(
            read(lambda session: pool_hours(session, period.start, recent.start, flt.pool))
            if recent.start > period.start
            else _nothing(),
            read(lambda session: lease_spans(session, recent, flt.pool))
            if computing
            else _nothing(),
            read(lambda session: visits_by_hour(session, recent, flt.pool))
            if computing
            else _nothing(),
            read(lambda session: _sizes_and_confidence(session, period, flt)),
        )
        with _collector_paused():  # no await inside: nothing else runs meanwhile
            peaks = hourly_peaks(spans, recent) if computing else {}
            visit_counts: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
            for pool, hour, count, overloaded in visits:
                visit_counts[pool][hour] = (count, overloaded)
            if rolled:
                first = int(period.start.timestamp())
                seconds = int((recent.start - period.start).total_seconds())
                labels = _hour_labels(info.start, seconds)
                for row in rolled:
                    label = labels[(row.hour - first) // 3600]
                    peaks.setdefault(row.pool, {})[label] = row.peak_live
                    if row.visits:
                        visit_counts[row.pool][label] = (row.visits, row.overloaded_visits)
            pools = sorted(set(sizes) | set(peaks) | set(visit_counts))
            if flt.pool:
                pools = [pool for pool in pools if pool == flt.pool]
            days = (info.end - info.start).days + 1
            hours_out: list[PoolHour] = []
            figures: list[PoolFigures] = []
            shown = hours_of(info.start, info.end)
            for pool in pools:
                size = sizes.get(pool, 0)
                per_hour = peaks.get(pool, {})
                per_visits = visit_counts.get(pool, {})
                over = 0
                for hour in shown:
                    live = per_hour.get(hour, 0)
                    share = live / size if size else 0.0
                    over += share > HIGH_UTILISATION
                    hours_out.append(
                        PoolHour(
                            hour=hour,
                            pool=pool,
                            peak_live=live,
                            utilisation=round(share, 4),
                            overloaded_visits=per_visits.get(hour, (0, 0))[1],
                        )
                    )
                peak = max(per_hour.values(), default=0)
                total_visits = sum(count for count, _ in per_visits.values())
                overloaded = sum(o for _, o in per_visits.values())
                utilisation = peak / size if size else 0.0
                per_day = max(round(total_visits / days), 1)
                advice = None
                if utilisation > HIGH_UTILISATION or overloaded:
                    advice = Recommendation(
                        numbers=max(numbers_needed(peak), size + (1 if overloaded else 0)),
                        visits_per_day=per_day,
                        command=f"trubka pool plan --visits-per-day {per_day}",
                    )
                figures.append(
                    PoolFigures(
                        pool=pool,
                        numbers=size,
                        peak_live=peak,
                        peak_utilisation=round(utilisation, 4),
                        hours_over_75=over,
                        visits=total_visits,
                        overloaded_visits=overloaded,
                        recommendation=advice,
                    )
                )
            return TrackingReport(
                period=info,
                pools=figures,
                hours=hours_out,
                confidence={level: confidence.get(level, 0) for level in CONFIDENCE_LEVELS},
            )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Building tens of thousands of small models at once (a year of pool hours): the cyclic
    garbage collector would walk them again and again while they are made (half the time of a
    365-day tracking report). They form no cycles; collection resumes right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        missed=row.total - row.answered,
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
