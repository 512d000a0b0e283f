"""The reports' login sessions: a random cookie whose sha256 is a row (`report_sessions`).

A session belongs to the token typed on the form: a named token with `reports:read` (or
`admin`), or the bootstrap TRUBKA_API_TOKEN. It ends when it expires, on logout, when its
token is revoked (`trubka token revoke`), and — for the bootstrap token — when
TRUBKA_API_TOKEN changes (the row keeps that token's hash). HttpOnly (scripts cannot read
it), SameSite=Lax (other sites cannot post with it), Secure behind HTTPS.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from storage.access_models import ApiToken, ReportSession
from storage.db import Database
from telephony.access.scopes import REPORTS_READ, allows
from telephony.access.tokens import BOOTSTRAP, Principal, digest

COOKIE = "trubka_reports"
LIFETIME = 30 * 24 * 3600


async def issue(db: Database, principal: Principal, given_token: str, now: datetime) -> str:
    """A new session for the principal; the cookie's value (only its hash is stored)."""
    value = secrets.token_urlsafe(32)
    async with db.session() as session:
        session.add(
            ReportSession(
                session_hash=digest(value),
                token_name="" if principal.name == BOOTSTRAP else principal.name,
                token_hash=digest(given_token),
                created_at=now,
                expires_at=now + timedelta(seconds=LIFETIME),
            )
        )
    return value


async def holder(
    db: Database, value: str | None, *, bootstrap: str | None, now: datetime
) -> str | None:
    """The name of the token behind a live session (`TRUBKA_API_TOKEN` for the bootstrap
    one), or None."""
    if not value or len(value) > 100:
        return None
    async with db.read() as session:
        row = (
            await session.exec(
                select(ReportSession).where(ReportSession.session_hash == digest(value))
            )
        ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        if not row.token_name:
            current = digest(bootstrap) if bootstrap else None
            return BOOTSTRAP if current is not None and current == row.token_hash else None
        token = (
            await session.exec(select(ApiToken).where(ApiToken.token_hash == row.token_hash))
        ).first()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if not allows(frozenset(token.scopes.split(",")), REPORTS_READ):
        return None
    return token.name


async def end(db: Database, value: str | None, now: datetime) -> None:
    if not value or len(value) > 100:
        return
    async with db.session() as session:
        connection = await session.connection()
        await connection.execute(
            update(ReportSession)
            .where(
                col(ReportSession.session_hash) == digest(value),
                col(ReportSession.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )
