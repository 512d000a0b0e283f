"""`trubka serve [--host H] [--port P]`: HTTP server, bot and workers in one process."""

from __future__ import annotations

import argparse
import asyncio
import logging

from bot.commands import EXIT_OK, Subparsers
from bot.settings import ConfigurationError, Settings


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("serve", help="HTTP server, bot and workers in one process")
    parser.add_argument("--host", help="overrides TRUBKA_HTTP_HOST")
    parser.add_argument("--port", type=int, help="overrides TRUBKA_HTTP_PORT")
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
    from bot.app import build_app  # the whole app, only for the command that serves it
    from bot.http_server import serve

    use_uvloop()

    async def main() -> None:
        await serve(await build_app(settings), args.host or settings.http_host, port)

    asyncio.run(main())
    return EXIT_OK
