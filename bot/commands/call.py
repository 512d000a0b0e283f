"""`trubka call CLIENT_PHONE USER`: megafon_call(client_phone, user) from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.calls import megafon_client
from bot.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Subparsers
from bot.settings import Settings
from bot.shell import CallLog
from storage.db import Database
from storage.migrate import upgrade
from telephony.calls.dialing import CallRequestError, megafon_call
from telephony.providers.megafon import PbxError


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("call", help="megafon_call(client_phone, user) from the shell")
    parser.add_argument("client_phone")
    parser.add_argument("user", help="PBX login, extension or direct number of the manager")
    parser.set_defaults(run=run)


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
    result = {
        "call_id": requested.call_id,
        "client_id": requested.client_id,
        "phone": requested.phone,
        "pbx_callid": requested.pbx_callid,
    }
    print(json.dumps(result))
    return EXIT_OK


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_call(settings, args.client_phone, args.user))
