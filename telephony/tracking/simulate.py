"""A day of site traffic against a number pool: how many calls reach the exact visit?

Two policies:
- `Fixed`: Novofon's way as its users describe it — a number is bound to a visitor for a fixed
  15 minutes from a page view, then taken back; a call is matched to whoever holds the number at
  that moment (no history).
- `Ours` (LeasePolicy): the number is held while the page pings (visible), released an idle timeout
  after the last ping, never longer than max_length; a released number goes to the end of the
  queue, and a call at t belongs to the newest lease of that number started by t whose grace
  (after its last ping) still runs.

Deterministic for a seed. Every visit is evaluated as a potential caller (calls do not change the
pool), which removes the sampling noise of the few real calls; `caller_share` only scales counts.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field

from telephony.tracking.config import LeasePolicy

DAY = 24 * 3600.0
HOUR = 3600.0


@dataclass(frozen=True)
class Traffic:
    """What a day of visits looks like (defaults: a small Russian B2C/B2B site)."""

    visits_per_day: int
    days: int = 7
    seed: int = 1
    # 80% of visits around a peak at 14:00 (σ 3 h), the rest spread over the day.
    peak_share: float = 0.8
    peak_hour: float = 14.0
    peak_sigma_hours: float = 3.0
    # Visit length: log-normal, median 90 s (σ 1.2: mean ≈ 3 min, 5% longer than ≈ 11 min).
    visit_median_s: float = 90.0
    visit_sigma: float = 1.2
    pages_mean: float = 2.5
    # Calls: the share of visits that call (for counts); when callers dial.
    caller_share: float = 0.05
    after_leaving_share: float = 0.25  # dial after closing the page …
    after_leaving_mean_s: float = 300.0  # … typically a few minutes later,
    late_share: float = 0.1  # … some of them 30 min – 3 h later (from a note or history)
    # Tabs left open and visible on a desktop: they keep pinging for 0.5 – 8 h.
    forgotten_tab_share: float = 0.03
    sources: tuple[tuple[str, float], ...] = (("ads", 0.5), ("organic", 0.3), ("direct", 0.2))


@dataclass(frozen=True)
class Fixed:
    """A fixed lease per visitor, no history."""

    lease_s: float = 15 * 60.0

    def describe(self) -> str:
        return f"fixed {self.lease_s / 60:g}-minute lease, no history"


@dataclass(frozen=True)
class Ours:
    policy: LeasePolicy = field(default_factory=LeasePolicy)

    def describe(self) -> str:
        p = self.policy
        return (
            f"pings every {p.ping_interval} s while in use "
            f"(stop after {p.inactive_after / 60:g} min without input), idle {p.idle_timeout} s, "
            f"max {p.max_length / 3600:g} h, grace {p.grace / 60:g} min, history"
        )


Policy = Fixed | Ours


@dataclass
class Visit:
    start: float
    pages: list[float]  # page view times, the first is `start`
    left: float  # the person closed the page
    visible_until: float  # pings stop (later than `left` for a forgotten tab)
    source: str
    call_at: float  # when this visitor would call


@dataclass(frozen=True)
class Result:
    pool_size: int
    calls_per_day: int  # expected real calls (visits × caller share)
    exact: float  # share attributed to the exact visit
    right_source: float  # share attributed to the right source (exact, or static per source)
    static: float  # share of callers who were shown a static number (pool exhausted)


def formula_size(visits_per_day: int) -> int:
    """Novofon's rule of thumb: visits per day / 100 + 1."""
    return visits_per_day // 100 + 1


def make_visits(traffic: Traffic) -> list[Visit]:
    rng = random.Random(traffic.seed)
    names = [name for name, _ in traffic.sources]
    weights = [share for _, share in traffic.sources]
    visits = []
    for day in range(traffic.days):
        for _ in range(traffic.visits_per_day):
            start = day * DAY + _arrival(rng, traffic)
            length = min(
                rng.lognormvariate(math.log(traffic.visit_median_s), traffic.visit_sigma), 3 * HOUR
            )
            pages = [start]
            while rng.random() < 1 - 1 / traffic.pages_mean:
                pages.append(start + rng.random() * length)
            pages.sort()
            left = start + length
            visible_until = left
            if rng.random() < traffic.forgotten_tab_share:
                visible_until = left + rng.uniform(0.5 * HOUR, 8 * HOUR)
            if rng.random() < traffic.after_leaving_share:
                if rng.random() < traffic.late_share:
                    call_at = left + rng.uniform(0.5 * HOUR, 3 * HOUR)
                else:
                    call_at = left + rng.expovariate(1 / traffic.after_leaving_mean_s)
            else:
                call_at = start + rng.uniform(0.1, 1.0) * length
            source = rng.choices(names, weights)[0]
            visits.append(Visit(start, pages, left, visible_until, source, call_at))
    visits.sort(key=lambda visit: visit.start)
    return visits


def _arrival(rng: random.Random, traffic: Traffic) -> float:
    if rng.random() < traffic.peak_share:
        while True:
            hour = rng.gauss(traffic.peak_hour, traffic.peak_sigma_hours)
            if 0 <= hour < 24:
                return hour * HOUR
    return rng.random() * DAY


@dataclass
class _Lease:
    visit: int
    start: float
    end: float  # shown until
    counts_until: float  # a call until then belongs to it (history)


class _Pool:
    """Numbers with their leases; the free number released longest ago goes out first."""

    def __init__(self, size: int) -> None:
        self.queue: list[tuple[float, int]] = [(-1.0, number) for number in range(size)]
        self.leases: list[list[_Lease]] = [[] for _ in range(size)]
        self.starts: list[list[float]] = [[] for _ in range(size)]

    def take(self, at: float, lease: _Lease) -> int | None:
        if not self.queue or self.queue[0][0] > at:
            return None
        _, number = heapq.heappop(self.queue)
        heapq.heappush(self.queue, (lease.end, number))
        self.leases[number].append(lease)
        self.starts[number].append(lease.start)
        return number

    def newest_before(self, number: int, at: float) -> _Lease | None:
        index = bisect_right(self.starts[number], at) - 1
        return self.leases[number][index] if index >= 0 else None


def simulate(
    traffic: Traffic, pool_size: int, policy: Policy, visits: list[Visit] | None = None
) -> Result:
    visits = visits if visits is not None else make_visits(traffic)
    pool = _Pool(pool_size)
    # (visit index) → the numbers it was shown, with the time each was shown from.
    shown: list[list[tuple[float, int | None]]] = [[] for _ in visits]
    if isinstance(policy, Ours):
        _run_ours(visits, pool, policy.policy, shown)
    else:
        _run_fixed(visits, pool, policy, shown)
    exact = right = static = 0
    for index, visit in enumerate(visits):
        number = _dialled(shown[index], visit.call_at)
        if number is None:
            static += 1
            right += 1  # a static number per source tells the source
            continue
        lease = pool.newest_before(number, visit.call_at)
        if isinstance(policy, Ours):
            holder = lease if lease is not None and lease.counts_until >= visit.call_at else None
        else:
            holder = lease if lease is not None and lease.end > visit.call_at else None
        if holder is None:
            continue  # only the pool is known: a shared pool tells no source
        if holder.visit == index:
            exact += 1
            right += 1
        elif visits[holder.visit].source == visit.source:
            right += 1
    total = len(visits) or 1
    return Result(
        pool_size=pool_size,
        calls_per_day=round(len(visits) * traffic.caller_share / max(traffic.days, 1)),
        exact=exact / total,
        right_source=right / total,
        static=static / total,
    )


def _dialled(shown: list[tuple[float, int | None]], at: float) -> int | None:
    """The number on the visitor's screen when they called (the last one, after leaving)."""
    number = shown[0][1]
    for since, candidate in shown:
        if since > at:
            break
        number = candidate
    return number


def _run_ours(
    visits: list[Visit],
    pool: _Pool,
    policy: LeasePolicy,
    shown: list[list[tuple[float, int | None]]],
) -> None:
    # Pings keep the lease while the page is visible, so one lease covers the whole visit;
    # its end is known from the visit's length.
    for index, visit in enumerate(visits):
        # A forgotten tab stops pinging once nobody touched it for `inactive_after`.
        visible = min(visit.visible_until, visit.left + policy.inactive_after)
        last_ping = min(visible, visit.start + policy.max_length)
        end = min(last_ping + policy.idle_timeout, visit.start + policy.max_length)
        lease = _Lease(index, visit.start, end, max(end, last_ping + policy.grace))
        shown[index].append((visit.start, pool.take(visit.start, lease)))


def _run_fixed(
    visits: list[Visit], pool: _Pool, policy: Fixed, shown: list[list[tuple[float, int | None]]]
) -> None:
    # Every page view: keep the number while the lease runs, else take one again.
    views = sorted((at, index) for index, visit in enumerate(visits) for at in visit.pages)
    until = [-1.0] * len(visits)
    for at, index in views:
        if at < until[index]:
            continue
        lease = _Lease(index, at, at + policy.lease_s, at + policy.lease_s)
        number = pool.take(at, lease)
        until[index] = lease.end if number is not None else -1.0
        if not shown[index] or shown[index][-1][1] != number:
            shown[index].append((at, number))


def size_for(
    traffic: Traffic,
    policy: Policy,
    target: float = 0.95,
    visits: list[Visit] | None = None,
    limit: int | None = None,
) -> int | None:
    """The smallest pool reaching `target` exact attribution (None: not even at `limit`)."""
    visits = visits if visits is not None else make_visits(traffic)
    low = 1
    high = limit or max(8 * formula_size(traffic.visits_per_day), 50)
    if simulate(traffic, high, policy, visits).exact < target:
        return None
    while low < high:
        middle = (low + high) // 2
        if simulate(traffic, middle, policy, visits).exact >= target:
            high = middle
        else:
            low = middle + 1
    return low
