"""A day of site traffic against a number pool: how many calls reach the exact visit?

Two policies:
- `Fixed`: Novofon's way as its users describe it — a number is bound to a visitor for a fixed
  15 minutes from a page view, then taken back; a call is matched to whoever holds the number at
  that moment (no history).
- `Ours` (LeasePolicy): the number is held while the page pings (visible), released an idle timeout
  after the last ping, never longer than max_length; a released number goes to the end of the
  queue, and a call at t belongs to the newest lease of that number started by t whose grace
  (after its last ping) still runs.

`Ours` also carries the ideas measured toward 95% exact at the formula's size (engagement-aware
leasing, the likelier of two holders, reuse by last input; README "Toward 95%"), and an `Attack`
puts a script taking numbers into the pool (README "Pool protection").

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
    # The first scroll, pointer, key or touch comes this long after landing (exponential mean);
    # a visit shorter than that never interacts.
    interaction_mean_s: float = 8.0


@dataclass(frozen=True)
class Fixed:
    """A fixed lease per visitor, no history."""

    lease_s: float = 15 * 60.0

    def describe(self) -> str:
        return f"fixed {self.lease_s / 60:g}-minute lease, no history"


@dataclass(frozen=True)
class Ours:
    policy: LeasePolicy = field(default_factory=LeasePolicy)
    # Measured ideas (see bench/pool_sim.py --ideas):
    # engagement-aware leasing: a number only from the first interaction, the pool's static
    # number before (and for visits that never interact).
    engaged_only: bool = False
    # a call picks, among the two newest leases of the number still counting, the holder more
    # likely to call at that moment (one who just landed rarely calls within seconds; one who
    # left a minute ago often does) instead of always the newest.
    likeliest_holder: bool = False
    # reuse order by the predicted chance that the last holder still calls: the free number
    # whose holder's last input (scroll, key, touch …) is oldest goes first, so a tab left open
    # (pinging, nobody there) does not count as a fresh holder.
    reuse_by_last_input: bool = False

    def describe(self) -> str:
        p = self.policy
        text = (
            f"pings every {p.ping_interval} s while in use "
            f"(stop after {p.inactive_after / 60:g} min without input), idle {p.idle_timeout} s, "
            f"max {p.max_length / 3600:g} h, grace {p.grace / 60:g} min, history"
        )
        if self.engaged_only:
            text += ", numbers only after interaction"
        if self.likeliest_holder:
            text += ", likeliest of the two newest holders"
        if self.reuse_by_last_input:
            text += ", reuse by last input"
        return text


@dataclass(frozen=True)
class Attack:
    """A script taking numbers from the pool every day from `from_hour` to `to_hour`: it tops its
    leases up to `holds` (None: every number it can get) every `retry_s` seconds and keeps them
    pinged. `refused_after_s`: the request budget refuses it after that many seconds of the
    window; its leases end then and it takes nothing more that day (the penalty)."""

    holds: int | None = None
    refused_after_s: float | None = None
    from_hour: float = 9.0
    to_hour: float = 21.0
    retry_s: float = 1.0

    def windows(self, days: int) -> list[tuple[float, float]]:
        spans = []
        for day in range(days):
            start = day * DAY + self.from_hour * HOUR
            end = day * DAY + self.to_hour * HOUR
            if self.refused_after_s is not None:
                end = min(end, start + self.refused_after_s)
            spans.append((start, end))
        return spans


Policy = Fixed | Ours


@dataclass
class Visit:
    start: float
    pages: list[float]  # page view times, the first is `start`
    left: float  # the person closed the page
    visible_until: float  # pings stop (later than `left` for a forgotten tab)
    source: str
    call_at: float  # when this visitor would call
    engaged_at: float | None = None  # the first interaction (None: never)


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
    # A generator of its own: the visits above stay exactly as they were before this was added.
    engagement = random.Random(traffic.seed * 7919 + 17)
    for visit in visits:
        first = visit.start + engagement.expovariate(1 / traffic.interaction_mean_s)
        visit.engaged_at = first if first < visit.left else None
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
    visit: int  # -1: the attacking script
    start: float
    end: float  # shown until
    counts_until: float  # a call until then belongs to it (history)
    last_ping: float = 0.0
    # Its place in the reuse queue once free (the end unless a policy predicts better).
    queue_key: float | None = None


class _Pool:
    """Numbers with their leases; the free number released longest ago goes out first (with
    `by_key`: the free number whose last lease has the smallest `queue_key`)."""

    def __init__(self, size: int, by_key: bool = False) -> None:
        self.queue: list[tuple[float, int]] = [(-1.0, number) for number in range(size)]
        self.leases: list[list[_Lease]] = [[] for _ in range(size)]
        self.starts: list[list[float]] = [[] for _ in range(size)]
        self.by_key = by_key
        self.ends = [-1.0] * size
        self.keys = [-1.0] * size

    def take(self, at: float, lease: _Lease) -> int | None:
        if self.by_key:
            free = [number for number, end in enumerate(self.ends) if end <= at]
            if not free:
                return None
            number = min(free, key=lambda n: (self.keys[n], n))
            self.ends[number] = lease.end
            self.keys[number] = lease.end if lease.queue_key is None else lease.queue_key
        else:
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

    def two_newest_before(self, number: int, at: float) -> list[_Lease]:
        index = bisect_right(self.starts[number], at)
        return self.leases[number][max(0, index - 2) : index][::-1]


def simulate(
    traffic: Traffic,
    pool_size: int,
    policy: Policy,
    visits: list[Visit] | None = None,
    attack: Attack | None = None,
) -> Result:
    """Shares over the real visitors (an attacking script's leases only take numbers away)."""
    visits = visits if visits is not None else make_visits(traffic)
    pool = _Pool(pool_size, by_key=isinstance(policy, Ours) and policy.reuse_by_last_input)
    # (visit index) → the numbers it was shown, with the time each was shown from.
    shown: list[list[tuple[float, int | None]]] = [[] for _ in visits]
    if isinstance(policy, Ours):
        _run_ours(visits, pool, policy, shown, attack, traffic.days)
    else:
        if attack is not None:
            raise ValueError("attacks are simulated against our leases only")
        _run_fixed(visits, pool, policy, shown)
    exact = right = static = 0
    for index, visit in enumerate(visits):
        number = _dialled(shown[index], visit.call_at)
        if number is None:
            static += 1
            right += 1  # a static number per source tells the source
            continue
        holder = _holder(pool, number, visit.call_at, policy)
        if holder is None or holder.visit < 0:
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


def _holder(pool: _Pool, number: int, at: float, policy: Policy) -> _Lease | None:
    if not isinstance(policy, Ours):
        lease = pool.newest_before(number, at)
        return lease if lease is not None and lease.end > at else None
    counting = [lease for lease in pool.two_newest_before(number, at) if lease.counts_until >= at]
    if not counting:
        return None
    if not policy.likeliest_holder or len(counting) == 1:
        newest = counting[0]
        return newest if newest is pool.newest_before(number, at) else None
    return max(counting, key=lambda lease: _call_density(lease, at))


# What the traffic model says about when people call (a deployment would learn it from its
# own attributed calls): 75% during the visit, spread over it; 25% after leaving, mostly within
# minutes (exponential, mean 5 min), a tenth of those 30 min – 3 h later.
def _call_density(lease: _Lease, at: float) -> float:
    if at <= lease.last_ping:  # still on the page
        length = max(lease.last_ping - lease.start, 1.0)
        elapsed = at - lease.start
        return 0.75 / (0.9 * length) if elapsed >= min(0.1 * length, 10.0) else 0.0
    after = at - lease.last_ping
    density = 0.25 * 0.9 * math.exp(-after / 300.0) / 300.0
    if 0.5 * HOUR <= after <= 3 * HOUR:
        density += 0.25 * 0.1 / (2.5 * HOUR)
    return density


def _dialled(shown: list[tuple[float, int | None]], at: float) -> int | None:
    """The number on the visitor's screen when they called (the last one, after leaving)."""
    if not shown:
        return None
    number = shown[0][1]
    for since, candidate in shown:
        if since > at:
            break
        number = candidate
    return number


def _run_ours(
    visits: list[Visit],
    pool: _Pool,
    ours: Ours,
    shown: list[list[tuple[float, int | None]]],
    attack: Attack | None,
    days: int,
) -> None:
    # Pings keep the lease while the page is visible, so one lease covers the whole visit;
    # its end is known from the visit's length. Events in time order: real visitors taking
    # numbers, and the script topping up its leases.
    policy = ours.policy
    events: list[tuple[float, int]] = []
    for index, visit in enumerate(visits):
        if ours.engaged_only:
            if visit.engaged_at is None:
                shown[index].append((visit.start, None))
                continue
            shown[index].append((visit.start, None))
            events.append((visit.engaged_at, index))
        else:
            events.append((visit.start, index))
    windows = attack.windows(days) if attack is not None else []
    for window, (start, end) in enumerate(windows):
        assert attack is not None
        moment = start
        while moment < end:
            events.append((moment, -1 - window))
            moment += attack.retry_s
    events.sort()
    held: dict[int, int] = {}  # attack window → leases the script holds
    for at, who in events:
        if who < 0:
            assert attack is not None
            window = -1 - who
            _, end = windows[window]
            want = attack.holds if attack.holds is not None else len(pool.leases)
            while held.get(window, 0) < want:
                if pool.take(at, _Lease(-1, at, end, end, end)) is None:
                    break
                held[window] = held.get(window, 0) + 1
            continue
        visit = visits[who]
        # A forgotten tab stops pinging once nobody touched it for `inactive_after`.
        visible = min(visit.visible_until, visit.left + policy.inactive_after)
        last_ping = min(visible, visit.start + policy.max_length)
        end = min(last_ping + policy.idle_timeout, visit.start + policy.max_length)
        end = max(end, at)
        lease = _Lease(who, at, end, max(end, last_ping + policy.grace), last_ping)
        if ours.reuse_by_last_input:
            lease.queue_key = min(end, max(at, visit.left))
        shown[who].append((at, pool.take(at, lease)))


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
