"""`trubka db upgrade`: apply migrations."""

from __future__ import annotations

import argparse
import asyncio

from bot import preflight
from bot.commands import EXIT_OK, Subparsers
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("db", help="database maintenance")
    actions = parser.add_subparsers(dest="db_command", required=True)
    actions.add_parser("upgrade", help="apply migrations").set_defaults(run=run_upgrade)


async def _upgrade(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


def run_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    preflight.check_database(settings.database_url)
    asyncio.run(_upgrade(settings))
    print("database is up to date")
    return EXIT_OK
