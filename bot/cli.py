"""`trubka` (and `python -m bot`): the command line. Exit codes: 0 ok, 1 failure, 2 bad usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from bot import logs
from bot.commands import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Runner,
    audit,
    call,
    client,
    db,
    demo,
    inbox,
    outbox,
    pool,
    serve,
    token,
)
from bot.settings import ConfigurationError, load_settings

# Each module adds its own subcommand; a new command is a new module listed here.
COMMANDS = (serve, db, call, pool, outbox, inbox, demo, token, audit, client)


def trubka_version() -> str:
    try:
        return version("trubka")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="trubka", description="Telephony, Telegram managers and lead analytics in one service."
    )
    root.add_argument("--version", action="version", version=f"trubka {trubka_version()}")
    commands = root.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    run: Runner = args.run
    try:
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_format)
        return run(settings, args)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
