"""`trubka outbox`: what waits for delivery per sink; `trubka outbox retry ID|--all-dead`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Subparsers
from bot.leads import leads_config, retry_policy
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from storage.types import utcnow
from telephony.access import audit
from telephony.leads import outbox

STATES = ("pending", "failed", "delivering", "done", "dead")


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("outbox", help="lead deliveries: pending / failed / dead per sink")
    parser.add_argument("--problems", action="store_true", help="list failed and dead rows")
    parser.set_defaults(run=run_show)
    actions = parser.add_subparsers(dest="outbox_command")
    retry = actions.add_parser("retry", help="retry a dead row (by id) or every dead row")
    retry.add_argument("row_id", nargs="?", type=int)
    retry.add_argument("--all-dead", action="store_true")
    retry.set_defaults(run=run_retry)


async def _show(settings: Settings, problems: bool) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        counts = await outbox.stats(db)
        print(f"{'sink':<16}" + "".join(f"{state:>12}" for state in STATES))
        for sink, states in sorted(counts.items()):
            print(f"{sink:<16}" + "".join(f"{states.get(state, 0):>12}" for state in STATES))
        if not counts:
            print("(empty)")
        if problems:
            for row in await outbox.problem_rows(db):
                print(
                    f"#{row.id} {row.sink} {row.key} {row.status} attempts={row.attempts} "
                    f"next={row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z error={row.last_error}"
                )
    finally:
        await db.dispose()


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_show(settings, args.problems))
    return EXIT_OK


async def _retry(settings: Settings, row_id: int | None) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        policy = retry_policy(leads_config(settings))
        count = await outbox.retry_dead(db, now=utcnow(), policy=policy, row_id=row_id)
        target = f"outbox:{row_id}" if row_id is not None else "outbox:all-dead"
        await audit.write(db, audit.cli_actor(), "lead.resend", target, outcome=f"{count} retried")
        return count
    finally:
        await db.dispose()


def run_retry(settings: Settings, args: argparse.Namespace) -> int:
    if (args.row_id is None) == (not args.all_dead):
        print("error: give a row id or --all-dead (not both)", file=sys.stderr)
        return EXIT_USAGE
    revived = asyncio.run(_retry(settings, args.row_id))
    print(f"{revived} dead row(s) will be retried")
    return EXIT_OK if revived or args.all_dead else EXIT_FAILURE
