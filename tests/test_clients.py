"""Client matching in the Salebot order, through the phone index, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import event
from sqlmodel import select

from storage.db import Database
from storage.models import Client, Manager, PhoneIndexEntry
from telephony.clients import (
    client_view_by_phone,
    contact_card,
    create_client,
    find_client_by_phone,
    get_variables,
    match_or_create_client,
    set_client_phone,
    set_variables,
)


async def test_telephony_client_wins_over_variables_and_older_clients(any_db: Database) -> None:
    async with any_db.session() as s:
        messenger = await create_client(s, channel="telegram", external_id="1001", name="Аня")
        await set_variables(s, messenger, {"phone": "8 (900) 444-33-22"})
        telephony = await create_client(s, phone="+7 900 444 33 22")
    async with any_db.session() as s:
        found = await find_client_by_phone(s, "9004443322")
    assert found is not None and found.id == telephony.id


async def test_a_variable_holding_the_phone_finds_the_client(any_db: Database) -> None:
    async with any_db.session() as s:
        first = await create_client(s, channel="telegram", external_id="1", name="Первый")
        second = await create_client(s, channel="telegram", external_id="2", name="Второй")
        await set_variables(s, second, {"work_phone": "+7 (900) 444-33-22"})
        await set_variables(s, first, {"contact": "8 900 444 33 22"})
    async with any_db.session() as s:
        found = await find_client_by_phone(s, "79004443322")
    assert found is not None and found.name == "Первый"  # the first client found, by age


async def test_the_read_path_lookup_keeps_the_salebot_order(any_db: Database) -> None:
    """The one-statement lookup of `contact` and GET /api/v1/clients finds the same clients as
    `find_client_by_phone`, with the responsible manager's identity."""
    async with any_db.session() as s:
        older = await create_client(s, channel="telegram", external_id="1", name="Первый")
        newer = await create_client(s, channel="telegram", external_id="2", name="Второй")
        await set_variables(s, newer, {"work_phone": "+7 (900) 444-33-22"})
        await set_variables(s, older, {"contact": "8 900 444 33 22"})
    async with any_db.read_connection() as connection:
        view = await client_view_by_phone(connection, "9004443322")
        assert view is not None and view.id == older.id and view.pbx_login is None
        assert await contact_card(connection, "79004443322") == {"contact_name": "Первый"}
        assert await client_view_by_phone(connection, "79161112233") is None
        assert await contact_card(connection, "79161112233") == {}
    async with any_db.session() as s:
        manager = Manager(name="Анна", pbx_login="anna", pbx_ext="701")
        s.add(manager)
        await s.flush()
        telephony = await create_client(s, phone="+7 900 444 33 22", name="Звонивший")
        telephony.responsible_manager_id = manager.id
        s.add(telephony)
    async with any_db.read_connection() as connection:
        view = await client_view_by_phone(connection, "89004443322")
        assert view is not None and view.id == telephony.id and view.pbx_login == "anna"
        assert await contact_card(connection, "+79004443322") == {
            "contact_name": "Звонивший",
            "responsible": "anna",
        }


async def test_unknown_phone_creates_a_telephony_client_once(any_db: Database) -> None:
    async with any_db.session() as s:
        client, created = await match_or_create_client(s, "8 (900) 444-33-22")
    async with any_db.session() as s:
        again, created_again = await match_or_create_client(s, "+79004443322")
    assert created and not created_again
    assert again.id == client.id
    assert (client.channel, client.phone) == ("telephony", "79004443322")


async def test_changing_or_clearing_a_variable_updates_the_index(any_db: Database) -> None:
    async with any_db.session() as s:
        client = await create_client(s, channel="telegram", external_id="7")
        changed = await set_variables(s, client, {"phone": "89004443322", "city": "Казань"})
        assert changed == {"phone": "89004443322", "city": "Казань"}
        assert await set_variables(s, client, {"phone": "89004443322"}) == {}  # unchanged
    async with any_db.session() as s:
        assert await find_client_by_phone(s, "79004443322") is not None
        await set_variables(s, client, {"phone": "89161112233"})
    async with any_db.session() as s:
        assert await find_client_by_phone(s, "79004443322") is None
        assert (await find_client_by_phone(s, "79161112233")) is not None
        await set_variables(s, client, {"phone": None})
    async with any_db.session() as s:
        assert await find_client_by_phone(s, "79161112233") is None
        assert client.id is not None
        assert await get_variables(s, client.id) == {"city": "Казань"}


async def test_call_variables_and_non_phones_are_not_indexed(any_db: Database) -> None:
    async with any_db.session() as s:
        client = await create_client(s, phone="79004443322")
        await set_variables(
            s, client, {"megafon_call_ext": "701", "megafon_call_id": "9161112233", "note": "hi"}
        )
    async with any_db.session() as s:
        rows = (await s.exec(select(PhoneIndexEntry))).all()
    assert [(row.phone, row.variable) for row in rows] == [("79004443322", "")]


async def test_own_phone_change_moves_the_index(any_db: Database) -> None:
    async with any_db.session() as s:
        client = await create_client(s, phone="79004443322")
        await set_client_phone(s, client, "8 916 111 22 33")
    async with any_db.session() as s:
        assert await find_client_by_phone(s, "79004443322") is None
        found = await find_client_by_phone(s, "79161112233")
        assert found is not None and found.id == client.id


async def test_matching_is_an_index_lookup_not_a_scan(any_db: Database) -> None:
    """Two indexed queries at most, whatever the number of clients and variables."""
    async with any_db.session() as s:
        for n in range(30):
            c = await create_client(s, channel="telegram", external_id=str(n))
            await set_variables(s, c, {f"v{i}": f"value {i}" for i in range(5)})
    statements: list[str] = []

    def remember(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(any_db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with any_db.session() as s:
            assert await find_client_by_phone(s, "79004443322") is None
    finally:
        event.remove(any_db.engine.sync_engine, "before_cursor_execute", remember)
    queries = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 2
    assert all("phone_index" in q and "client_variables" not in q for q in queries)


async def test_clients_table_has_the_created_rows(any_db: Database) -> None:
    async with any_db.session() as s:
        await create_client(s, phone="79004443322", name="Иван")
    async with any_db.session() as s:
        names = [c.name for c in (await s.exec(select(Client))).all()]
    assert names == ["Иван"]
