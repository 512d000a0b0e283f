"""`trubka` (and `python -m bot`): serve, db upgrade, call."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from bot.app import CallLog, build_app, megafon_client
from bot.settings import ConfigurationError, Settings, load_settings
from storage.db import Database
from storage.migrate import upgrade
from telephony.dialing import CallRequestError, megafon_call
from telephony.megafon import PbxError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trubka", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="HTTP server, bot and workers in one process")
    serve.add_argument("--host", help="overrides TRUBKA_HTTP_HOST")
    serve.add_argument("--port", type=int, help="overrides TRUBKA_HTTP_PORT")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations")

    call = commands.add_parser("call", help="megafon_call(client_phone, user) from the shell")
    call.add_argument("client_phone")
    call.add_argument("user", help="PBX login, extension or direct number of the manager")
    return parser


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    web.run_app(
        build_app(settings),
        host=host or settings.http_host,
        port=port or settings.http_port,
        print=lambda message: logging.getLogger("trubka").info(message),
    )
    return EXIT_OK


async def _db_upgrade(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    print("database is up to date")
    return EXIT_OK


async def _call(settings: Settings, client_phone: str, user: str) -> int:
    db = Database(settings.database_url)
    pbx = megafon_client(settings)
    try:
        await upgrade(db)
        requested = await megafon_call(db, pbx, client_phone, user, CallLog())
    except CallRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PbxError as exc:
        print(f"the PBX refused the call: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if pbx is not None:
            await pbx.close()
        await db.dispose()
    print(
        json.dumps(
            {
                "call_id": requested.call_id,
                "client_id": requested.client_id,
                "phone": requested.phone,
                "pbx_callid": requested.pbx_callid,
            }
        )
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
        if args.command == "serve":
            port = args.port
            if port is not None and not 1 <= port <= 65535:
                raise ConfigurationError("--port: must be 1..65535")
            return _serve(settings, args.host, port)
        if args.command == "db":
            return asyncio.run(_db_upgrade(settings))
        return asyncio.run(_call(settings, args.client_phone, args.user))
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
