"""Report periods: local calendar days in TRUBKA_TIMEZONE, turned into a UTC range."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage.report_queries import Period

DEFAULT_DAYS = 7
MAX_DAYS = 366
# Days a report can cover: no call predates the first, and the last leaves room for the
# time-zone arithmetic (year 1 or 9999 overflows it).
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class BadPeriod(ValueError):
    """A period a user asked for that makes no sense; the message names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadPeriod(field, "must be a date like 2026-12-01") from None
    if not EARLIEST <= day <= LATEST:
        raise BadPeriod(field, f"must be from {EARLIEST} to {LATEST}")
    return day


def local_period(
    start: str | None, end: str | None, zone: ZoneInfo, today: date
) -> tuple[date, date, Period]:
    """`from`/`to` (inclusive local dates, default: the last 7 days up to today).

    Days are grouped at the UTC offset of the first day: exact for zones without daylight
    saving (Moscow), an hour off around a clock change elsewhere.
    """
    last = _date(end, "to") or today
    first = _date(start, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise BadPeriod("to", "is before from")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadPeriod("from", f"a period is at most {MAX_DAYS} days")
    begin = datetime.combine(first, time(), tzinfo=zone)
    finish = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    offset = begin.utcoffset() or timedelta()
    return first, last, Period(begin, finish, int(offset.total_seconds() // 60))


def days_of(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def hours_of(first: date, last: date) -> list[str]:
    return [f"{day} {hour:02d}" for day in days_of(first, last) for hour in range(24)]
