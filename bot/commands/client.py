"""`trubka client export PHONE` (everything held on one person, JSON) and
`trubka client forget PHONE` (erase it; calls stay, anonymous, for the reports)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Subparsers
from bot.commands.token import with_db
from bot.settings import Settings
from storage.types import utcnow
from telephony.access import privacy
from telephony.access.audit import cli_actor
from telephony.phones import InvalidPhone, normalize_phone


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("client", help="one person's data: export or erase (152-FZ)")
    actions = parser.add_subparsers(dest="client_command", required=True)
    export = actions.add_parser("export", help="everything held on the person, as JSON")
    export.add_argument("phone")
    export.set_defaults(run=run_export)
    forget = actions.add_parser("forget", help="erase the person's data (counts stay)")
    forget.add_argument("phone")
    forget.set_defaults(run=run_forget)


def _phone(raw: str) -> str | None:
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    phone = _phone(args.phone)
    if phone is None:
        return EXIT_USAGE
    held = asyncio.run(with_db(settings, lambda db: privacy.export_person(db, phone=phone)))
    print(json.dumps(held, ensure_ascii=False, indent=2, default=str))
    return EXIT_OK if held["clients"] or held["calls"] else EXIT_FAILURE


def run_forget(settings: Settings, args: argparse.Namespace) -> int:
    phone = _phone(args.phone)
    if phone is None:
        return EXIT_USAGE
    done = asyncio.run(
        with_db(
            settings,
            lambda db: privacy.forget_person(db, phone=phone, actor=cli_actor(), now=utcnow()),
        )
    )
    if done is None:
        print("nothing is held on that phone", file=sys.stderr)
        return EXIT_FAILURE
    changed = ", ".join(f"{table} {count}" for table, count in sorted(done.erased.items()) if count)
    print(f"erased clients {done.client_ids}: {changed}")
    return EXIT_OK
