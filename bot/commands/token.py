"""`trubka token create --name N --scope S[,S…] [--expires 90d]`, `token list`,
`token revoke N`: named API tokens (the secret is printed once, only its hash is kept)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.commands import EXIT_OK, EXIT_USAGE, Subparsers
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from storage.types import utcnow
from telephony.access import tokens
from telephony.access.audit import cli_actor
from telephony.access.scopes import SCOPES

T = TypeVar("T")


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("token", help="named API tokens with scopes")
    actions = parser.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="make a token; its secret is printed once")
    create.add_argument("--name", required=True, help="who holds it (shown in the audit log)")
    create.add_argument("--scope", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--expires", help="lifetime: 90d, 12h, 2w (default: never)")
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="every token (never the secrets)")
    listing.set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", help="revoke a token; its reports sessions end")
    revoke.add_argument("name")
    revoke.set_defaults(run=run_revoke)


async def with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        return await work(db)
    finally:
        await db.dispose()


def run_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        expires = tokens.parse_duration(args.expires) if args.expires else None
        info, secret = asyncio.run(
            with_db(
                settings,
                lambda db: tokens.create_token(
                    db, args.name, args.scope, actor=cli_actor(), now=utcnow(), expires_in=expires
                ),
            )
        )
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    until = f", expires {info.expires_at:%Y-%m-%d %H:%M}Z" if info.expires_at else ""
    print(
        f"token {info.name!r} ({','.join(info.scopes)}{until}); shown this once:", file=sys.stderr
    )
    print(secret)
    return EXIT_OK


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    found = asyncio.run(with_db(settings, tokens.list_tokens))
    for info in found:
        state = "revoked" if info.revoked_at else "active"
        if not info.revoked_at and info.expires_at and info.expires_at <= utcnow():
            state = "expired"
        until = f"{info.expires_at:%Y-%m-%d}" if info.expires_at else "never"
        print(
            f"{info.name:<24} {','.join(info.scopes):<40} {state:<8} "
            f"created {info.created_at:%Y-%m-%d} by {info.created_by}, expires {until}"
        )
    if not found:
        print("(no named tokens; TRUBKA_API_TOKEN is the bootstrap admin token)")
    return EXIT_OK


def run_revoke(settings: Settings, args: argparse.Namespace) -> int:
    try:
        asyncio.run(
            with_db(
                settings,
                lambda db: tokens.revoke_token(db, args.name, actor=cli_actor(), now=utcnow()),
            )
        )
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"token {args.name!r} revoked")
    return EXIT_OK
