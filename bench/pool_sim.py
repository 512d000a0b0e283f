"""Pool size vs attribution: a fixed 15-minute lease without history (a) against Trubka's leases
(b). Deterministic (seeded), a few seconds. Run: `.venv/bin/python bench/pool_sim.py`.

Prints, for each traffic level, the share of calls attributed to the exact visit and to the
right source at pool sizes from Novofon's formula (visits/100 + 1) upward, and the pool size
each policy needs for 95% exact attribution.

`--ideas` measures the ideas toward 95% exact at the formula's size (before/after table);
`--attack` the exact share of real visitors while a script drains the pool, with and without
the request limits.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from telephony.tracking.config import LeasePolicy
from telephony.tracking.simulate import (
    Attack,
    Fixed,
    Ours,
    Traffic,
    formula_size,
    make_visits,
    simulate,
    size_for,
)


def pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def table(traffic: Traffic, target: float) -> None:
    visits = make_visits(traffic)
    formula = formula_size(traffic.visits_per_day)
    fixed, ours = Fixed(), Ours(LeasePolicy())
    print(
        f"\n== {traffic.visits_per_day} visits/day × {traffic.days} days "
        f"(≈{round(traffic.visits_per_day * traffic.caller_share)} calls/day); "
        f"formula: {formula} numbers"
    )
    print(
        f"{'pool':>5} | {'(a) exact':>9} {'source':>7} {'static':>7} | "
        f"{'(b) exact':>9} {'source':>7} {'static':>7}"
    )
    sizes = sorted({formula, round(formula * 1.5), formula * 2, formula * 3, formula * 4})
    for size in sizes:
        a = simulate(traffic, size, fixed, visits)
        b = simulate(traffic, size, ours, visits)
        mark = "  ← formula" if size == formula else ""
        print(
            f"{size:>5} | {pct(a.exact):>9} {pct(a.right_source):>7} {pct(a.static):>7} | "
            f"{pct(b.exact):>9} {pct(b.right_source):>7} {pct(b.static):>7}{mark}"
        )
    need_a = size_for(traffic, fixed, target, visits)
    need_b = size_for(traffic, ours, target, visits)
    limit = max(8 * formula, 50)
    print(
        f"pool for {pct(target).strip()} exact: (a) "
        f"{need_a if need_a is not None else f'not reached even at {limit}'}"
        f", (b) {need_b if need_b is not None else f'not reached even at {limit}'}"
    )


def sensitivity(visits_per_day: int, days: int, seed: int) -> None:
    """How the assumptions move (b)'s exact share at the formula's size."""
    formula = formula_size(visits_per_day)
    print(
        f"\n== sensitivity at {visits_per_day} visits/day, pool {formula} (formula) and "
        f"{2 * formula} (2×): exact share, (a) / (b)"
    )
    base = Traffic(visits_per_day, days=days, seed=seed)
    cases = {
        "defaults": base,
        "10% call after leaving": replace(base, after_leaving_share=0.10),
        "40% call after leaving": replace(base, after_leaving_share=0.40),
        "no forgotten tabs": replace(base, forgotten_tab_share=0.0),
        "10% forgotten tabs": replace(base, forgotten_tab_share=0.10),
        "visits twice as long": replace(base, visit_median_s=180.0),
        "flat day (no peak)": replace(base, peak_share=0.0),
    }
    for name, traffic in cases.items():
        visits = make_visits(traffic)
        cells = []
        for size in (formula, 2 * formula):
            a = simulate(traffic, size, Fixed(), visits).exact
            b = simulate(traffic, size, Ours(LeasePolicy()), visits).exact
            cells.append(f"{pct(a)} / {pct(b)}")
        print(f"{name:>24}: {cells[0]}   {cells[1]}")


# The lease defaults before issue 15 (pings every 20 s, idle 60 s): the "before" column.
BEFORE = LeasePolicy(ping_interval=20, idle_timeout=60)
IDEAS: dict[str, Ours] = {
    "before (ping 20 s, idle 60 s)": Ours(BEFORE),
    "after: ping 10 s, idle 30 s (kept)": Ours(LeasePolicy()),
    "+ history 3 h where idle (grace)": Ours(LeasePolicy(grace=3 * 3600)),
    "+ reuse by last input": Ours(LeasePolicy(), reuse_by_last_input=True),
    "+ likeliest of two holders": Ours(LeasePolicy(), likeliest_holder=True),
    "+ stop pinging after 2 min idle": Ours(LeasePolicy(inactive_after=120)),
    "engagement-aware leasing": Ours(LeasePolicy(), engaged_only=True),
}


def ideas(levels: list[int], days: int, seed: int, target: float) -> None:
    print(
        f"\n== toward {pct(target).strip()} exact at the formula's size: "
        "exact / right source / static"
    )
    print(
        f"{'policy':>36} | "
        + " | ".join(f"{n:>5}/day (pool {formula_size(n):>2})   " for n in levels)
    )
    needs: dict[str, list[str]] = {}
    for name, policy in IDEAS.items():
        cells = []
        needs[name] = []
        for visits_per_day in levels:
            traffic = Traffic(visits_per_day, days=days, seed=seed)
            visits = make_visits(traffic)
            r = simulate(traffic, formula_size(visits_per_day), policy, visits)
            cells.append(f"{pct(r.exact)} {pct(r.right_source)} {pct(r.static)}")
            need = size_for(traffic, policy, target, visits)
            needs[name].append(str(need) if need is not None else "—")
        print(f"{name:>36} | " + " | ".join(cells))
    print(f"pool for {pct(target).strip()} exact ({', '.join(f'{n}/day' for n in levels)}):")
    for name, sizes in needs.items():
        print(f"{name:>36} : {', '.join(sizes)}")


def attacks(levels: list[int], days: int, seed: int) -> None:
    """Real visitors' exact share while a script takes numbers 09:00-21:00 every day."""
    cases: dict[str, Attack | None] = {
        "no attack": None,
        "100 visits/s, no limits": Attack(holds=None),
        "100 visits/s, default limits": Attack(holds=20, refused_after_s=2.0),
        "under the budget, 10 networks": Attack(holds=20),
        "under the budget, one /24": Attack(holds=6),
    }
    print("\n== a script draining the pool 09:00-21:00 daily: real visitors' exact share")
    print("   (10 addresses; default limits: 20 requests then 1/s per address, 2 leases per")
    print("   address, 6 per /24, refused scripts end their leases and take none for 10 min)")
    print(
        f"{'attack':>32} | " + " | ".join(f"{n:>5}/day (pool {formula_size(n):>2})" for n in levels)
    )
    for name, attack in cases.items():
        cells = []
        for visits_per_day in levels:
            traffic = Traffic(visits_per_day, days=days, seed=seed)
            r = simulate(
                traffic, formula_size(visits_per_day), Ours(), make_visits(traffic), attack
            )
            cells.append(f"{pct(r.exact):>18}")
        print(f"{name:>32} | " + " | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits-per-day", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--ideas", action="store_true", help="only the before/after table")
    parser.add_argument("--attack", action="store_true", help="only the drain figures")
    args = parser.parse_args()
    if args.ideas or args.attack:
        levels = [n for n in args.visits_per_day if n != 300] or args.visits_per_day
        if args.ideas:
            ideas(levels, args.days, args.seed, args.target)
        if args.attack:
            attacks(levels, args.days, args.seed)
        return
    started = time.perf_counter()
    base = Traffic(1, days=args.days, seed=args.seed)
    print("assumptions:", {k: v for k, v in vars(base).items() if k != "visits_per_day"})
    print("(a)", Fixed().describe())
    print("(b)", Ours(LeasePolicy()).describe())
    for visits_per_day in args.visits_per_day:
        table(replace(base, visits_per_day=visits_per_day), args.target)
    sensitivity(1000, args.days, args.seed)
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
