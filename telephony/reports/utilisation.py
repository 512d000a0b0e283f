"""Pool utilisation: the peak number of live leases in each local hour ÷ the pool's numbers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, timedelta

from storage.report_queries import Period

# Call-tracking vendors advise more numbers above this (Call Dynamics: 75%).
HIGH_UTILISATION = 0.75


def hourly_peaks(
    spans: Iterable[tuple[str, int, int]], period: Period
) -> dict[str, dict[str, int]]:
    """pool → local hour (`YYYY-MM-DD HH`) → most leases live at once during that hour."""
    first = int(period.start.timestamp())
    count = int((period.end - period.start).total_seconds()) // 3600
    shift = timedelta(minutes=period.offset_minutes)
    labels = [
        (period.start.astimezone(UTC) + shift + timedelta(hours=h)).strftime("%Y-%m-%d %H")
        for h in range(count)
    ]
    return {
        pool: dict(zip(labels, per_hour, strict=True))
        for pool, per_hour in peaks_by_index(spans, first, count).items()
    }


def peaks_by_index(
    spans: Iterable[tuple[str, int, int]], first: int, count: int
) -> dict[str, list[int]]:
    """pool → the most leases live at once in each of `count` hours from epoch second `first`.

    `spans` are (pool, start, end) in epoch seconds. A sweep over the sorted starts and ends:
    an end sorts before a start at the same second (a number handed over is not two). A pool
    with any span is in the answer, even when every hour is 0.
    """
    events: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pool, start, end in spans:
        events[pool].append((start, 1))
        events[pool].append((end, -1))
    peaks: dict[str, list[int]] = {}
    for pool, changes in events.items():
        changes.sort()
        per_hour = [0] * count
        live, hour = 0, 0
        for moment, delta in changes:
            index = (moment - first) // 3600
            if index >= count:
                break
            # Entering an hour (and every hour without changes before it): the leases still
            # live count from its start, whatever changes next.
            while hour <= index:
                per_hour[hour] = max(per_hour[hour], live)
                hour += 1
            live += delta
            if index >= 0 and live > per_hour[index]:
                per_hour[index] = live
        while hour < count:
            per_hour[hour] = max(per_hour[hour], live)
            hour += 1
        peaks[pool] = per_hour
    return peaks


def numbers_needed(peak_live: int) -> int:
    """Enough numbers that the busiest hour stays at 75%."""
    return max(math.ceil(peak_live / HIGH_UTILISATION), 1)
