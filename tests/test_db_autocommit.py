"""`Database.autocommit()`: every statement commits on its own, on both databases. On SQLite the
write engine's BEGIN hook used to open a transaction around it anyway, which the pool then
rolled back: a write through it was silently lost (only PostgreSQL used it, so nobody saw)."""

from __future__ import annotations

from sqlmodel import col, select

from storage.db import Database
from storage.models import CallEvent
from storage.queries import insert_many_or_ignore_now
from tests.megafon_replay import stored_push


async def test_a_write_through_autocommit_is_kept(any_db: Database) -> None:
    inserted = await insert_many_or_ignore_now(
        any_db, CallEvent, [stored_push("a", "a"), stored_push("b", "b")], ("provider", "dedup_key")
    )
    assert inserted == {("megafon", "a"), ("megafon", "b")}
    async with any_db.read() as session:
        keys = (await session.exec(select(CallEvent.dedup_key).order_by(col(CallEvent.id)))).all()
    assert list(keys) == ["a", "b"]
    again = await insert_many_or_ignore_now(
        any_db, CallEvent, [stored_push("a", "a"), stored_push("c", "c")], ("provider", "dedup_key")
    )
    assert again == {("megafon", "c")}  # the kept row is a conflict now
