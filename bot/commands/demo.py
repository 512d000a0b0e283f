"""`trubka demo`: fill a fresh database with a realistic week (managers, site visits through
tracking pools, calls, call backs, leads and their deliveries), the same every time."""

from __future__ import annotations

import argparse
import asyncio

from bot.commands import EXIT_FAILURE, EXIT_OK, Subparsers
from bot.commands.demo_data import DemoShape, fill, is_empty
from bot.settings import ConfigurationError, Settings
from storage.db import Database
from storage.migrate import upgrade


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("demo", help="fill a fresh database with a week of demo data")
    parser.add_argument("--days", type=int, default=7, help="days of data up to now (7)")
    parser.add_argument("--managers", type=int, default=8)
    parser.add_argument("--visits-per-day", type=int, default=900)
    parser.add_argument("--seed", type=int, default=13, help="the same seed, the same data")
    parser.set_defaults(run=run_demo)


async def _demo(settings: Settings, shape: DemoShape) -> dict[str, int] | None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        if not await is_empty(db):
            return None
        return await fill(db, settings.zone, shape)
    finally:
        await db.dispose()


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 400:
        raise ConfigurationError("--days: must be 1..400")
    if not 1 <= args.managers <= 500:
        raise ConfigurationError("--managers: must be 1..500")
    if not 0 <= args.visits_per_day <= 100_000:
        raise ConfigurationError("--visits-per-day: must be 0..100000")
    shape = DemoShape(
        days=args.days, managers=args.managers, visits_per_day=args.visits_per_day,
        seed=args.seed,
    )
    counts = asyncio.run(_demo(settings, shape))
    if counts is None:
        print("the database already has calls: demo data goes into a fresh database only "
              "(set TRUBKA_DATABASE_URL to a new file)")
        return EXIT_FAILURE
    print("demo data written: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    print(f"open {settings.public_url.rstrip('/')}/reports and log in with TRUBKA_API_TOKEN")
    return EXIT_OK
