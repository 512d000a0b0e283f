"""Queries whose SQL differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Call, CallEvent, DialogMessage


async def insert_or_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any]
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when the row existed."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    result = await session.exec(statement)
    new_id = result.scalar_one_or_none()
    return int(new_id) if new_id is not None else None


async def insert_many_or_ignore(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]], key: tuple[str, ...]
) -> set[tuple[Any, ...]]:
    """One multi-row INSERT … ON CONFLICT DO NOTHING; returns the `key` tuples actually inserted."""
    if not rows:
        return set()
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in key]
    statement = insert(table).values(rows).on_conflict_do_nothing().returning(*columns)
    result = await session.exec(statement)
    return {tuple(row) for row in result.all()}


async def recent_calls(
    session: AsyncSession, *, phone: str | None = None, limit: int = 50
) -> list[Call]:
    """Newest first; with a phone, only that number's calls."""
    query = select(Call).order_by(col(Call.created_at).desc(), col(Call.id).desc()).limit(limit)
    if phone is not None:
        query = query.where(Call.phone == phone)
    return list((await session.exec(query)).all())


async def call_events(session: AsyncSession, call_id: int) -> list[CallEvent]:
    query = select(CallEvent).where(CallEvent.call_id == call_id).order_by(col(CallEvent.id))
    return list((await session.exec(query)).all())


async def dialog_of(
    session: AsyncSession, client_id: int, *, after_id: int = 0, limit: int = 500
) -> list[DialogMessage]:
    """Oldest first."""
    query = (
        select(DialogMessage)
        .where(DialogMessage.client_id == client_id, col(DialogMessage.id) > after_id)
        .order_by(col(DialogMessage.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
