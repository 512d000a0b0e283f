"""Missed-call recovery and manager response time, counted in working hours."""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from storage.report_queries import MissedRow
from telephony.scenarios.hours import WorkingHours

WITHIN_15M, WITHIN_24H, LATER, CALLED_AGAIN, NEVER = (
    "within_15m",
    "within_24h",
    "later",
    "called_again",
    "never",
)
OUTCOMES = (WITHIN_15M, WITHIN_24H, LATER, CALLED_AGAIN, NEVER)
# Counting working time across more days than this is pointless: the call was forgotten.
MAX_DAYS = 62
_LONGEST = MAX_DAYS * 86_400
_15_MINUTES = 15 * 60
_24_HOURS = 24 * 3600


def outcome(started_at: int, next_at: int | None, next_direction: str | None) -> str:
    """What happened after a missed call, decided by the next call between the caller and us
    (moments in seconds since 1970): ours ("out") is a call back (how soon), theirs is the
    client calling again first; none yet is never."""
    if next_at is None:
        return NEVER
    if next_direction != "out":
        return CALLED_AGAIN
    waited = next_at - started_at
    if waited <= _15_MINUTES:
        return WITHIN_15M
    return WITHIN_24H if waited <= _24_HOURS else LATER


@dataclass
class Recovery:
    """A period's missed calls summed up: outcomes per local day, and each manager's
    response times (working minutes from the missed call to their call back)."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (day, outcome)
    waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def summarise(rows: Sequence[MissedRow], hours: WorkingHours, nobody: str) -> Recovery:
    """`nobody`: the key of call backs no manager is known for. One pass over the rows (a
    month has thousands), then the working time of the call backs."""
    summary = Recovery()
    outcomes = summary.outcomes
    called_back: list[tuple[int, int, str]] = []
    for day, started_at, next_at, next_direction, next_manager in rows:
        outcomes[day, outcome(started_at, next_at, next_direction)] += 1
        if next_at is not None and next_direction == "out":
            called_back.append((started_at, next_at, next_manager or nobody))
    if called_back:
        first = min(started for started, _, _ in called_back)
        last = max(min(callback, started + _LONGEST) for started, callback, _ in called_back)
        clock = WorkingClock(hours, first, last)
        for started_at, callback_at, manager in called_back:
            summary.waits[manager].append(clock.between(started_at, callback_at) / 60)
    return summary


class WorkingClock:
    """Seconds of working time between two moments (a call at night answered at 9:05 waited
    five minutes).

    The open spans of every local day from `first` to `last` (seconds since 1970) are laid out
    once with the working time before each; a question is then one binary search per end,
    not a walk over days (a month of missed calls asks thousands of them)."""

    def __init__(self, hours: WorkingHours, first: int, last: int) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []  # working seconds before each span
        zone = hours.zone
        day = datetime.fromtimestamp(first, zone).date()
        final = datetime.fromtimestamp(last, zone).date()
        total = 0.0
        while day <= final:
            for open_at, close_at in hours.spans(day):
                start = datetime.combine(day, open_at, tzinfo=zone).timestamp()
                end = datetime.combine(day, close_at, tzinfo=zone).timestamp()
                self._starts.append(start)
                self._ends.append(end)
                self._before.append(total)
                total += end - start
            day += timedelta(days=1)

    def _until(self, moment: float) -> float:
        """Working seconds from the first day's start up to `moment`."""
        index = bisect.bisect_right(self._starts, moment) - 1
        if index < 0:
            return 0.0
        return self._before[index] + min(moment, self._ends[index]) - self._starts[index]

    def between(self, start: int, end: int) -> float:
        """Counted over at most `MAX_DAYS` after `start`: a call back later than that was not
        a response to this call."""
        if end <= start:
            return 0.0
        end = min(end, start + _LONGEST)
        return self._until(end) - self._until(start)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (the median is share 0.5)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]
