"""`trubka audit [--since DATE]`: who did what, from where, oldest first."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.commands import EXIT_OK, EXIT_USAGE, Subparsers
from bot.commands.token import with_db
from bot.settings import Settings
from handlers.web.access import parse_since
from telephony.access import audit


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("audit", help="the audit log: who did what, from where")
    parser.add_argument("--since", help="ISO date or date-time (UTC), e.g. 2026-12-01")
    parser.add_argument("--limit", type=int, default=1000)
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    found = asyncio.run(
        with_db(settings, lambda db: audit.entries(db, since=since, limit=args.limit))
    )
    for entry in found:
        print(
            f"{entry.at:%Y-%m-%d %H:%M:%S}Z {entry.actor} [{entry.address}] {entry.action} "
            f"{entry.object} {entry.outcome}" + (f" {entry.detail}" if entry.detail else "")
        )
    return EXIT_OK
