"""Report queries (SQLAlchemy Core), the same figures on SQLite and PostgreSQL.

Times are grouped into local days and hours in SQL: the caller passes the UTC offset of the
range (`Period.offset_minutes`), so only a few hundred rows ever leave the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    case,
    distinct,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import dialect_of, insert_for
from storage.leads_models import Lead, OutboxItem
from storage.models import Call, CallAttribution, Manager
from storage.outcome import CallOutcome
from storage.report_models import ReportPoolHour, ReportRollup
from storage.telegram_models import TelegramDelivery
from storage.tracking_models import TrackingLease, TrackingNumber, TrackingVisit

calls = Call.__table__  # type: ignore[attr-defined]
# Answered and missed as everywhere (storage.outcome). A reported call has a start, and only its
# final status brings one: it is terminal, so `missed_with_status` is its `missed` (and reads
# only columns the report index covers).
outcome = CallOutcome.sql(calls)
attributions = CallAttribution.__table__  # type: ignore[attr-defined]
numbers = TrackingNumber.__table__  # type: ignore[attr-defined]
leases = TrackingLease.__table__  # type: ignore[attr-defined]
visits = TrackingVisit.__table__  # type: ignore[attr-defined]
leads = Lead.__table__  # type: ignore[attr-defined]
outbox = OutboxItem.__table__  # type: ignore[attr-defined]
managers = Manager.__table__  # type: ignore[attr-defined]
deliveries = TelegramDelivery.__table__  # type: ignore[attr-defined]
pool_hours_table = ReportPoolHour.__table__  # type: ignore[attr-defined]
rollups = ReportRollup.__table__  # type: ignore[attr-defined]

# Grouping keys of the calls report.
DIMENSIONS = ("day", "hour", "source", "campaign", "landing", "pool", "manager")
# Leases longer than this do not exist (max_length is at most a day), so a range scan on
# started_at finds every lease overlapping a period.
LONGEST_LEASE = timedelta(hours=24)
# How much earlier than its call's start an attribution may be stamped (clocks differ).
ATTRIBUTED_EARLY = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, grouped by local time at `offset_minutes` east of UTC."""

    start: datetime
    end: datetime
    offset_minutes: int = 0


@dataclass(frozen=True)
class CallFilter:
    provider: str | None = None
    pool: str | None = None
    manager: str | None = None  # the PBX login the call rang


@dataclass(frozen=True)
class CallRow:
    key: str | None
    total: int
    unique: int
    first_time: int
    answered: int
    missed: int


# A missed inbound call: (day, started_at, next_at, next_direction, next_manager): its local
# day (`YYYY-MM-DD`), when it rang, and the caller's next call either way (an "out" one is the
# call back, on the same second too; None: none yet) with the manager of that call. Moments in
# seconds since 1970. Result rows as they come: a month has thousands, no objects are built.
MissedRow = tuple[str, int, int | None, str | None, str | None]


async def _rows(session: AsyncSession, query: Any) -> Sequence[Any]:
    """Core statements run on the session's connection (its transaction, no ORM on top)."""
    connection = await session.connection()
    return (await connection.execute(query)).all()


def local_text(session: AsyncSession, column: Any, offset: int, unit: str) -> ColumnElement[str]:
    """`YYYY-MM-DD` (unit "day") or `YYYY-MM-DD HH` ("hour") of a UTC column in local time."""
    if dialect_of(session) == "postgresql":
        shifted = func.timezone("UTC", column) + func.make_interval(0, 0, 0, 0, 0, offset)
        pattern = "YYYY-MM-DD" if unit == "day" else "YYYY-MM-DD HH24"
        return func.to_char(shifted, pattern)
    pattern = "%Y-%m-%d" if unit == "day" else "%Y-%m-%d %H"
    return func.strftime(pattern, column, f"{offset:+d} minutes")


def epoch(session: AsyncSession, column: Any) -> ColumnElement[int]:
    """Seconds since 1970 of a UTC column, as an integer: cheap to fetch in bulk."""
    if dialect_of(session) == "postgresql":
        return func.floor(func.extract("epoch", column)).cast(BigInteger)
    return func.cast(func.strftime("%s", column), Integer)


def _inbound(period: Period, flt: CallFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        calls.c.direction == "in",
        calls.c.internal.is_(False),
        calls.c.started_at >= period.start,
        calls.c.started_at < period.end,
    ]
    if flt.provider:
        conditions.append(calls.c.provider == flt.provider)
    if flt.manager:
        conditions.append(calls.c.manager_user == flt.manager)
    return conditions


def _pool_column() -> Any:
    return numbers.c.pool


def _with_attribution(
    query: Select[Any], flt: CallFilter, *, attribution: bool = True, pool: bool = False
) -> Select[Any]:
    """Join what the query needs: a call's attribution, and its number's pool (the joins cost
    on every call row, so only when asked)."""
    pool = pool or bool(flt.pool)
    if not (attribution or pool):
        return query.select_from(calls)
    joined = calls.outerjoin(attributions, attributions.c.call_id == calls.c.id)
    if pool:
        joined = joined.outerjoin(numbers, numbers.c.number == attributions.c.tracking_number)
    query = query.select_from(joined)
    if flt.pool:
        query = query.where(numbers.c.pool == flt.pool)
    return query


def _without_query(session: AsyncSession, url: Any) -> Any:
    """A landing page without its query (UTM tags, yclid): one row per page, not per click."""
    if dialect_of(session) == "postgresql":
        return func.split_part(url, "?", 1)
    cut = func.instr(url, "?")
    return case((cut > 0, func.substr(url, 1, cut - 1)), else_=url)


def _key(session: AsyncSession, dimension: str, period: Period) -> Any:
    if dimension in ("day", "hour"):
        return local_text(session, calls.c.started_at, period.offset_minutes, dimension)
    return {
        "source": attributions.c.source,
        "campaign": attributions.c.utm_campaign,
        "landing": _without_query(session, attributions.c.landing_url),
        "pool": numbers.c.pool,
        "manager": calls.c.manager_user,
    }[dimension]


async def calls_by(
    session: AsyncSession, period: Period, flt: CallFilter, dimension: str
) -> list[CallRow]:
    """Inbound calls grouped by a dimension (or all together with dimension "total")."""
    key = literal("total") if dimension == "total" else _key(session, dimension, period)
    first = func.sum(case((calls.c.first_time_caller.is_(True), 1), else_=0))
    answered = func.sum(case((outcome.answered, 1), else_=0))
    missed = func.sum(case((outcome.missed_with_status, 1), else_=0))
    query = select(
        key.label("key"),
        func.count().label("total"),
        func.count(distinct(calls.c.phone)).label("unique"),
        first.label("first_time"),
        answered.label("answered"),
        missed.label("missed"),
    ).where(*_inbound(period, flt))
    joins = {"source", "campaign", "landing", "pool"}
    query = _with_attribution(
        query, flt, attribution=dimension in joins, pool=dimension == "pool"
    ).group_by(key).order_by(key)
    rows = await _rows(session, query)
    return [
        CallRow(
            row.key, row.total, row.unique, row.first_time or 0, row.answered or 0, row.missed or 0
        )
        for row in rows
    ]


async def answered_by_manager(
    session: AsyncSession, period: Period, flt: CallFilter
) -> dict[str | None, tuple[int, int]]:
    """Inbound calls per manager: (answered, missed). No distinct callers (the missed report
    does not show them; counting them sorts every call of the period)."""
    answered = func.sum(case((outcome.answered, 1), else_=0))
    missed = func.sum(case((outcome.missed_with_status, 1), else_=0))
    query = (
        select(calls.c.manager_user, answered, missed)
        .where(*_inbound(period, flt))
        .group_by(calls.c.manager_user)
    )
    query = _with_attribution(query, flt, attribution=False)
    rows = await _rows(session, query)
    return {login: (answered or 0, missed or 0) for login, answered, missed in rows}


async def inbound_count(session: AsyncSession, period: Period, flt: CallFilter) -> int:
    """Inbound calls of the period (a year of them is one walk of the report index)."""
    query = _with_attribution(
        select(func.count()).where(*_inbound(period, flt)), flt, attribution=False
    )
    return int((await _rows(session, query))[0][0])


async def attributed_counts(
    session: AsyncSession, period: Period, flt: CallFilter
) -> dict[str, int]:
    """Attributed inbound calls by confidence (rows stored before it was kept: by
    channel_level); the calls with none are the rest of `inbound_count`.

    Read from the attributions' side (a tenth of the calls): an attribution is written once
    its call exists, so those of a period's calls were created after the period began
    (`ATTRIBUTED_EARLY` allows for a PBX clock ahead of ours). Each is checked against its call
    by primary key: a year costs tens of milliseconds, not a probe for every call."""
    level = case(
        (attributions.c.confidence.is_not(None), attributions.c.confidence),
        (attributions.c.channel_level.is_(True), "channel"),
        else_="exact",
    )
    of_period = (
        select(literal(1))
        .where(calls.c.id == attributions.c.call_id, *_inbound(period, flt))
        .exists()
    )
    query = select(level.label("level"), func.count().label("n")).where(
        attributions.c.created_at >= period.start - ATTRIBUTED_EARLY, of_period
    )
    if flt.pool:
        query = query.select_from(
            attributions.join(numbers, numbers.c.number == attributions.c.tracking_number)
        ).where(numbers.c.pool == flt.pool)
    return {row.level: row.n for row in await _rows(session, query.group_by(level))}


def with_unattributed(attributed: dict[str, int], inbound: int) -> dict[str, int]:
    """Every confidence level with its count; "none" for calls no attribution explains."""
    return {**attributed, "none": max(inbound - sum(attributed.values()), 0)}


async def missed_calls(
    session: AsyncSession, period: Period, flt: CallFilter, limit: int = 100_000
) -> list[MissedRow]:
    """Missed inbound calls with the next call between the caller and us. Only the first one
    matters: a call back first is the recovery, the client calling first is "called again".
    One seek in `ix_calls_phone_started` per missed call, and that call's row by id."""
    later = calls.alias("later")
    first_after = (
        select(later.c.id)
        .where(
            later.c.phone == calls.c.phone,
            later.c.internal.is_(False),
            later.c.started_at > calls.c.started_at,
            later.c.direction.in_(("in", "out")),
        )
        # On the same second a call back wins: "out" sorts after "in".
        .order_by(later.c.started_at, later.c.direction.desc())
        .limit(1)
        .scalar_subquery()
    )
    candidates = select(
        local_text(session, calls.c.started_at, period.offset_minutes, "day").label("day"),
        epoch(session, calls.c.started_at).label("at"),
        first_after.label("next_id"),
    ).where(*_inbound(period, flt), outcome.missed_with_status, calls.c.phone.is_not(None))
    inner = _with_attribution(candidates, flt, attribution=False).limit(limit).subquery()
    following = calls.alias("following")
    query = select(
        inner.c.day,
        inner.c.at,
        epoch(session, following.c.started_at),
        following.c.direction,
        following.c.manager_user,
    ).select_from(inner.outerjoin(following, following.c.id == inner.c.next_id))
    return cast(list[MissedRow], await _rows(session, query))


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _utc(value: Any) -> datetime:
    """Raw Core rows skip the UTC type on subqueries: SQLite gives naive or text values."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def manager_names(session: AsyncSession) -> dict[str, str]:
    """PBX login → display name."""
    query = select(managers.c.pbx_login, managers.c.name).where(managers.c.pbx_login.is_not(None))
    return {row.pbx_login: row.name or row.pbx_login for row in await _rows(session, query)}


async def lead_counts(session: AsyncSession, period: Period) -> dict[str, int]:
    query = (
        select(leads.c.source, func.count().label("n"))
        .where(leads.c.created_at >= period.start, leads.c.created_at < period.end)
        .group_by(leads.c.source)
    )
    return {row.source: row.n for row in await _rows(session, query)}


async def lead_days(session: AsyncSession, period: Period) -> list[tuple[str, str, int]]:
    day = local_text(session, leads.c.created_at, period.offset_minutes, "day")
    query = (
        select(day.label("day"), leads.c.source, func.count().label("n"))
        .where(leads.c.created_at >= period.start, leads.c.created_at < period.end)
        .group_by(day, leads.c.source)
        .order_by(day)
    )
    return [(row.day, row.source, row.n) for row in await _rows(session, query)]


async def outbox_counts(session: AsyncSession, period: Period) -> list[tuple[str, str, bool, int]]:
    """(sink, status, failed before, count) of deliveries enqueued in the period."""
    failed = outbox.c.attempts > 0
    query = (
        select(outbox.c.sink, outbox.c.status, failed.label("failed"), func.count().label("n"))
        .where(outbox.c.created_at >= period.start, outbox.c.created_at < period.end)
        .group_by(outbox.c.sink, outbox.c.status, failed)
    )
    return [(r.sink, r.status, bool(r.failed), r.n) for r in await _rows(session, query)]


@dataclass(frozen=True)
class DeadRow:
    id: int
    sink: str
    lead_id: int | None
    call_id: int | None
    attempts: int
    last_error: str | None
    created_at: datetime


async def dead_deliveries(session: AsyncSession, period: Period, limit: int = 50) -> list[DeadRow]:
    query = (
        select(outbox)
        .where(
            outbox.c.status == "dead",
            outbox.c.created_at >= period.start,
            outbox.c.created_at < period.end,
        )
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    return [
        DeadRow(r.id, r.sink, r.lead_id, r.call_id, r.attempts, r.last_error, _utc(r.created_at))
        for r in await _rows(session, query)
    ]


async def pool_sizes(session: AsyncSession) -> dict[str, int]:
    """Active numbers per pool (today's size: removed numbers no longer count)."""
    query = (
        select(numbers.c.pool, func.count().label("n"))
        .where(numbers.c.active.is_(True))
        .group_by(numbers.c.pool)
    )
    return {row.pool: row.n for row in await _rows(session, query)}


async def lease_spans(
    session: AsyncSession, period: Period, pool: str | None = None
) -> list[tuple[str, int, int]]:
    """(pool, start, end) of the leases shown to visitors during the period, in epoch
    seconds (tens of thousands of rows: integers fetch fast)."""
    query = select(
        leases.c.pool,
        epoch(session, leases.c.started_at).label("started"),
        epoch(session, leases.c.ends_at).label("ends"),
    ).where(
        leases.c.started_at >= period.start - LONGEST_LEASE,
        leases.c.started_at < period.end,
        leases.c.ends_at > period.start,
    )
    if pool:
        query = query.where(leases.c.pool == pool)
    return [(pool, started, ends) for pool, started, ends in await _rows(session, query)]


async def live_leases(session: AsyncSession, now: datetime) -> dict[str, int]:
    query = (
        select(leases.c.pool, func.count().label("n"))
        .where(
            leases.c.started_at >= now - LONGEST_LEASE,
            leases.c.started_at <= now,
            leases.c.ends_at > now,
        )
        .group_by(leases.c.pool)
    )
    return {row.pool: row.n for row in await _rows(session, query)}


async def visits_by_hour(
    session: AsyncSession, period: Period, pool: str | None = None
) -> list[tuple[str, str, int, int]]:
    """(pool, local hour, visits, overloaded) — overloaded: a visit of a pool that never got a
    number of it (every number was busy, so it was shown the static number).

    Two grouped queries: with the "never leased" test in WHERE, PostgreSQL plans an anti-join
    (inside a CASE it was a per-row subplan, costed high enough to switch the JIT on)."""
    hour = local_text(session, visits.c.created_at, period.offset_minutes, "hour")
    conditions = [
        visits.c.pool.is_not(None),
        visits.c.created_at >= period.start,
        visits.c.created_at < period.end,
    ]
    if pool:
        conditions.append(visits.c.pool == pool)
    grouped = (visits.c.pool, hour)
    counted = select(visits.c.pool, hour, func.count()).where(*conditions).group_by(*grouped)
    # A visit's leases start when it does or later: bounding them keeps the anti-join to the
    # period's leases instead of the whole history.
    never_leased = ~exists().where(
        leases.c.visit_id == visits.c.id, leases.c.started_at >= period.start
    )
    overloaded = (
        select(visits.c.pool, hour, func.count())
        .where(*conditions, never_leased)
        .group_by(*grouped)
    )
    over = {(name, at): n for name, at, n in await _rows(session, overloaded)}
    return sorted(
        (name, at, n, over.get((name, at), 0))
        for name, at, n in await _rows(session, counted)
    )


async def overloaded_visits_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    leased = exists().where(leases.c.visit_id == visits.c.id, leases.c.started_at >= since)
    query = (
        select(visits.c.pool, func.count().label("n"))
        .where(visits.c.pool.is_not(None), visits.c.created_at >= since, ~leased)
        .group_by(visits.c.pool)
    )
    return {row.pool: row.n for row in await _rows(session, query)}


# --- the hourly rollup of the tracking pools (telephony/reports/rollup.py) ---------------------


class PoolHourRow(NamedTuple):
    pool: str
    hour: int  # its start, epoch seconds (UTC)
    peak_live: int
    visits: int
    overloaded_visits: int


async def rollup_done_until(session: AsyncSession, name: str) -> datetime | None:
    """Every hour before this has its rollup rows (None: the rollup never ran)."""
    query = select(rollups.c.done_until).where(rollups.c.name == name)
    found = (await _rows(session, query))
    return _utc(found[0][0]) if found else None


async def first_tracking_moment(session: AsyncSession) -> datetime | None:
    """The earliest lease start or visit (where a rollup starts; None: no tracking data)."""
    firsts = [
        (await _rows(session, select(func.min(leases.c.started_at))))[0][0],
        (await _rows(session, select(func.min(visits.c.created_at))))[0][0],
    ]
    found = [_utc(value) for value in firsts if value is not None]
    return min(found, default=None)


async def pool_hours(
    session: AsyncSession, start: datetime, end: datetime, pool: str | None = None
) -> list[PoolHourRow]:
    """Rolled-up hours starting in [start, end)."""
    table = pool_hours_table
    query = select(
        table.c.pool,
        epoch(session, table.c.hour),
        table.c.peak_live,
        table.c.visits,
        table.c.overloaded_visits,
    ).where(table.c.hour >= start, table.c.hour < end)
    if pool:
        query = query.where(table.c.pool == pool)
    return [PoolHourRow._make(row) for row in await _rows(session, query)]


class PoolDayRow(NamedTuple):
    pool: str
    day: str  # local `YYYY-MM-DD`
    peak_live: int  # the day's busiest hour
    visits: int
    overloaded_visits: int
    busy_hours: int  # hours whose peak was above `busy_share` of the pool's active numbers


async def pool_days(
    session: AsyncSession, period: Period, end: datetime, busy_share: float,
    pool: str | None = None,
) -> list[PoolDayRow]:
    """Rolled-up hours in [period.start, end) summed per local day (a year is a thousand rows,
    not 26,000 hours)."""
    table = pool_hours_table
    sizes = (
        select(numbers.c.pool, func.count().label("size"))
        .where(numbers.c.active.is_(True))
        .group_by(numbers.c.pool)
        .subquery()
    )
    day = local_text(session, table.c.hour, period.offset_minutes, "day")
    busy = case((table.c.peak_live > sizes.c.size * literal(busy_share), 1), else_=0)
    query = (
        select(
            table.c.pool,
            day.label("day"),
            func.max(table.c.peak_live),
            func.sum(table.c.visits),
            func.sum(table.c.overloaded_visits),
            func.sum(busy),
        )
        .select_from(table.outerjoin(sizes, sizes.c.pool == table.c.pool))
        .where(table.c.hour >= period.start, table.c.hour < end)
        .group_by(table.c.pool, day)
    )
    if pool:
        query = query.where(table.c.pool == pool)
    return [PoolDayRow._make(row) for row in await _rows(session, query)]


async def save_pool_hours(
    session: AsyncSession, name: str, rows: Sequence[PoolHourRow], done_until: datetime
) -> None:
    """Upsert the rows of closed hours and move the watermark forward (never back), in the
    caller's transaction: a report sees both or neither."""
    insert = insert_for(dialect_of(session))
    connection = await session.connection()
    table = pool_hours_table
    values = [
        {
            "pool": row.pool,
            "hour": _moment(row.hour),
            "peak_live": row.peak_live,
            "visits": row.visits,
            "overloaded_visits": row.overloaded_visits,
        }
        for row in rows
    ]
    for start in range(0, len(values), 1000):
        statement = insert(table).values(values[start : start + 1000])
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.pool, table.c.hour],
                set_={
                    "peak_live": statement.excluded.peak_live,
                    "visits": statement.excluded.visits,
                    "overloaded_visits": statement.excluded.overloaded_visits,
                },
            )
        )
    mark = insert(rollups).values(name=name, done_until=done_until)
    await connection.execute(
        mark.on_conflict_do_update(
            index_elements=[rollups.c.name],
            set_={"done_until": case(
                (rollups.c.done_until < mark.excluded.done_until, mark.excluded.done_until),
                else_=rollups.c.done_until,
            )},
        )
    )
