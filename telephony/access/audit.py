"""The audit log: one row per state-changing action (who, from where, what, on which object,
the outcome). Written in the action's own transaction where there is one (`record`), or in a
short one of its own (`write`, for actions whose outcome is known only after an upstream
answered, such as a call the PBX placed or refused). The app never updates or deletes a row;
only the retention sweep removes old ones."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.access_models import AuditEntry
from storage.db import Database
from storage.types import utcnow


@dataclass(frozen=True)
class Actor:
    """Who acted and from where: `token:marketing` from an address, `telegram:42 @andy`,
    `cli:root`."""

    who: str
    address: str = ""


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = "?"
    return Actor(f"cli:{user}", "cli")


def telegram_actor(user_id: int, username: str | None) -> Actor:
    return Actor(f"telegram:{user_id}" + (f" @{username}" if username else ""), "telegram")


def _entry(
    actor: Actor, action: str, obj: str, outcome: str, detail: str, now: datetime | None
) -> AuditEntry:
    return AuditEntry(
        at=now or utcnow(),
        actor=actor.who[:200],
        address=actor.address[:200],
        action=action[:64],
        object=obj[:200],
        outcome=outcome[:200],
        detail=detail,
    )


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    obj: str = "",
    *,
    outcome: str = "ok",
    detail: str = "",
    now: datetime | None = None,
) -> None:
    """Add the row to the action's own transaction."""
    session.add(_entry(actor, action, obj, outcome, detail, now))


async def write(
    db: Database,
    actor: Actor,
    action: str,
    obj: str = "",
    *,
    outcome: str = "ok",
    detail: str = "",
    now: datetime | None = None,
) -> None:
    """The row in a transaction of its own."""
    async with db.session() as session:
        record(session, actor, action, obj, outcome=outcome, detail=detail, now=now)


async def entries(
    db: Database, *, since: datetime | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Oldest first from `since` (default: everything kept)."""
    query = select(AuditEntry).order_by(col(AuditEntry.at), col(AuditEntry.id)).limit(limit)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    async with db.read() as session:
        return list(await session.exec(query))


def entry_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "address": entry.address,
        "action": entry.action,
        "object": entry.object,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }
