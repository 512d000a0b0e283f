"""`among(column, values)`: the rows `IN (values)` finds, on both databases, and on PostgreSQL
one prepared statement whatever the number of values (each number was a statement of its own,
kept by every connection that ran it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from storage.among import among, among_param
from storage.db import PREPARED_STATEMENTS, Database
from storage.models import Client


async def _clients(db: Database, count: int) -> None:
    async with db.session() as session:
        session.add_all(Client(phone=f"7900000{n:04d}", name=f"client {n}") for n in range(count))


async def test_among_finds_what_in_finds_for_any_number_of_values(any_db: Database) -> None:
    await _clients(any_db, 12)
    phones = Client.__table__.c.phone  # type: ignore[attr-defined]
    by_param = select(phones).where(among_param(phones, "phones")).order_by(phones)
    async with any_db.engine.connect() as connection:
        for wanted in ([], ["79000000003"], ["79000000001", "79000000007", "79009999999"]):
            found = (await connection.execute(select(phones).where(among(phones, wanted)))).all()
            assert sorted(row[0] for row in found) == sorted(set(wanted) - {"79009999999"})
            named = (await connection.execute(by_param, {"phones": wanted})).scalars().all()
            assert named == sorted(set(wanted) - {"79009999999"})
            others = (await connection.execute(select(phones).where(~among(phones, wanted)))).all()
            assert len(others) == 12 - len(set(wanted) - {"79009999999"})


async def test_on_postgresql_any_number_of_values_is_one_prepared_statement(
    any_db: Database,
) -> None:
    await _clients(any_db, 40)
    ids = Client.__table__.c.id  # type: ignore[attr-defined]
    async with any_db.engine.connect() as connection:
        for count in range(1, 31):
            wanted = list(range(1, count + 1))
            found = await connection.execute(select(ids).where(among(ids, wanted)))
            assert sorted(found.scalars().all()) == wanted
        if any_db.dialect != "postgresql":
            return
        prepared = await connection.execute(
            text("SELECT 1 FROM pg_prepared_statements WHERE statement LIKE 'SELECT clients.id%'")
        )
        assert len(prepared.all()) == 1  # with `IN`: 30, one per number of values


@pytest.mark.parametrize("any_db", ["postgresql"], indirect=True)  # SQLite prepares nothing
async def test_a_postgresql_connection_keeps_a_bounded_number_of_prepared_statements(
    any_db: Database,
) -> None:
    """Statements that differ only in their number of rows (SQLAlchemy's multi-row INSERT)
    must not pile up on every connection: each keeps at most PREPARED_STATEMENTS."""
    async with any_db.engine.connect() as connection:
        for offset in range(3 * PREPARED_STATEMENTS):  # as many different statements
            await connection.execute(text(f"SELECT count(*) + {offset} FROM clients"))
        kept = await connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
        # + the count itself, and one evicted that asyncpg closes with its next statement
        assert kept.scalar_one() <= PREPARED_STATEMENTS + 2  # 126 with SQLAlchemy's default
