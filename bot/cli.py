"""`trubka` (and `python -m bot`): the command line. Exit codes: 0 ok, 1 failure, 2 bad usage."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.commands import EXIT_FAILURE, EXIT_USAGE, Runner, call, db, demo, outbox, pool, serve
from bot.settings import ConfigurationError, load_settings

# Each module adds its own subcommand; a new command is a new module listed here.
COMMANDS = (serve, db, call, pool, outbox, demo)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="trubka", description="Telephony, Telegram managers and lead analytics in one service."
    )
    commands = root.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run: Runner = args.run
    try:
        return run(load_settings(), args)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
