"""The call inbox keeps what it accepted: across a restart, and past a push that cannot apply."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bench.megafon_calls import call_lifecycle
from bot.cli import main
from storage.db import Database
from storage.inbox_queries import push_status
from storage.models import Call, CallEvent, DialogMessage
from storage.queue import RetryPolicy, Status
from telephony.calls.apply import CallPush
from telephony.calls.inbox import CallInbox
from telephony.calls.pipeline import CallPipeline
from telephony.events import CallUpdate
from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push
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
    before = CallInbox(any_db, CallPipeline(any_db), {PROVIDER: parse_call_push})
    await before.start(process=False)  # the process dies before applying anything
    assert await submit_all(before, pushes) == [True] * len(pushes)
    await before.drain(process=False)
    await before.stop(grace_seconds=0)
    async with any_db.session() as session:
        assert (await session.exec(select(Call))).all() == []

    recorder = Recorder()
    after = CallInbox(any_db, CallPipeline(any_db, after=[recorder]), {PROVIDER: parse_call_push})
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

    inbox = CallInbox(any_db, CallPipeline(any_db), {PROVIDER: picky})
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


def _call(callid: str, phone: str, *, duration: str = "30") -> list[dict[str, str]]:
    """A short answered inbound call: INCOMING, ACCEPTED, COMPLETED, history."""
    base = {"cmd": "event", "phone": phone, "user": "andy", "ext": "701", "callid": callid}
    return [
        {**base, "type": "INCOMING"},
        {**base, "type": "ACCEPTED"},
        {**base, "type": "COMPLETED"},
        {
            "cmd": "history",
            "type": "in",
            "status": "Success",
            "phone": phone,
            "user": "andy",
            "start": "20240105T101010Z",
            "duration": duration,
            "callid": callid,
        },
    ]


def unchecked(fields: Mapping[str, str]) -> Sequence[CallPush]:
    """A parser whose number checks let a huge duration through (as an older version's did):
    the database itself then refuses the push (OverflowError on SQLite, out of range on
    PostgreSQL) in the middle of a transaction."""
    if fields.get("duration", "").isdecimal() and len(fields["duration"]) > 9:
        huge = int(fields["duration"])
        return [replace(p, duration=huge) for p in parse_call_push({**fields, "duration": "1"})]
    return parse_call_push(fields)


async def test_a_poison_push_between_good_ones_never_holds_them_back(any_db: Database) -> None:
    good_before = _call("GOOD-1", "79161110001")
    poison = _call("POISON", "79161110002", duration="99999999999999999999")
    good_after = _call("GOOD-2", "79161110003")
    recorder = Recorder()
    inbox = CallInbox(any_db, CallPipeline(any_db, after=[recorder]), {PROVIDER: unchecked})
    await inbox.start()
    await submit_all(inbox, good_before[:2] + poison + good_before[2:] + good_after)
    await inbox.drain()

    async with any_db.session() as session:
        calls = {c.callid: c for c in (await session.exec(select(Call))).all()}
        events = (await session.exec(select(CallEvent).order_by(CallEvent.id))).all()
    assert (calls["GOOD-1"].status, calls["GOOD-1"].duration) == ("Success", 30)
    assert (calls["GOOD-2"].status, calls["GOOD-2"].duration) == ("Success", 30)
    assert all(e.processed_at is not None for e in events)  # nothing waits
    [set_aside] = [e for e in events if e.error]
    assert set_aside.command == "history" and "POISON" in set_aside.payload
    assert calls["POISON"].status is None  # its events applied, its broken outcome set aside
    assert inbox.dead_total == 1
    assert await inbox.health() is None

    # After a fix (here: the parser that checks numbers), the operator re-applies it.
    inbox._parsers[PROVIDER] = lambda f: parse_call_push({**f, "duration": "45"})
    assert await inbox.revive(set_aside.id or 0) is True
    assert await inbox.revive(set_aside.id or 0) is False  # not set aside any more
    await inbox.drain()
    await inbox.stop()
    async with any_db.session() as session:
        poisoned = (await session.exec(select(Call).where(Call.callid == "POISON"))).one()
        again = await session.get(CallEvent, set_aside.id)
    assert (poisoned.status, poisoned.duration) == ("Success", 45)
    assert again is not None and again.error is None and again.processed_at is not None


async def test_a_stopped_processor_and_an_old_push_make_the_inbox_unhealthy(
    any_db: Database,
) -> None:
    inbox = CallInbox(any_db, CallPipeline(any_db), {PROVIDER: parse_call_push}, stuck_after=0.0)
    await inbox.start(process=False)
    await submit_all(inbox, _call("WAITING", "79161110004")[:1])
    await inbox.drain(process=False)
    assert (await inbox.health() or "").startswith("oldest unapplied push waits")
    await inbox.drain()
    assert await inbox.health() is None
    inbox._tasks[0].cancel()
    await asyncio.sleep(0)
    assert await inbox.health() == "inbox-writer stopped"
    await inbox.stop()


async def test_an_operator_lists_a_set_aside_push_and_reapplies_it_after_the_fix(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def picky(fields: Mapping[str, str]) -> Sequence[CallPush]:
        if fields.get("type") == "ACCEPTED":
            raise RuntimeError("the ACCEPTED parser has a bug")
        return parse_call_push(fields)

    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: picky})
    await inbox.start()
    await submit_all(inbox, _call("FIXME-1", "79161110005"))
    await inbox.drain()
    await inbox.stop()

    monkeypatch.setenv("TRUBKA_DATABASE_URL", db.url)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, main, ["inbox"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "waiting: 0  oldest: 0 s  set aside: 1"
    assert "#2 megafon event ACCEPTED call=FIXME-1" in out
    assert "RuntimeError: the ACCEPTED parser has a bug" in out

    assert await loop.run_in_executor(None, main, ["inbox", "reapply", "2"]) == 0
    assert await loop.run_in_executor(None, main, ["inbox", "reapply", "2"]) == 1
    assert await loop.run_in_executor(None, main, ["inbox", "reapply"]) == 2
    fixed = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await fixed.start()  # a restarted serve with the fix applies what was put back
    await fixed.drain()
    await fixed.stop()
    async with db.session() as session:
        [call] = (await session.exec(select(Call))).all()
        lines = (await session.exec(select(DialogMessage.text))).all()
    assert call.answered is True
    assert "megafon_call_event ACCEPTED" in lines


def _lock_timeouts(failures: int | None) -> Callable[[Mapping[str, str]], Sequence[CallPush]]:
    """A parser that meets an operational error (as a lock timeout would) on its first
    `failures` tries of the CANCELLED push (None: always)."""
    tries = 0

    def parse(fields: Mapping[str, str]) -> Sequence[CallPush]:
        nonlocal tries
        if fields.get("type") == "CANCELLED":
            tries += 1
            if failures is None or tries <= failures:
                raise OperationalError("UPDATE calls", {}, Exception("lock timeout"))
        return parse_call_push(fields)

    return parse


async def _until_applied(db: Database, count: int) -> list[CallEvent]:
    async with asyncio.timeout(20):
        while True:
            async with db.session() as session:
                events = list((await session.exec(select(CallEvent).order_by(CallEvent.id))).all())
            if len(events) == count and all(e.processed_at is not None for e in events):
                return events
            await asyncio.sleep(0.02)


async def test_an_operational_error_is_retried_by_the_retry_policy_not_set_aside(
    any_db: Database,
) -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_attempts=4)
    parse = _lock_timeouts(3)  # the fourth try goes through
    inbox = CallInbox(any_db, CallPipeline(any_db), {PROVIDER: parse}, retry=policy)
    await inbox.start()
    pushes = load("inbound_answered")[1:]
    await submit_all(inbox, pushes)
    events = await _until_applied(any_db, len(pushes))
    await inbox.stop()
    assert [e.error for e in events] == [None] * len(pushes)
    assert inbox.dead_total == 0
    async with any_db.session() as session:
        [call] = (await session.exec(select(Call))).all()
    assert (call.status, call.manager_user) == ("Success", "andy")


async def test_a_push_whose_operational_errors_outlast_the_policy_is_dead(
    any_db: Database,
) -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_attempts=3)
    inbox = CallInbox(any_db, CallPipeline(any_db), {PROVIDER: _lock_timeouts(None)}, retry=policy)
    await inbox.start()
    pushes = load("inbound_answered")[1:]
    await submit_all(inbox, pushes)
    events = await _until_applied(any_db, len(pushes))
    await inbox.stop()
    [dead] = [e for e in events if e.error]
    assert dead.event_type == "CANCELLED" and "lock timeout" in (dead.error or "")
    assert push_status(dead) == Status.DEAD
    assert inbox.dead_total == 1
    async with any_db.session() as session:
        [call] = (await session.exec(select(Call))).all()
    assert call.status == "Success"  # the pushes after it were applied


def _ring(n: int) -> dict[str, str]:
    """Call GATHER-n ringing (its INCOMING), as the PBX sends it."""
    return call_lifecycle(f"GATHER-{n}", f"7901{n:07d}", "token", contact=False)[0]


async def _applied_at(db: Database) -> dict[str, float]:
    """When each applied push was applied (its slice's clock), by its call id."""
    async with db.read() as session:
        found = await session.exec(
            select(CallEvent.payload, CallEvent.processed_at).where(
                CallEvent.processed_at.is_not(None)  # type: ignore[union-attr]
            )
        )
        return {json.loads(payload)["callid"]: at.timestamp() for payload, at in found.all()}


async def _once_applied(db: Database, count: int) -> dict[str, float]:
    async with asyncio.timeout(20):
        while True:
            if len(applied := await _applied_at(db)) >= count:
                return applied
            await asyncio.sleep(0.02)


async def test_a_steady_stream_is_applied_in_gathered_slices_and_a_backlog_without_pause(
    any_db: Database,
) -> None:
    """A slice costs about as many statements for one push as for thirty: pushes that arrive
    while a slice is applied wait for the next slice, `gather_seconds` after that one began,
    and go together. A push after a quiet moment goes at once; a backlog goes slice after
    slice with no pause."""
    gather = 1.0
    inbox = CallInbox(
        any_db, CallPipeline(any_db), {PROVIDER: parse_call_push}, gather_seconds=gather
    )
    await inbox.start()
    try:
        began = time.time()
        await submit_all(inbox, [_ring(0)])
        first = (await _once_applied(any_db, 1))["GATHER-0"]
        assert first - began < gather / 2  # after a quiet moment: at once

        await submit_all(inbox, [_ring(1), _ring(2)])  # within the gather of ring 0's slice
        applied = await _once_applied(any_db, 3)
        assert applied["GATHER-1"] == applied["GATHER-2"]  # one slice for both
        assert applied["GATHER-1"] - first >= gather * 0.9

        await inbox._processor.stop()  # a backlog piles up while nothing applies
        await asyncio.sleep(gather)  # past the last gather
        await submit_all(inbox, [_ring(n) for n in range(3, 103)])
        inbox._processor.start()
        applied = await _once_applied(any_db, 103)
        slices = sorted({applied[f"GATHER-{n}"] for n in range(3, 103)})
        assert len(slices) > 1  # several slices (claims grow from a few pushes) …
        gaps = [later - earlier for earlier, later in itertools.pairwise(slices)]
        assert max(gaps) < gather * 0.9  # … one right after the other
    finally:
        await inbox.stop()
