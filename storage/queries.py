"""Queries whose SQL differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among
from storage.db import Database
from storage.dialects import dialect_of, insert_for
from storage.models import Call, CallEvent, ClientVariable, DialogMessage


@functools.cache
def _insert_ignore(dialect: str, table: Table, returning: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING, built once: values come as parameters, so
    SQLAlchemy's compiled cache serves every call (a `.values([...])` statement has no cache
    key and is compiled again each time)."""
    return (
        insert_for(dialect)(table)
        .on_conflict_do_nothing()
        .returning(*(table.c[name] for name in returning))
    )


@functools.cache
def _ignore_many(dialect: str, table: Table) -> Any:
    return insert_for(dialect)(table).on_conflict_do_nothing()


async def ignore_many(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of many rows when which were new does not matter: the
    driver's executemany of one single-row statement. A multi-row INSERT (what RETURNING needs)
    is a new statement for every number of rows, each prepared and kept by SQLite's statement
    cache on the connection (a few megabytes of `serve`'s RSS under a flood)."""
    if rows:
        table = model.__table__  # type: ignore[attr-defined]
        await session.exec(_ignore_many(dialect_of(session), table), params=rows)


async def insert_or_ignore(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any]
) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when the row existed."""
    table = model.__table__  # type: ignore[attr-defined]
    statement = _insert_ignore(dialect_of(session), table, ("id",))
    result = await session.exec(statement, params=values)
    new_id = result.scalar_one_or_none()
    return int(new_id) if new_id is not None else None


async def insert_many_or_ignore(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]], key: tuple[str, ...]
) -> set[tuple[Any, ...]]:
    """One multi-row INSERT … ON CONFLICT DO NOTHING; returns the `key` tuples actually inserted.

    Rows are executed as parameter sets of one cached statement; SQLAlchemy sends them as one
    multi-row INSERT ("insertmanyvalues"). Every row must have the same keys."""
    if not rows:
        return set()
    table = model.__table__  # type: ignore[attr-defined]
    statement = _insert_ignore(dialect_of(session), table, key)
    result = await session.exec(statement, params=rows)
    return {tuple(row) for row in result.all()}


@functools.cache
def _upsert_variables(dialect: str) -> Any:
    table = ClientVariable.__table__  # type: ignore[attr-defined]
    statement = insert_for(dialect)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.client_id, table.c.name],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        where=table.c.value != statement.excluded.value,
    ).returning(table.c.name, table.c.value)


async def insert_many_or_ignore_now(
    db: Database, model: type[SQLModel], rows: list[dict[str, Any]], key: tuple[str, ...]
) -> set[tuple[Any, ...]]:
    """`insert_many_or_ignore` as a statement of its own, committed when it returns: one round
    trip instead of four (BEGIN, the INSERT, COMMIT, and a transaction's reset)."""
    if not rows:
        return set()
    table = model.__table__  # type: ignore[attr-defined]
    async with db.autocommit() as connection:
        result = await connection.execute(_insert_ignore(db.dialect, table, key), rows)
        return {tuple(row) for row in result.all()}


async def upsert_variables(
    session: AsyncSession, client_id: int, values: dict[str, str], now: datetime
) -> dict[str, str]:
    """Set client variables in one statement; returns only those whose value changed."""
    if not values:
        return {}
    rows = [
        {"client_id": client_id, "name": name, "value": value, "updated_at": now}
        for name, value in values.items()
    ]
    result = await session.exec(_upsert_variables(dialect_of(session)), params=rows)
    return {name: value for name, value in result.all()}


async def upsert_many_variables(
    session: AsyncSession, values: dict[tuple[int, str], str], now: datetime
) -> None:
    """Set the variables of several clients ((client id, name) → value) in one statement."""
    if not values:
        return
    rows = [
        {"client_id": client_id, "name": name, "value": value, "updated_at": now}
        for (client_id, name), value in values.items()
    ]
    await session.exec(_upsert_variables(dialect_of(session)), params=rows)


async def delete_variables(session: AsyncSession, client_id: int, names: list[str]) -> list[str]:
    """Delete client variables; returns the names that existed."""
    if not names:
        return []
    table = ClientVariable.__table__  # type: ignore[attr-defined]
    result = await session.exec(
        delete(table)
        .where(table.c.client_id == client_id, among(table.c.name, names))
        .returning(table.c.name)
    )
    return [row[0] for row in result.all()]


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
