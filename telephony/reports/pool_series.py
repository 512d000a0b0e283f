"""A tracking pool's utilisation over a report's period: per hour, or per day for long periods
(a year of hours is 8,760 points per pool: no chart shows them, and building them was most of a
year's report)."""

from __future__ import annotations

from dataclasses import dataclass, field

from telephony.reports.utilisation import HIGH_UTILISATION

# Periods up to this many days are shown hour by hour; longer ones day by day.
HOURLY_UP_TO_DAYS = 31


@dataclass
class Point:
    peak_live: int = 0  # a day: its busiest hour
    visits: int = 0
    overloaded_visits: int = 0


@dataclass
class PoolSeries:
    size: int  # active numbers
    daily: bool
    points: dict[str, Point] = field(default_factory=dict)  # local hour or day label → figures
    busy_hours: int = 0  # hours above HIGH_UTILISATION of the numbers

    def add_hour(self, label: str, peak_live: int, visits: int, overloaded: int) -> None:
        """One hour (local `YYYY-MM-DD HH`), added once."""
        if self.size and peak_live / self.size > HIGH_UTILISATION:
            self.busy_hours += 1
        self._add(label[:10] if self.daily else label, peak_live, visits, overloaded)

    def add_day(
        self, day: str, peak_live: int, visits: int, overloaded: int, busy_hours: int
    ) -> None:
        """A day's hours summed up (from the rollup); a day series only."""
        self.busy_hours += busy_hours
        self._add(day, peak_live, visits, overloaded)

    def _add(self, label: str, peak_live: int, visits: int, overloaded: int) -> None:
        point = self.points.get(label)
        if point is None:
            self.points[label] = Point(peak_live, visits, overloaded)
            return
        point.peak_live = max(point.peak_live, peak_live)
        point.visits += visits
        point.overloaded_visits += overloaded

    @property
    def peak_live(self) -> int:
        return max((point.peak_live for point in self.points.values()), default=0)

    @property
    def visits(self) -> int:
        return sum(point.visits for point in self.points.values())

    @property
    def overloaded_visits(self) -> int:
        return sum(point.overloaded_visits for point in self.points.values())
