"""`trubka serve [--host H] [--port P] [--role web|worker|all]`: HTTP server, bot and workers.

`--role web` serves HTTP (webhooks, API, tracking) and runs no background loop; `--role worker`
runs the loops (Telegram, queues, Metrika, scenarios) and serves only /healthz and /metrics;
`all` (the default) does both. Singletons are guarded by database leases, so any number of
processes of any role may share one PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from bot import integrations, preflight
from bot.commands import EXIT_OK, Subparsers
from bot.memory import handing_back_freed_memory, limit_malloc_arenas
from bot.roles import ROLES, Role
from bot.settings import ConfigurationError, Settings

log = logging.getLogger("trubka")


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("serve", help="HTTP server, bot and workers in one process")
    parser.add_argument("--host", help="overrides TRUBKA_HTTP_HOST")
    parser.add_argument("--port", type=int, help="overrides TRUBKA_HTTP_PORT")
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="web: HTTP only; worker: background loops only; all: both (default)",
    )
    parser.set_defaults(run=run)


def use_uvloop() -> bool:
    """uvloop when installed (`pip install trubka[fast]`): a faster event loop, same code."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    logging.getLogger("trubka").info("event loop: uvloop")
    return True


def run(settings: Settings, args: argparse.Namespace) -> int:
    port: int = args.port or settings.http_port
    if not 1 <= port <= 65535:
        raise ConfigurationError("--port: must be 1..65535")
    host: str = args.host or settings.http_host
    role = Role(args.role)
    limit_malloc_arenas()
    integrations.check(settings)
    # The files first (a typo there is the likeliest mistake), then what needs the network.
    from bot.app import build_app, check_files  # the whole app, only for the command that serves it

    check_files(settings)
    preflight.check_database(settings.database_url)
    setting = "--port" if args.port else "TRUBKA_HTTP_PORT"
    sock = preflight.listening_socket(host, port, setting=setting)
    log.info("trubka serve: role %s, listening on %s:%s", role, host, port)
    for line in integrations.summary(settings):
        log.info("integration %s", line)
    for note in integrations.notes(settings):
        log.warning(note)
    from bot.http_server import serve

    use_uvloop()

    async def main() -> None:
        async with handing_back_freed_memory():
            await serve(await build_app(settings, role=role), sock)

    asyncio.run(main())
    return EXIT_OK
