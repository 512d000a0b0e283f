"""Named API tokens: made once (the secret is shown once), stored as sha256, revoked by name.

`TRUBKA_API_TOKEN` stays the bootstrap admin token (checked in constant time, never stored).
Revoking a token also ends the reports sessions it opened.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from storage.access_models import ApiToken, ReportSession
from storage.db import Database
from telephony.access.audit import Actor, record
from telephony.access.scopes import ADMIN, parse_scopes

PREFIX = "trk_"
BOOTSTRAP = "TRUBKA_API_TOKEN"  # the bootstrap token's name in the audit log and sessions
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d{1,5})([dhw])$")


class TokenError(ValueError):
    """A bad name, scope or expiry; a name taken; a token not found."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a named token with its scopes, or the bootstrap admin token."""

    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_duration(raw: str) -> timedelta:
    """`90d`, `12h`, `2w`."""
    found = _DURATION.match(raw.strip())
    if found is None or int(found.group(1)) == 0:
        raise TokenError(f"expiry {raw!r}: use a number and d, h or w (90d, 12h, 2w)")
    amount, unit = int(found.group(1)), found.group(2)
    units = {"d": timedelta(days=1), "h": timedelta(hours=1), "w": timedelta(weeks=1)}
    return amount * units[unit]


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.name,
        tuple(sorted(row.scopes.split(","))),
        row.created_at,
        row.created_by,
        row.expires_at,
        row.revoked_at,
    )


async def create_token(
    db: Database,
    name: str,
    scopes_raw: str,
    *,
    actor: Actor,
    now: datetime,
    expires_in: timedelta | None = None,
) -> tuple[TokenInfo, str]:
    """The new token's info and its secret (shown once, never stored)."""
    if not NAME.match(name) or name == BOOTSTRAP:
        raise TokenError(f"name {name!r}: letters, digits, '_', '.', '-', up to 64")
    try:
        scopes = parse_scopes(scopes_raw)
    except ValueError as exc:
        raise TokenError(str(exc)) from None
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=digest(secret),
        scopes=",".join(sorted(scopes)),
        created_by=actor.who,
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
    )
    async with db.session() as session:
        taken = await session.exec(select(ApiToken.id).where(ApiToken.name == name))
        if taken.first() is not None:
            raise TokenError(f"a token named {name!r} exists (revoke it first)")
        session.add(row)
        await session.flush()
        record(session, actor, "token.create", f"token:{name}", now=now, detail=row.scopes)
    return _info(row), secret


async def list_tokens(db: Database) -> list[TokenInfo]:
    async with db.read() as session:
        rows = await session.exec(select(ApiToken).order_by(col(ApiToken.name)))
        return [_info(row) for row in rows]


async def revoke_token(db: Database, name: str, *, actor: Actor, now: datetime) -> TokenInfo:
    """Revokes the token and ends its reports sessions; its row stays (the name stays taken
    until then, so old audit rows keep meaning one holder) — it is renamed to free it."""
    if not NAME.match(name):  # no token has such a name (and PostgreSQL refuses a NUL in it)
        raise TokenError(f"no active token named {name[:80]!r}")
    async with db.session() as session:
        row = (await session.exec(select(ApiToken).where(ApiToken.name == name))).first()
        if row is None or row.revoked_at is not None:
            raise TokenError(f"no active token named {name!r}")
        row.revoked_at = now
        # The name is free again for a new token; the old row keeps the history.
        row.name = f"{name}~{row.id}"[:64]
        info = _info(row)
        connection = await session.connection()
        await connection.execute(
            update(ReportSession)
            .where(col(ReportSession.token_name) == name, col(ReportSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        record(session, actor, "token.revoke", f"token:{name}", now=now)
    return TokenInfo(name, info.scopes, info.created_at, info.created_by, info.expires_at, now)


async def authenticate(
    db: Database, given: str, *, bootstrap: str | None, now: datetime
) -> Principal | None:
    """The principal of a presented token, or None (unknown, revoked or expired)."""
    if not given:
        return None
    if bootstrap and hmac.compare_digest(given.encode("utf-8"), bootstrap.encode("utf-8")):
        return Principal(BOOTSTRAP, frozenset({ADMIN}))
    if not given.startswith(PREFIX) or len(given) > 200:
        return None
    wanted = digest(given)
    async with db.read() as session:
        row = (await session.exec(select(ApiToken).where(ApiToken.token_hash == wanted))).first()
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return Principal(row.name, frozenset(row.scopes.split(",")))
