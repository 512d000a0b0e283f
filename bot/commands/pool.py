"""`trubka pool plan --visits-per-day N`: how many tracking numbers to rent.

Runs the pool simulator (telephony.tracking.simulate) with this installation's lease policy
(`[tracking.lease]` of trubka.toml, else the defaults) and prints its recommendation next to
Novofon's formula (visits/100 + 1).
"""

from __future__ import annotations

import argparse
import json
import math

from bot.commands import EXIT_OK, Subparsers
from bot.settings import ConfigurationError, Settings
from bot.tracking import load_tracking
from telephony.tracking.config import Limits
from telephony.tracking.simulate import (
    Fixed,
    Ours,
    Traffic,
    formula_size,
    make_visits,
    simulate,
    size_for,
)

MAX_SIMULATED_VISITS = 100_000


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("pool", help="call-tracking number pool")
    actions = parser.add_subparsers(dest="pool_command", required=True)
    plan = actions.add_parser("plan", help="recommend a pool size for a traffic level")
    plan.add_argument("--visits-per-day", type=int, required=True, metavar="N")
    plan.add_argument("--target", type=float, default=0.95, help="exact share wanted (0.95)")
    plan.add_argument("--days", type=int, default=7, help="days to simulate (7)")
    plan.add_argument("--seed", type=int, default=1)
    plan.add_argument("--json", action="store_true", help="print the figures as JSON")
    plan.set_defaults(run=run_plan)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def run_plan(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.visits_per_day <= 100_000:
        raise ConfigurationError("--visits-per-day: must be 1..100000")
    if not 0 < args.target < 1:
        raise ConfigurationError("--target: must be between 0 and 1, e.g. 0.95")
    if not 1 <= args.days <= 60:
        raise ConfigurationError("--days: must be 1..60")
    tracking = load_tracking(settings)
    policy = tracking.lease
    # Enough simulated visits for stable figures, few enough to answer in seconds.
    days = min(args.days, max(1, MAX_SIMULATED_VISITS // args.visits_per_day))
    traffic = Traffic(args.visits_per_day, days=days, seed=args.seed)
    visits = make_visits(traffic)
    formula = formula_size(args.visits_per_day)
    ours, fixed = Ours(policy), Fixed()
    at_formula_ours = simulate(traffic, formula, ours, visits)
    at_formula_fixed = simulate(traffic, formula, fixed, visits)
    limit = max(8 * formula, 50)
    recommended = size_for(traffic, ours, args.target, visits, limit)
    fixed_needs = size_for(traffic, fixed, args.target, visits, limit)
    if args.json:
        figures = {
            "visits_per_day": args.visits_per_day,
            "formula": formula,
            "recommended": recommended,
            "fixed_lease_needs": fixed_needs,
            "target": args.target,
            "exact_at_formula": round(at_formula_ours.exact, 4),
            "exact_at_formula_fixed_lease": round(at_formula_fixed.exact, 4),
            "limit": limit,
            "drain": _drain(tracking.limits, recommended or formula),
        }
        print(json.dumps(figures))
        return EXIT_OK
    not_reached = f"not reached even with {limit} numbers"
    print(f"visits per day: {args.visits_per_day} (≈{at_formula_ours.calls_per_day} calls/day)")
    print(
        f"Novofon's formula (visits/100 + 1): {formula} numbers — "
        f"{_percent(at_formula_ours.exact)} of calls tied to the exact visit with Trubka's "
        f"leases, {_percent(at_formula_fixed.exact)} with a fixed 15-minute lease"
    )
    print(
        f"recommended (≥{_percent(args.target)} exact): "
        f"{recommended if recommended is not None else not_reached}"
        + (" numbers" if recommended is not None else "")
    )
    print(
        "a fixed 15-minute lease would need: "
        + (f"{fixed_needs} numbers" if fixed_needs is not None else not_reached)
    )
    print(f"lease policy: {ours.describe()}")
    drain = _drain(tracking.limits, recommended or formula)
    if drain is None:
        print("pool protection: no live-lease cap per address ([tracking.limits])")
    else:
        print(
            f"pool protection: a script staying under the request budget needs "
            f"{drain['addresses']} public addresses in {drain['networks']} networks "
            f"to hold all {recommended or formula} numbers"
        )
    return EXIT_OK


def _drain(limits: Limits, numbers: int) -> dict[str, int] | None:
    """How many addresses and networks a patient script needs to hold `numbers` numbers."""
    if not limits.leases_per_address:
        return None
    addresses = math.ceil(numbers / limits.leases_per_address)
    networks = math.ceil(numbers / limits.leases_per_network) if limits.leases_per_network else 1
    return {"addresses": addresses, "networks": networks}
