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
    """pool → local hour (`YYYY-MM-DD HH`) → most leases live at once during that hour.

    `spans` are (pool, start, end) in epoch seconds. A sweep over the sorted starts and ends:
    an end sorts before a start at the same second (a number handed over is not two).
    """
    events: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pool, start, end in spans:
        events[pool].append((start, 1))
        events[pool].append((end, -1))
    first = int(period.start.timestamp())
    count = int((period.end - period.start).total_seconds()) // 3600
    shift = timedelta(minutes=period.offset_minutes)
    labels = [
        (period.start.astimezone(UTC) + shift + timedelta(hours=h)).strftime("%Y-%m-%d %H")
        for h in range(count)
    ]
    peaks: dict[str, dict[str, int]] = {}
    for pool, changes in events.items():
        changes.sort()
        per_hour = [0] * count
        live, hour = 0, 0
        for moment, delta in changes:
            index = (moment - first) // 3600
            if index >= count:
                break
            while hour < index:  # hours without changes keep the leases still live
                per_hour[hour] = max(per_hour[hour], live)
                hour += 1
            live += delta
            if index >= 0 and live > per_hour[index]:
                per_hour[index] = live
        while hour < count:
            per_hour[hour] = max(per_hour[hour], live)
            hour += 1
        peaks[pool] = dict(zip(labels, per_hour, strict=True))
    return peaks


def numbers_needed(peak_live: int) -> int:
    """Enough numbers that the busiest hour stays at 75%."""
    return max(math.ceil(peak_live / HIGH_UTILISATION), 1)
