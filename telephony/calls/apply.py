"""The call state machine: pushes in any order, duplicates ignored, legs merged into one call.

Rules (apis/megafon.md, pitfalls):
- a push identical to one already stored changes nothing (CallEvent.dedup_key);
- `history` is the final word on the outcome; before it, ACCEPTED (or COMPLETED) proves a person
  answered (what that makes a call: telephony.calls.outcome.CallOutcome);
- a CANCELLED (sent once per losing extension of a group) never undoes an answer;
- TRANSFERRED + second_callid: both legs are one conversation (CallRef), merged if both exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.manager_queries import manager_by_login
from storage.models import Call, CallEvent, CallRef, Client, DialogMessage, Manager
from storage.queries import insert_or_ignore
from storage.types import utcnow
from telephony.calls.outcome import CallEventType, CallOutcome, CallStatus
from telephony.calls.pushes import EventPush, HistoryPush, RatingPush, RecordPush
from telephony.clients import match_or_create_client, set_variables
from telephony.events import CallUpdate
from telephony.phones import Extension

# A call started by megafon_call() is matched to the PBX's pushes for the same phone this long.
REQUEST_ATTACH_WINDOW = timedelta(minutes=10)
SUCCESS = CallStatus.SUCCESS
_RINGING = (CallEventType.INCOMING, CallEventType.OUTGOING)
# `user` values that name no person: a missed call's "pbx", an empty field.
_NOT_A_PERSON = frozenset({"", "pbx"})

CallPush = EventPush | HistoryPush | RatingPush | RecordPush
_DEFERRED = "trubka.deferred_event_marks"
# Within one slice (one transaction), the calls already resolved, by (provider, callid): a
# call's next pushes in the slice need no query (the row is locked by this transaction).
_RESOLVED = "trubka.resolved_calls"
# Set once this session attached a megafon_call() request to the PBX's call: the next search
# for a waiting request must see it taken (so the change is written first).
_ATTACHED = "trubka.attached_request"
_EVENTS = CallEvent.__table__  # type: ignore[attr-defined]
_MARK_EVENT = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event"))
    .values(call_id=bindparam("call"), processed_at=bindparam("at"))
)


async def apply_push(
    session: AsyncSession, push: CallPush, event_id: int, provider: str
) -> CallUpdate:
    """Apply one stored push (CallEvent `event_id`) to its call, its client and the dialog."""
    call = await _resolve_call(session, provider, push.callid, push.phone)
    if call.phone is None and isinstance(push.phone, str):  # first seen by a phoneless push
        call.phone = push.phone
    if isinstance(push, EventPush) and joins_a_leg(push) and push.second_callid:
        await _join_leg(session, provider, call, push.second_callid)
    deferred = session.info.get(_DEFERRED)
    if deferred is not None:  # written by write_deferred() with the other pushes of the slice
        deferred.append((event_id, call))
    else:
        await session.exec(
            update(CallEvent)
            .where(col(CallEvent.id) == event_id)
            .values(call_id=call.id, processed_at=utcnow())
        )

    client, created = await _client_of(session, call)
    trigger, line, kind = transition(call, push, provider)
    call.updated_at = utcnow()
    session.add(call)

    update_ = CallUpdate(call=call, client=client, trigger=trigger, client_created=created)
    if client is not None:
        if line is not None:
            update_.dialog.append(
                await append_dialog(session, client, call, kind, line, flush=deferred is None)
            )
        update_.variables = await set_variables(session, client, call_variables(call, provider))
        await _assign_responsible(session, client, call)
    if deferred is None:
        await session.flush()
    return update_


@asynccontextmanager
async def deferred_writes(session: AsyncSession) -> AsyncIterator[None]:
    """Apply several pushes with their writes batched: dialog lines and call changes are
    flushed together, the pushes' `call_events` rows marked in one statement, at the end.

    Nothing read while applying depends on the deferred rows: a new call or client is flushed
    at once (it needs its id), and a merge of two legs writes what is pending first."""
    session.info[_DEFERRED] = []
    session.info[_RESOLVED] = {}
    try:
        with session.no_autoflush:
            yield
        await write_deferred(session)
    finally:
        session.info.pop(_DEFERRED, None)
        session.info.pop(_RESOLVED, None)


async def write_deferred(session: AsyncSession) -> None:
    await session.flush()
    marks: list[tuple[int, Call]] = session.info.get(_DEFERRED) or []
    if not marks:
        return
    now = utcnow()
    await session.exec(
        _MARK_EVENT,
        params=[{"event": event_id, "call": call.id, "at": now} for event_id, call in marks],
    )
    marks.clear()


async def append_dialog(
    session: AsyncSession,
    client: Client,
    call: Call | None,
    kind: str,
    text: str,
    direction: str = "system",
    *,
    flush: bool = True,
) -> DialogMessage:
    assert client.id is not None
    message = DialogMessage(
        client_id=client.id,
        call_id=call.id if call is not None else None,
        kind=kind,
        direction=direction,
        text=text,
        created_at=utcnow(),
    )
    session.add(message)
    if flush:
        await session.flush()
    return message


def transition(call: Call, push: CallPush, prefix: str) -> tuple[str, str | None, str]:
    """The state machine's step for one push (pure: the call object only). Returns the
    update's trigger and the dialog line to append (None: none) with its kind."""
    if isinstance(push, EventPush):
        _apply_event(call, push)
        return push.type, f"{prefix}_call_event {push.type}", "call_event"
    if isinstance(push, HistoryPush):
        status_before = call.status
        _apply_history(call, push)
        if not push.status_line_once:
            return "history", f"{prefix}_call_status {push.status}", "call_status"
        if status_before == call.status:
            # the same outcome reported again (another leg of one callback)
            return "history", None, "call_status"
        return "history", f"{prefix}_call_status {call.status}", "call_status"
    if isinstance(push, RecordPush):
        call.record_link = push.link or call.record_link
        return "record", None, ""
    call.rating = push.rating
    return "rating", None, ""


def joins_a_leg(push: CallPush) -> bool:
    """A transfer naming the other leg: both legs become one call (maybe a merge)."""
    return isinstance(push, EventPush) and push.type == "TRANSFERRED" and bool(push.second_callid)


def responsible_login(client: Client, call: Call) -> str | None:
    """The login to make responsible for the client after this push, if any: the first
    manager who talks to a client becomes responsible for them (Salebot-like)."""
    login = call.manager_user
    if client.responsible_manager_id is not None or not login:
        return None
    if not CallOutcome.of(call).answered:  # a voicemail that picked up is nobody's talk
        return None
    if login.lower() in _NOT_A_PERSON:
        return None
    return login


def manager_row(login: str, call: Call) -> dict[str, object]:
    """The manager a responsible login makes (when no manager has the login yet)."""
    return {
        "pbx_login": login,
        "pbx_ext": call.manager_ext,
        "pbx_telnum": call.manager_telnum,
        "name": login,
        "call_mode": "api",
        "call_provider": call.provider,  # the PBX the extension belongs to
        "created_at": utcnow(),
    }


def call_variables(call: Call, prefix: str) -> dict[str, str | None]:
    """The Salebot variables a client carries about its last call."""
    values = {
        f"{prefix}_call_direction": call.direction,
        f"{prefix}_call_ext": call.manager_ext,
        f"{prefix}_call_id": call.callid,
        f"{prefix}_call_user": call.manager_user,
        f"{prefix}_record_link": call.record_link,
    }
    return {name: value for name, value in values.items() if value}


def _set_manager(call: Call, user: str | None, ext: str | None, telnum: str | None) -> None:
    if user:
        call.manager_user = user
    if ext:
        call.manager_ext = ext
    if telnum:
        call.manager_telnum = telnum


def _fill(call: Call, push: EventPush | HistoryPush) -> None:
    call.diversion = call.diversion or push.diversion
    call.group_name = call.group_name or push.group_name


def _apply_event(call: Call, push: EventPush) -> None:
    _fill(call, push)
    call.last_event = push.type
    direction = push.direction or {"INCOMING": "in", "OUTGOING": "out"}.get(push.type)
    if call.direction is None and direction is not None:
        call.direction = direction
    history_seen = call.status is not None
    if push.type in (CallEventType.ACCEPTED, CallEventType.COMPLETED):
        # COMPLETED is "hung up after a conversation": someone answered even if ACCEPTED was lost.
        first_answer = not call.answered
        call.answered = True
        if push.type == CallEventType.COMPLETED:
            call.ended = True
        if not history_seen and (push.type == CallEventType.ACCEPTED or first_answer):
            _set_manager(call, push.user, push.ext, push.telnum)
    elif push.type in _RINGING and not history_seen and not call.answered:
        # The ringing (or dialling) manager, until someone answers or history names them.
        _set_manager(call, push.user, push.ext, push.telnum)


def _apply_history(call: Call, push: HistoryPush) -> None:
    _fill(call, push)
    call.direction = push.direction
    # One leg's Success is the conversation's Success, whatever another leg's history says.
    call.status = SUCCESS if call.status == SUCCESS else push.status
    if push.status == SUCCESS:
        call.answered = True
        _set_manager(call, push.user, push.ext, push.telnum)
    elif not call.answered:
        _set_manager(call, push.user, push.ext, push.telnum)
    call.ended = True
    call.started_at = min(call.started_at, push.start) if call.started_at else push.start
    call.duration = max(call.duration or 0, push.duration)
    call.wait = push.wait if push.wait is not None else call.wait
    call.record_link = push.link or call.record_link
    call.rating = push.rating if push.rating is not None else call.rating


async def _lock_call(session: AsyncSession, call_id: int) -> Call:
    """Load a call for update: on PostgreSQL concurrent pushes of one call wait for each other."""
    await write_deferred(session)  # the row is read afresh: pending changes go first
    result = await session.exec(
        select(Call)
        .where(Call.id == call_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.one()


# The apply path's lookups, built once (statement building and cache keys cost more than
# SQLite's work for them).
_REF = select(CallRef).where(
    col(CallRef.provider) == bindparam("provider"),
    col(CallRef.external_id) == bindparam("callid"),
)
_KNOWN_CALL = (
    select(Call)
    .join(CallRef, col(CallRef.call_id) == col(Call.id))
    .where(
        col(CallRef.provider) == bindparam("provider"),
        col(CallRef.external_id) == bindparam("callid"),
    )
    .with_for_update(of=Call)
)
_REQUESTED_CALL = (
    select(Call)
    .where(
        col(Call.provider) == bindparam("provider"),
        col(Call.awaiting_pbx).is_(True),
        col(Call.phone) == bindparam("phone"),
        col(Call.created_at) >= bindparam("since"),
    )
    .order_by(col(Call.id).desc())
    .limit(1)
    .with_for_update()
)


async def _find_ref(session: AsyncSession, provider: str, external_id: str) -> CallRef | None:
    params = {"provider": provider, "callid": external_id}
    return (await session.exec(_REF, params=params)).first()


async def _resolve_call(
    session: AsyncSession, provider: str, callid: str, party: str | Extension | None
) -> Call:
    resolved: dict[tuple[str, str], Call] | None = session.info.get(_RESOLVED)
    if resolved is None:
        return await _load_or_create_call(session, provider, callid, party)
    call = resolved.get((provider, callid))
    if call is None:
        call = await _load_or_create_call(session, provider, callid, party)
        resolved[(provider, callid)] = call
    return call


async def _load_or_create_call(
    session: AsyncSession, provider: str, callid: str, party: str | Extension | None
) -> Call:
    params = {"provider": provider, "callid": callid}
    known = (await session.exec(_KNOWN_CALL, params=params)).first()
    if known is not None:
        return known
    now = utcnow()
    call: Call | None = None
    if isinstance(party, str):
        # The PBX's first push of a call megafon_call() asked for: its id may differ from the
        # one makecall answered, so the requested call is found by phone.
        if session.info.get(_ATTACHED):
            await session.flush()  # a request attached earlier in this slice is taken
        wanted = {"provider": provider, "phone": party, "since": now - REQUEST_ATTACH_WINDOW}
        call = (await session.exec(_REQUESTED_CALL, params=wanted)).first()
    if call is not None:
        call.awaiting_pbx = False
        call.callid = call.callid or callid
        session.info[_ATTACHED] = True  # written before this session looks for another
    else:
        internal = isinstance(party, Extension)
        call = Call(
            provider=provider,
            callid=callid,
            phone=party.number if isinstance(party, Extension) else party,  # None: not yet known
            internal=internal,
            created_at=now,
            updated_at=now,
        )
    session.add(call)
    await session.flush()
    assert call.id is not None
    ref_id = await insert_or_ignore(
        session, CallRef, {"provider": provider, "external_id": callid, "call_id": call.id}
    )
    if ref_id is None:  # a concurrent push of the same call created it first
        await session.delete(call)
        await session.flush()
        ref = await _find_ref(session, provider, callid)
        assert ref is not None
        return await _lock_call(session, ref.call_id)
    return call


async def _join_leg(session: AsyncSession, provider: str, call: Call, second_callid: str) -> None:
    assert call.id is not None
    ref = await _find_ref(session, provider, second_callid)
    if ref is None:
        await insert_or_ignore(
            session,
            CallRef,
            {"provider": provider, "external_id": second_callid, "call_id": call.id},
        )
        ref = await _find_ref(session, provider, second_callid)
        assert ref is not None
    if ref.call_id != call.id:
        await _merge(session, into=call, other=await _lock_call(session, ref.call_id))


async def _merge(session: AsyncSession, *, into: Call, other: Call) -> None:
    """The second leg was seen on its own before the transfer: fold it into the conversation."""
    await write_deferred(session)  # rows moved below must be written first
    for model in (CallRef, CallEvent, DialogMessage):
        await session.exec(
            update(model).where(col(model.call_id) == other.id).values(call_id=into.id)
        )
    if other.status == SUCCESS or (other.answered and not into.answered):
        _set_manager(into, other.manager_user, other.manager_ext, other.manager_telnum)
    if other.status is not None:
        into.status = SUCCESS if SUCCESS in (into.status, other.status) else other.status
    into.answered = into.answered or other.answered
    into.ended = into.ended or other.ended
    into.client_id = into.client_id or other.client_id
    into.direction = into.direction or other.direction
    into.diversion = into.diversion or other.diversion
    into.record_link = other.record_link or into.record_link
    into.duration = max(into.duration or 0, other.duration or 0) or None
    if other.started_at is not None:
        into.started_at = min(into.started_at or other.started_at, other.started_at)
    into.requested = into.requested or other.requested
    session.info.get(_RESOLVED, {}).clear()  # ids resolved to `other` now mean `into`
    await session.delete(other)
    await session.flush()


async def _client_of(session: AsyncSession, call: Call) -> tuple[Client | None, bool]:
    if call.internal or not call.phone:
        return None, False
    if call.client_id is not None:
        client = await session.get(Client, call.client_id)
        if client is not None:
            return client, False
    client, created = await match_or_create_client(session, call.phone)
    call.client_id = client.id
    return client, created


async def _assign_responsible(session: AsyncSession, client: Client, call: Call) -> None:
    login = responsible_login(client, call)
    if login is None:
        return
    await insert_or_ignore(session, Manager, manager_row(login, call))
    manager = await manager_by_login(session, login)
    assert manager is not None  # inserted above, or there already
    client.responsible_manager_id = manager.id
    session.add(client)


async def call_of(
    session: AsyncSession, provider: str, callid: str, phone: str | Extension | None
) -> Call:
    """The call a provider's id belongs to, created when unknown (locked for this session)."""
    call = await _resolve_call(session, provider, callid, phone)
    if call.phone is None and isinstance(phone, str):
        call.phone = phone
    return call
