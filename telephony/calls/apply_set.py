"""Applying a slice of pushes set-wise: the same state machine as `apply_push`, a few statements
for the whole slice instead of several per push.

A run of pushes is applied in these steps:
1. its calls: the known ones in one query (locked on PostgreSQL), the unknown ones created with
   one multi-row INSERT and their refs with another (a ref another process inserted first wins:
   our call is deleted and theirs taken, as `apply_push` does);
2. its clients: matched the Salebot way for every phone at once (`telephony.clients`), the
   missing ones created together;
3. the state machine in Python, push by push in order (`transition`), on the calls, with what a
   push would write collected: dialog lines, variables (their changes told per push, as one by
   one), responsible managers;
4. the writes: calls in one executemany UPDATE, dialog lines in one INSERT (their ids: the
   notes step needs them), variables in one upsert, managers in one insert-or-ignore, the
   pushes marked applied in one statement.

The calls, clients and dialog lines are the session's own objects (loaded or returned by the
ORM, their written state committed in the session): the pipeline's steps that follow in the
transaction see and change them as after `apply_push`.

What stays one by one (`apply_push`, the ORM path): a transfer naming its other leg (legs may
be merged), and the first push of a call a megafon_call() request waits for (attached by
phone). The run stops before such a push, which is applied alone, and the next run starts after
it: the order of the slice is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.manager_queries import remember_managers
from storage.models import Call, CallRef, Client, ClientVariable, DialogMessage, Manager
from storage.queries import insert_many_or_ignore, upsert_many_variables
from storage.types import utcnow
from telephony.calls.apply import (
    _MARK_EVENT,
    REQUEST_ATTACH_WINDOW,
    CallPush,
    apply_push,
    call_variables,
    deferred_writes,
    joins_a_leg,
    manager_row,
    responsible_login,
    transition,
    write_deferred,
)
from telephony.clients import clients_for_phones, system_variable
from telephony.events import CallUpdate
from telephony.phones import Extension

# One stored push to apply: its CallEvent id, its provider and the parsed push.
SlicePush = tuple[int, str, CallPush]

_CALLS = Call.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]

# The columns the state machine changes: written back in one statement per slice.
_CHANGED = (
    "phone",
    "direction",
    "client_id",
    "status",
    "answered",
    "ended",
    "last_event",
    "manager_user",
    "manager_ext",
    "manager_telnum",
    "group_name",
    "diversion",
    "started_at",
    "duration",
    "wait",
    "record_link",
    "rating",
    "updated_at",
)
# Statements built once (SQLAlchemy's compiled cache then serves every slice).
_KNOWN_CALLS = (
    select(CallRef.external_id, Call)
    .join(Call, col(Call.id) == col(CallRef.call_id))
    .where(
        col(CallRef.provider) == bindparam("provider"),
        among_param(col(CallRef.external_id), "callids"),
    )
    .order_by(col(Call.id))  # locked in one order by every process: no deadlock between two
    .with_for_update(of=Call)
)
_REQUESTS = select(Call.phone).where(
    col(Call.provider) == bindparam("provider"),
    col(Call.awaiting_pbx).is_(True),
    among_param(col(Call.phone), "phones"),
    col(Call.created_at) >= bindparam("since"),
)
_NEW_CALLS = insert(_CALLS).returning(_CALLS.c.id, _CALLS.c.provider, _CALLS.c.callid)
_DROP_CALLS = delete(_CALLS).where(among_param(_CALLS.c.id, "ids"))
_CLIENTS_BY_ID = select(Client).where(among_param(col(Client.id), "ids"))
_WRITE_CALLS = (
    update(_CALLS)
    .where(_CALLS.c.id == bindparam("_id"))
    .values({name: bindparam(f"_{name}", type_=_CALLS.c[name].type) for name in _CHANGED})
)
_WRITE_RESPONSIBLE = (
    update(_CLIENTS)
    .where(_CLIENTS.c.id == bindparam("_id"))
    .values(responsible_manager_id=bindparam("_manager"))
)
_VARIABLES_OF = select(ClientVariable.client_id, ClientVariable.name, ClientVariable.value).where(
    among_param(col(ClientVariable.client_id), "clients"),
    among_param(col(ClientVariable.name), "names"),
)
_MANAGERS_BY_LOGIN = select(Manager).where(
    among_param(col(Manager.pbx_login), "logins")
)
_NEW_LINES = insert(DialogMessage).returning(DialogMessage)


async def apply_slice(session: AsyncSession, pushes: Sequence[SlicePush]) -> list[CallUpdate]:
    """Apply a slice's pushes in order, set-wise; one CallUpdate per push, as `apply_push`
    gives (the pipeline decides on them after)."""
    updates: list[CallUpdate] = []
    async with deferred_writes(session):  # the pushes applied one by one, if any
        start = 0
        while start < len(pushes):
            event_id, provider, push = pushes[start]
            if joins_a_leg(push):
                updates.append(await apply_push(session, push, event_id, provider))
                await write_deferred(session)  # written before the next run reads or inserts
                start += 1
                continue
            end = start
            while end < len(pushes) and not joins_a_leg(pushes[end][2]):
                end += 1
            start += await _apply_run(session, pushes[start:end], updates)
    return updates


@dataclass
class _Run:
    """What a run of pushes reads and writes."""

    now: datetime
    calls: dict[tuple[str, str], Call] = field(default_factory=dict)
    touched: dict[int, Call] = field(default_factory=dict)  # by id: the calls to write
    clients: dict[int, Client] = field(default_factory=dict)
    by_phone: dict[str, int] = field(default_factory=dict)  # a phone's client, the Salebot way
    created: set[int] = field(default_factory=set)  # clients this run created (not yet told)
    variables: dict[tuple[int, str], str] = field(default_factory=dict)
    changed_variables: dict[tuple[int, str], str] = field(default_factory=dict)
    lines: list[tuple[CallUpdate, dict[str, Any]]] = field(default_factory=list)
    responsible: dict[int, tuple[str, Call]] = field(default_factory=dict)  # client → login
    marks: list[dict[str, Any]] = field(default_factory=list)


async def _apply_run(
    session: AsyncSession, pushes: Sequence[SlicePush], updates: list[CallUpdate]
) -> int:
    """Apply the longest prefix of `pushes` that needs nothing one by one; how many it was."""
    run = _Run(now=utcnow())
    unknown = await _known_calls(session, pushes, run)
    waited = await _requested_first(session, pushes, unknown, run)
    if waited is not None:
        if waited == 0:  # this push attaches a requested call: the ORM path does that
            event_id, provider, push = pushes[0]
            updates.append(await apply_push(session, push, event_id, provider))
            await write_deferred(session)
            return 1
        pushes = pushes[:waited]
        unknown = {key: party for key, party in unknown.items() if key in _keys(pushes)}
    await _create_calls(session, unknown, run)
    await _resolve_clients(session, pushes, run)
    for event_id, provider, push in pushes:
        updates.append(_step(run, event_id, provider, push))
    await _write(session, run)
    return len(pushes)


def _keys(pushes: Sequence[SlicePush]) -> set[tuple[str, str]]:
    return {(provider, push.callid) for _, provider, push in pushes}


async def _known_calls(
    session: AsyncSession, pushes: Sequence[SlicePush], run: _Run
) -> dict[tuple[str, str], str | Extension | None]:
    """Load (and lock) the run's known calls; the unknown ones, in order of their first push,
    with the party that push names (what a new call is created with)."""
    wanted: dict[str, list[str]] = {}
    first: dict[tuple[str, str], str | Extension | None] = {}
    for _, provider, push in pushes:
        key = (provider, push.callid)
        if key not in first:
            first[key] = push.phone
            wanted.setdefault(provider, []).append(push.callid)
    for provider, callids in wanted.items():
        params = {"provider": provider, "callids": callids}
        for external_id, call in (await session.exec(_KNOWN_CALLS, params=params)).all():
            run.calls[(provider, external_id)] = call
    return {key: party for key, party in first.items() if key not in run.calls}


async def _requested_first(
    session: AsyncSession,
    pushes: Sequence[SlicePush],
    unknown: dict[tuple[str, str], str | Extension | None],
    run: _Run,
) -> int | None:
    """The index of the first push that would attach a megafon_call() request waiting for
    its phone (None: no push of the run does)."""
    phones: dict[str, list[str]] = {}
    for (provider, _), party in unknown.items():
        if isinstance(party, str) and not isinstance(party, Extension):
            phones.setdefault(provider, []).append(party)
    waiting: set[tuple[str, str]] = set()
    since = run.now - REQUEST_ATTACH_WINDOW
    for provider, numbers in phones.items():
        params = {"provider": provider, "phones": numbers, "since": since}
        rows = await session.exec(_REQUESTS, params=params)
        waiting.update((provider, phone) for phone in rows.all() if phone is not None)
    if not waiting:
        return None
    seen: set[tuple[str, str]] = set()
    for index, (_, provider, push) in enumerate(pushes):
        key = (provider, push.callid)
        if key in unknown and key not in seen:
            seen.add(key)
            party = unknown[key]
            if isinstance(party, str) and (provider, party) in waiting:
                return index
    return None


async def _create_calls(
    session: AsyncSession, unknown: dict[tuple[str, str], str | Extension | None], run: _Run
) -> None:
    """Create the unknown calls and their refs; a ref inserted first by a concurrent process
    wins (our call is dropped and theirs loaded, locked)."""
    if not unknown:
        return
    rows = [
        {
            "provider": provider,
            "callid": callid,
            "phone": party.number if isinstance(party, Extension) else party,
            "internal": isinstance(party, Extension),
            "created_at": run.now,
            "updated_at": run.now,
        }
        for (provider, callid), party in unknown.items()
    ]
    created = (await session.exec(_NEW_CALLS, params=rows)).all()
    ids = {(provider, callid): call_id for call_id, provider, callid in created}
    refs = [
        {"provider": provider, "external_id": callid, "call_id": ids[(provider, callid)]}
        for provider, callid in unknown
    ]
    inserted = await insert_many_or_ignore(session, CallRef, refs, ("provider", "external_id"))
    lost = [ids[key] for key in unknown if key not in inserted]
    if lost:
        await session.exec(_DROP_CALLS, params={"ids": lost})
    by_provider: dict[str, list[str]] = {}
    for provider, callid in unknown:
        by_provider.setdefault(provider, []).append(callid)
    for provider, callids in by_provider.items():
        params = {"provider": provider, "callids": callids}
        for external_id, call in (await session.exec(_KNOWN_CALLS, params=params)).all():
            run.calls[(provider, external_id)] = call


async def _resolve_clients(session: AsyncSession, pushes: Sequence[SlicePush], run: _Run) -> None:
    """The clients of the run's calls: those the calls have, and for the others the clients
    of their phones (created when nobody has the phone), in the order the pushes need them."""
    have: set[int] = set()
    phones: list[str] = []
    phoned: dict[int, str | None] = {}  # by call id: two legs' ids may name one call
    for _, provider, push in pushes:
        call = run.calls[(provider, push.callid)]
        assert call.id is not None
        phone = phoned.get(call.id, call.phone)
        if phone is None and isinstance(push.phone, str):
            phone = push.phone
        phoned[call.id] = phone
        if call.internal or not phone:
            continue
        if call.client_id is not None:
            have.add(call.client_id)
        elif phone not in phones:
            phones.append(phone)
    if phones:
        run.by_phone, created = await clients_for_phones(session, phones)
        run.created = set(created)
        have.update(run.by_phone.values())
    if have:
        found = await session.exec(_CLIENTS_BY_ID, params={"ids": list(have)})
        run.clients = {client.id: client for client in found.all() if client.id is not None}
    names = {
        name
        for _, provider, _ in pushes
        for name in (
            f"{provider}_call_direction",
            f"{provider}_call_ext",
            f"{provider}_call_id",
            f"{provider}_call_user",
            f"{provider}_record_link",
        )
    }
    if run.clients:
        params = {"clients": list(run.clients), "names": sorted(names)}
        rows = await session.exec(_VARIABLES_OF, params=params)
        run.variables = {(client_id, name): value for client_id, name, value in rows.all()}


def _step(run: _Run, event_id: int, provider: str, push: CallPush) -> CallUpdate:
    """`apply_push` on what the run loaded: the same decisions, the writes collected."""
    call = run.calls[(provider, push.callid)]
    if call.phone is None and isinstance(push.phone, str):  # first seen by a phoneless push
        call.phone = push.phone
    assert call.id is not None
    run.touched[call.id] = call
    run.marks.append({"event": event_id, "call": call.id, "at": run.now})
    client, created = _client_of(run, call)
    trigger, line, kind = transition(call, push, provider)
    call.updated_at = run.now
    update_ = CallUpdate(call=call, client=client, trigger=trigger, client_created=created)
    if client is None:
        return update_
    assert client.id is not None
    if line is not None:
        row = {
            "client_id": client.id,
            "call_id": call.id,
            "kind": kind,
            "direction": "system",
            "text": line,
            "created_at": run.now,
        }
        run.lines.append((update_, row))
    update_.variables = _set_variables(run, client.id, call_variables(call, provider))
    if client.id not in run.responsible:
        login = responsible_login(client, call)
        if login is not None:
            run.responsible[client.id] = (login, call)
    return update_


def _client_of(run: _Run, call: Call) -> tuple[Client | None, bool]:
    if call.internal or not call.phone:
        return None, False
    if call.client_id is not None:
        known = run.clients.get(call.client_id)
        if known is not None:
            return known, False
    client_id = run.by_phone.get(call.phone)
    if client_id is None:  # its client is gone (not possible with the foreign keys on)
        raise RuntimeError(f"call {call.id}: client {call.client_id} not found")
    call.client_id = client_id
    created = client_id in run.created
    run.created.discard(client_id)  # told once: with the first push that needed the client
    return run.clients[client_id], created


def _set_variables(run: _Run, client_id: int, values: dict[str, str | None]) -> dict[str, str]:
    """`set_variables` for the call's variables (never None, never indexed: system names):
    the changes this push makes, the final values written at the end."""
    changed: dict[str, str] = {}
    for name, value in values.items():
        assert value is not None and system_variable(name)
        key = (client_id, name)
        if run.variables.get(key) != value:
            run.variables[key] = value
            run.changed_variables[key] = value
            changed[name] = value
    return changed


async def _write(session: AsyncSession, run: _Run) -> None:
    calls = run.touched.values()
    params = [
        {"_id": call.id, **{f"_{name}": getattr(call, name) for name in _CHANGED}} for call in calls
    ]
    if params:
        await session.exec(_WRITE_CALLS, params=params)
        for call in calls:  # written: the session's flush has nothing more to write
            for name in _CHANGED:
                set_committed_value(call, name, getattr(call, name))
    if run.lines:
        rows = [row for _, row in run.lines]
        lines = list((await session.exec(_NEW_LINES, params=rows)).scalars().all())
        # One INSERT numbers its rows in their order: the lines sorted by id are the rows'.
        lines.sort(key=lambda line: line.id or 0)
        for (update_, row), line in zip(run.lines, lines, strict=True):
            if (line.call_id, line.text) != (row["call_id"], row["text"]):
                raise RuntimeError("dialog lines came back out of order")
            update_.dialog.append(line)
    if run.changed_variables:
        await upsert_many_variables(session, run.changed_variables, run.now)
    if run.responsible:
        await _assign_responsible(session, run)
    if run.marks:
        await session.exec(_MARK_EVENT, params=run.marks)


async def _assign_responsible(session: AsyncSession, run: _Run) -> None:
    rows: dict[str, dict[str, object]] = {}
    for login, call in run.responsible.values():
        rows.setdefault(login, manager_row(login, call))
    await insert_many_or_ignore(session, Manager, list(rows.values()), ("id",))
    found = await session.exec(_MANAGERS_BY_LOGIN, params={"logins": list(rows)})
    managers = {manager.pbx_login: manager for manager in found.all()}
    remember_managers(session, managers.values())
    params = []
    for client_id, (login, _) in run.responsible.items():
        manager_id = managers[login].id
        client = run.clients[client_id]
        set_committed_value(client, "responsible_manager_id", manager_id)
        params.append({"_id": client_id, "_manager": manager_id})
    await session.exec(_WRITE_RESPONSIBLE, params=params)
