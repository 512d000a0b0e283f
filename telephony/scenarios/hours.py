"""Working hours in TRUBKA_TIMEZONE: is it open now, and when does it open next."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# Looking further than this for an opening means the calendar is (nearly) all holidays.
_HORIZON_DAYS = 400

Span = tuple[time, time]


def parse_days(key: str) -> list[int]:
    """`mon`, `mon-fri`, `sat,sun`, `daily` → weekday numbers (Monday is 0)."""
    key = key.strip().lower()
    if key in ("daily", "every day", "all"):
        return list(range(7))
    days: list[int] = []
    for part in key.split(","):
        part = part.strip()
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"unknown day {part!r}: use mon..sun, ranges like mon-fri, or daily")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"day range {part!r} runs backwards")
        days.extend(range(start, end + 1))
    return days


def parse_spans(value: str | list[str]) -> list[Span]:
    """`09:00-18:00`, a list of such ranges, or `off`."""
    items = [value] if isinstance(value, str) else value
    spans: list[Span] = []
    for item in items:
        if item.strip().lower() in ("off", "closed", ""):
            continue
        match = _RANGE.match(item)
        if match is None:
            raise ValueError(f"{item!r} is not a time range like 09:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{item!r} is not a valid time range")
        start = time(h1, m1)
        end = time.max if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"{item!r} ends before it starts (split a night shift at 24:00)")
        spans.append((start, end))
    return sorted(spans)


@dataclass(frozen=True)
class WorkingHours:
    zone: ZoneInfo
    week: dict[int, list[Span]]  # weekday → its open spans, sorted
    holidays: frozenset[date] = field(default_factory=frozenset)

    def spans(self, day: date) -> list[Span]:
        if day in self.holidays:
            return []
        return self.week.get(day.weekday(), [])

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self.spans(local.date()))

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when open, else the start of the next open span (UTC)."""
        if self.is_open(moment):
            return moment
        local = moment.astimezone(self.zone)
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            for start, _end in self.spans(day):
                candidate = datetime.combine(day, start, tzinfo=self.zone)
                if candidate > local:
                    return candidate.astimezone(UTC)
        raise ValueError("no working time within a year: check working_hours and holidays")
