"""Pool utilisation: the peak number of live leases in each local hour ÷ the pool's numbers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from storage.report_queries import Period

# Call-tracking vendors advise more numbers above this (Call Dynamics: 75%).
HIGH_UTILISATION = 0.75


def hourly_peaks(
    spans: Iterable[tuple[str, datetime, datetime]], period: Period
) -> dict[str, dict[str, int]]:
    """pool → local hour (`YYYY-MM-DD HH`) → most leases live at once during that hour."""
    events: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for pool, start, end in spans:
        events[pool].append((start, 1))
        events[pool].append((end, -1))
    shift = timedelta(minutes=period.offset_minutes)
    peaks: dict[str, dict[str, int]] = {}
    for pool, changes in events.items():
        changes.sort()  # an end before a start at the same moment: a handed-over number
        per_hour: dict[str, int] = {}
        live = 0
        hour_start = period.start.astimezone(UTC)
        label = (hour_start + shift).strftime("%Y-%m-%d %H")
        for moment, delta in changes:
            if moment < period.start:
                live += delta
                continue
            while moment >= hour_start + timedelta(hours=1) and hour_start < period.end:
                per_hour[label] = max(per_hour.get(label, 0), live)
                hour_start += timedelta(hours=1)
                label = (hour_start + shift).strftime("%Y-%m-%d %H")
            if hour_start >= period.end:
                break
            per_hour[label] = max(per_hour.get(label, 0), live)
            live += delta
            per_hour[label] = max(per_hour[label], live)
        while hour_start < period.end:
            per_hour[label] = max(per_hour.get(label, 0), live)
            hour_start += timedelta(hours=1)
            label = (hour_start + shift).strftime("%Y-%m-%d %H")
        peaks[pool] = per_hour
    return peaks


def numbers_needed(peak_live: int) -> int:
    """Enough numbers that the busiest hour stays at 75%."""
    return max(math.ceil(peak_live / HIGH_UTILISATION), 1)
