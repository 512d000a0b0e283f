"""Pool size vs attribution: a fixed 15-minute lease without history (a) against Trubka's leases
(b). Deterministic (seeded), a few seconds. Run: `.venv/bin/python bench/pool_sim.py`.

Prints, for each traffic level, the share of calls attributed to the exact visit and to the
right source at pool sizes from Novofon's formula (visits/100 + 1) upward, and the pool size
each policy needs for 95% exact attribution.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from telephony.tracking.config import LeasePolicy
from telephony.tracking.simulate import (
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits-per-day", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args()
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
