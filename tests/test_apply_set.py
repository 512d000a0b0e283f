"""A slice applied set-wise leaves exactly the state (and tells exactly the updates) that the
same pushes applied one by one do: new and known calls, many pushes of one call, a transfer
merging a leg seen before, a requested call attached by phone, a client found by a variable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import (
    Call,
    CallEvent,
    CallRef,
    Client,
    ClientVariable,
    DialogMessage,
    Manager,
    PhoneIndexEntry,
)
from storage.types import utcnow
from telephony.calls.apply import CallPush, apply_push, deferred_writes
from telephony.calls.apply_set import SlicePush, apply_slice
from telephony.calls.outcome import CallEventType, CallStatus
from telephony.calls.pushes import EventPush, HistoryPush, RatingPush, RecordPush
from telephony.clients import create_client, match_or_create_client, set_variables
from telephony.events import CallUpdate
from telephony.phones import Extension
from tests.conftest import _truncate_all

MEGAFON, NOVOFON = "megafon", "novofon"
KNOWN, BY_VARIABLE, REQUESTED, NEW = "79000000001", "79000000002", "79000000003", "79000000006"
TRANSFERRED, RECORDED = "79000000004", "79000000007"
START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def event(
    kind: str, callid: str, phone: str | Extension, user: str = "andy", **more: Any
) -> EventPush:
    return EventPush(CallEventType(kind), phone, user, callid, ext="701", **more)


def history(
    callid: str, phone: str | Extension, status: str, user: str, **more: Any
) -> HistoryPush:
    return HistoryPush("in", user, phone, START, 61, callid, CallStatus(status), ext="702", **more)


# Pushes committed before the slice: a known call with its client, a leg seen on its own (the
# transfer in the slice merges it), a manager.
BEFORE: list[tuple[str, CallPush]] = [
    (MEGAFON, event("INCOMING", "K1", KNOWN, diversion="74950001122")),
    (MEGAFON, event("INCOMING", "LEG2", TRANSFERRED, user="bob")),
    (MEGAFON, event("ACCEPTED", "LEG2", TRANSFERRED, user="bob")),
]
SLICE: list[tuple[str, CallPush]] = [
    (MEGAFON, event("ACCEPTED", "K1", KNOWN)),
    (MEGAFON, event("INCOMING", "N2", BY_VARIABLE, group_name="sales")),
    (MEGAFON, event("ACCEPTED", "N2", BY_VARIABLE, user="bob")),
    (MEGAFON, event("OUTGOING", "R-PBX", REQUESTED, user="dan", direction="out")),
    (MEGAFON, event("INCOMING", "N3", NEW)),
    (MEGAFON, history("N3", NEW, "Success", "carol", link="https://rec/n3.mp3")),
    (MEGAFON, event("INCOMING", "T1", TRANSFERRED)),
    (MEGAFON, event("TRANSFERRED", "T1", TRANSFERRED, second_callid="LEG2")),
    (MEGAFON, event("COMPLETED", "LEG2", TRANSFERRED, user="bob")),
    (MEGAFON, history("T1", TRANSFERRED, "Success", "bob")),  # one call under both legs' ids
    (MEGAFON, history("K1", KNOWN, "Success", "andy")),
    (MEGAFON, history("N3", NEW, "Success", "carol", rating=5)),
    (MEGAFON, event("INCOMING", "R-PBX", REQUESTED, user="dan")),
    (NOVOFON, RecordPush("NV1", "https://rec/nv1.mp3")),
    (NOVOFON, history("NV1", RECORDED, "Missed", "pbx", status_line_once=True)),
    (NOVOFON, history("NV1", RECORDED, "Missed", "pbx", status_line_once=True)),
    (MEGAFON, event("INCOMING", "NV1", "79000000009")),  # another PBX's id, another call
    (MEGAFON, event("INCOMING", "INT1", Extension("702"))),
    (MEGAFON, event("INCOMING", "N5", NEW)),
    (MEGAFON, event("CANCELLED", "N5", NEW, user="erin")),
    (MEGAFON, RatingPush("K1", KNOWN, 4)),
    (MEGAFON, event("INCOMING", "N6", "79000000008")),
    (MEGAFON, event("INCOMING", "N7", "79000000008")),  # the client N6 just made
]


class _RolledBack(Exception):
    """Raised to roll the slice's transaction back once its state is read."""


async def _prepare(db: Database) -> None:
    async with db.session() as session:
        await create_client(session, phone=KNOWN)
        holder = await create_client(session, name="holds a phone")  # no own phone
        await set_variables(session, holder, {"backup_phone": BY_VARIABLE})
        session.add(Manager(name="Bob", pbx_login="bob"))
        requested, _ = await match_or_create_client(session, REQUESTED)
        session.add(
            Call(
                provider=MEGAFON,
                direction="out",
                client_id=requested.id,
                phone=REQUESTED,
                requested=True,
                requested_user="dan",
                awaiting_pbx=True,
                last_event=CallEventType.REQUESTED,
            )
        )
        await session.flush()
        async with deferred_writes(session):
            for index, (provider, push) in enumerate(BEFORE):
                event_id = await _stored(session, provider, f"before-{index}")
                await apply_push(session, push, event_id, provider)


async def _stored(session: AsyncSession, provider: str, key: str) -> int:
    row = CallEvent(provider=provider, dedup_key=key, command="event", payload="{}")
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def _applied(db: Database, set_wise: bool) -> tuple[dict[str, Any], list[Any]]:
    """Apply SLICE (set-wise or one by one), read the state, roll it all back."""
    state: dict[str, Any] = {}
    told: list[Any] = []
    with pytest.raises(_RolledBack):
        async with db.session() as session:
            pushes: list[SlicePush] = [
                (await _stored(session, provider, f"slice-{index}"), provider, push)
                for index, (provider, push) in enumerate(SLICE)
            ]
            if set_wise:
                updates = await apply_slice(session, pushes)
            else:
                updates = []
                async with deferred_writes(session):
                    for event_id, provider, push in pushes:
                        updates.append(await apply_push(session, push, event_id, provider))
            await session.flush()
            state = await _state(session)
            told = [_told(update, state["ranks"]) for update in updates]
            raise _RolledBack
    return state, told


_TABLES = (
    Manager,
    Client,
    Call,
    CallRef,
    PhoneIndexEntry,
    ClientVariable,
    DialogMessage,
    CallEvent,
)
# Columns whose value is another table's id, compared by that row's rank (PostgreSQL's
# sequences are not rolled back: ids differ between the two runs, their order does not).
_REFERS = {
    "responsible_manager_id": Manager,
    "client_id": Client,
    "call_id": Call,
}
_CLOCK = {"created_at", "updated_at", "processed_at", "received_at"}


async def _state(session: AsyncSession) -> dict[str, Any]:
    rows: dict[type, list[dict[str, Any]]] = {}
    ranks: dict[type, dict[int, int]] = {}
    for model in _TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        found = (await session.exec(select(table).order_by(table.c.id))).mappings().all()
        rows[model] = [dict(row) for row in found]
        ranks[model] = {row["id"]: rank for rank, row in enumerate(rows[model])}
    state: dict[str, Any] = {"ranks": ranks}
    for model, table_rows in rows.items():
        described = []
        for row in table_rows:
            values = {name: value for name, value in row.items() if name not in _CLOCK}
            for name, target in _REFERS.items():
                if values.get(name) is not None:
                    values[name] = ranks[target][values[name]]
            values["id"] = None if model is ClientVariable else ranks[model][row["id"]]
            if model is CallEvent:
                values["applied"] = row["processed_at"] is not None
                values["dedup_key"] = row["dedup_key"]
            described.append(values)
        if model is ClientVariable:
            described.sort(key=lambda values: (values["client_id"], values["name"]))
        state[model.__tablename__] = described  # type: ignore[attr-defined]
    return state


def _told(update: CallUpdate, ranks: dict[type, dict[int, int]]) -> tuple[Any, ...]:
    call_rank = ranks[Call].get(update.call.id or 0, "gone")
    client = update.client
    return (
        update.trigger,
        call_rank,
        update.call.status,
        update.call.manager_user,
        None if client is None else ranks[Client][client.id or 0],
        update.client_created,
        update.variables,
        [(ranks[DialogMessage][line.id or 0], line.kind, line.text) for line in update.dialog],
    )


async def test_a_mixed_slice_applied_set_wise_equals_it_applied_one_by_one(
    any_db: Database,
) -> None:
    await _prepare(any_db)
    one_by_one, told_one_by_one = await _applied(any_db, set_wise=False)
    set_wise, told_set_wise = await _applied(any_db, set_wise=True)
    one_by_one.pop("ranks"), set_wise.pop("ranks")
    for table in one_by_one:
        assert set_wise[table] == one_by_one[table], table
    assert told_set_wise == told_one_by_one

    # The slice did what it says: the leg merged, the request attached, the client found by
    # its variable, one new client for the two calls from one new phone.
    calls = {row["callid"]: row for row in one_by_one["calls"]}
    assert "LEG2" not in calls and calls["T1"]["manager_user"] == "bob"
    assert calls["R-PBX"]["requested"] is True and calls["R-PBX"]["awaiting_pbx"] is False
    assert calls["N2"]["client_id"] == 1  # the client holding the phone in a variable
    assert calls["N3"]["client_id"] == calls["N5"]["client_id"]
    assert calls["N6"]["client_id"] == calls["N7"]["client_id"]
    assert [told[5] for told in told_one_by_one].count(True) == 4  # NEW, RECORDED, …09, …08
    assert sorted(row["provider"] for row in one_by_one["calls"] if row["callid"] == "NV1") == [
        MEGAFON,
        NOVOFON,
    ]
    assert all(row["applied"] for row in one_by_one["call_events"])


async def test_a_slice_applied_set_wise_commits_what_the_updates_hold(any_db: Database) -> None:
    """The updates' calls, clients and lines are the session's objects, written: a step that
    changes a call in the transaction (the leads step's flags) has it flushed."""
    await _prepare(any_db)
    async with any_db.session() as session:
        pushes: list[SlicePush] = [
            (await _stored(session, provider, f"slice-{index}"), provider, push)
            for index, (provider, push) in enumerate(SLICE)
        ]
        updates = await apply_slice(session, pushes)
        for update in updates:
            assert update.call in session or update.call.callid == "LEG2"
            assert update.client is None or update.client in session
            assert all(line in session and line.id is not None for line in update.dialog)
        [n3] = {u.call.id: u.call for u in updates if u.call.callid == "N3"}.values()
        n3.targeted = True
        session.add(n3)
    async with any_db.session() as session:
        stored = (await session.exec(select(Call).where(Call.callid == "N3"))).one()[0]
        assert (stored.targeted, stored.status, stored.rating) == (True, "Success", 5)
        assert stored.updated_at <= utcnow()


async def test_a_call_another_process_creates_meanwhile_is_the_one_applied_to(
    postgres_url: str,
) -> None:
    """Two processes see a new call at once (PostgreSQL): the one whose ref is second drops
    the call it made and applies its pushes to the other's call."""
    db = Database(postgres_url)
    await _truncate_all(db)
    try:
        async with db.session() as first:
            call = Call(provider=MEGAFON, callid="RACE", phone=NEW, direction="in")
            first.add(call)
            await first.flush()
            first.add(CallRef(provider=MEGAFON, external_id="RACE", call_id=call.id or 0))
            await first.flush()

            async def second() -> list[CallUpdate]:
                async with db.session() as session:
                    event_id = await _stored(session, MEGAFON, "race")
                    return await apply_slice(
                        session, [(event_id, MEGAFON, event("ACCEPTED", "RACE", NEW))]
                    )

            applying = asyncio.create_task(second())
            await asyncio.sleep(0.5)  # it waits for this transaction's ref
            assert not applying.done()
        [update] = await applying
        assert update.call.id == call.id and update.call.answered
        async with db.session() as session:
            calls = (await session.exec(select(Call.id, Call.answered))).all()
            [(marked,)] = (await session.exec(select(CallEvent.call_id))).all()
        assert [tuple(row) for row in calls] == [(call.id, True)] and marked == call.id
    finally:
        await db.dispose()
