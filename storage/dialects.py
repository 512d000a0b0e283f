"""What differs between SQLite and PostgreSQL at the root: the dialect's name, and its INSERT
(both have ON CONFLICT, each in its own class). One place for both, not a copy per query."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_of(session: AsyncSession) -> str:  # sqlmodel's AsyncSession is one too
    """The name of the dialect the session's engine speaks ("sqlite" or "postgresql")."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def insert_for(dialect: str) -> Any:
    """The dialect's INSERT, with `on_conflict_do_nothing` and `on_conflict_do_update`."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
