"""`trubka inbox`: the inbox backlog and set-aside pushes; `trubka inbox reapply ID|--all`.

"Set aside" is the operator's word for the queue engine's "dead"; reapply revives."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Subparsers
from bot.settings import Settings
from storage.db import Database
from storage.inbox_queries import dead_pushes, revive
from storage.migrate import upgrade
from storage.queue_stats import INBOX, queue_stats
from telephony.access import audit


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "inbox", help="PBX pushes: backlog and set-aside pushes (those that could not be applied)"
    )
    parser.add_argument("--limit", type=int, default=50, help="set-aside pushes to list")
    parser.set_defaults(run=run_show)
    actions = parser.add_subparsers(dest="inbox_command")
    again = actions.add_parser(
        "reapply", help="apply a set-aside push again (after the fix), by id or --all"
    )
    again.add_argument("push_id", nargs="?", type=int)
    again.add_argument("--all", action="store_true")
    again.set_defaults(run=run_reapply)


def _call_id(payload: str) -> str:
    try:
        fields = json.loads(payload)
    except ValueError:
        return "?"
    if not isinstance(fields, dict):
        return "?"
    return str(fields.get("callid") or fields.get("pbx_call_id") or "?")


async def _show(settings: Settings, limit: int) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        stats = await queue_stats(db, INBOX)
        print(
            f"waiting: {stats.backlog}  oldest: {stats.oldest_due_seconds:.0f} s  "
            f"set aside: {stats.set_aside}"
        )
        for event in await dead_pushes(db, limit=limit):
            print(
                f"#{event.id} {event.provider} {event.command} {event.event_type or '-'} "
                f"call={_call_id(event.payload)} received={event.received_at:%Y-%m-%d %H:%M:%S}Z"
                f"\n    {event.error}"
            )
    finally:
        await db.dispose()


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_show(settings, args.limit))
    return EXIT_OK


async def _reapply(settings: Settings, push_id: int | None) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        count = await revive(db, push_id)
        target = f"push:{push_id}" if push_id is not None else "push:all"
        await audit.write(
            db, audit.cli_actor(), "push.reapply", target, outcome=f"{count} put back"
        )
        return count
    finally:
        await db.dispose()


def run_reapply(settings: Settings, args: argparse.Namespace) -> int:
    if (args.push_id is None) == (not args.all):
        print("error: give a push id or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    count = asyncio.run(_reapply(settings, args.push_id))
    print(f"{count} push(es) put back in line: the running `trubka serve` applies them now")
    return EXIT_OK if count or args.all else EXIT_FAILURE
