"""Missed-call recovery and manager response time, counted in working hours."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
_MAX_DAYS = 62


def outcome(row: MissedRow) -> str:
    """What happened after a missed call: a call back (how soon), the client calling again
    first, or nothing yet."""
    if row.callback_at is not None and (row.again_at is None or row.callback_at <= row.again_at):
        waited = row.callback_at - row.started_at
        if waited <= timedelta(minutes=15):
            return WITHIN_15M
        return WITHIN_24H if waited <= timedelta(hours=24) else LATER
    return CALLED_AGAIN if row.again_at is not None else NEVER


def working_seconds(hours: WorkingHours, start: datetime, end: datetime) -> float:
    """Seconds of working time between two moments (a call at night answered at 9:05 waited
    five minutes)."""
    if end <= start:
        return 0.0
    local_start, local_end = start.astimezone(hours.zone), end.astimezone(hours.zone)
    total = 0.0
    day = local_start.date()
    while day <= local_end.date() and (day - local_start.date()).days <= _MAX_DAYS:
        for open_at, close_at in hours.spans(day):
            span_start = datetime.combine(day, open_at, tzinfo=hours.zone)
            span_end = datetime.combine(day, close_at, tzinfo=hours.zone)
            overlap = min(span_end, local_end) - max(span_start, local_start)
            total += max(overlap.total_seconds(), 0.0)
        day += timedelta(days=1)
    return total


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (the median is share 0.5)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]
