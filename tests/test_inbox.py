"""The call inbox keeps what it accepted: across a restart, and past a push that cannot apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel import select

from storage.db import Database
from storage.models import Call, CallEvent
from telephony.calls import CallPush
from telephony.inbox import CallInbox
from telephony.megafon import PROVIDER, dedup_key, parse_call_push
from telephony.notify import CallObservers, CallUpdate
from tests.megafon_replay import load


class Recorder:
    def __init__(self) -> None:
        self.updates: list[CallUpdate] = []

    async def call_updated(self, update: CallUpdate) -> None:
        self.updates.append(update)


async def submit_all(inbox: CallInbox, pushes: list[dict[str, str]]) -> list[bool]:
    return [
        await inbox.submit(PROVIDER, p, dedup_key(p), command=p["cmd"], event_type=p.get("type"))
        for p in pushes
    ]


async def test_pushes_stored_before_a_stop_are_applied_after_the_restart(
    any_db: Database,
) -> None:
    pushes = load("inbound_answered")[1:]
    before = CallInbox(any_db, CallObservers(), {PROVIDER: parse_call_push})
    await before.start(process=False)  # the process dies before applying anything
    assert await submit_all(before, pushes) == [True] * len(pushes)
    await before.drain(process=False)
    await before.stop(grace_seconds=0)
    async with any_db.session() as session:
        assert (await session.exec(select(Call))).all() == []

    recorder = Recorder()
    after = CallInbox(any_db, CallObservers([recorder]), {PROVIDER: parse_call_push})
    await after.start()
    assert await submit_all(after, pushes[:2]) == [False, False]  # still duplicates
    await after.drain()
    await after.stop()

    async with any_db.session() as session:
        [call] = (await session.exec(select(Call))).all()
    assert (call.status, call.manager_user, call.duration) == ("Success", "andy", 124)
    assert [u.trigger for u in recorder.updates][-1] == "history"


async def test_a_push_that_cannot_be_applied_is_set_aside_with_its_error(
    any_db: Database,
) -> None:
    def picky(fields: Mapping[str, str]) -> Sequence[CallPush]:
        if fields.get("user") == "bob":
            raise RuntimeError("bob's pushes break the parser")
        return parse_call_push(fields)

    inbox = CallInbox(any_db, CallObservers(), {PROVIDER: picky})
    await inbox.start()
    await submit_all(inbox, load("inbound_answered")[1:])
    await inbox.drain()
    await inbox.stop()

    async with any_db.session() as session:
        events = (await session.exec(select(CallEvent).order_by(CallEvent.id))).all()
        [call] = (await session.exec(select(Call))).all()
    failed = [e for e in events if e.error]
    assert [e.event_type for e in failed] == ["INCOMING", "CANCELLED"]  # bob's two pushes
    assert all("bob's pushes break the parser" in (e.error or "") for e in failed)
    assert all(e.processed_at is not None for e in events)
    assert (call.status, call.manager_user) == ("Success", "andy")  # the rest applied
