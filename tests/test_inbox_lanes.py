"""Live pushes first: a new call is applied before a replayed backlog, one call stays in order,
and on PostgreSQL several appliers drain one inbox to exactly what one applier gives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel import SQLModel, col, select

from bench.megafon_calls import call_lifecycle
from handlers.web.context import CALLS
from storage.db import Database
from storage.inbox_claim import claim
from storage.inbox_queries import demote, lane_backlog
from storage.models import Call, CallEvent, Client, DialogMessage
from storage.outcome import Lane
from storage.types import utcnow
from telephony.calls.inbox import CallInbox
from telephony.calls.pipeline import CallPipeline
from telephony.events import CallUpdate
from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push, parse_push
from tests.conftest import CRM_TOKEN, AppClient, AppFactory
from tests.megafon_replay import stored_push, stored_rings

BACKLOG_CALLS = 300


class Recorder:
    def __init__(self) -> None:
        self.updates: list[CallUpdate] = []

    async def call_updated(self, update: CallUpdate) -> None:
        self.updates.append(update)

    def applied(self) -> list[tuple[str | None, str]]:
        return [(u.call.callid, u.trigger) for u in self.updates]


def _event(callid: str, phone: str, kind: str, ext: str = "701") -> dict[str, str]:
    return {
        "cmd": "event",
        "type": kind,
        "phone": phone,
        "callid": callid,
        "user": "andy",
        "ext": ext,
        "crm_token": CRM_TOKEN,
    }


async def _post_all(client: AppClient, calls: Sequence[Sequence[dict[str, str]]]) -> None:
    """Each call's pushes in order, calls side by side (as a PBX replaying its history)."""

    async def one_call(pushes: Sequence[dict[str, str]]) -> None:
        for fields in pushes:
            response = await client.post("/megafon_webhook", data=fields)
            assert response.status == 200, await response.text()

    for start in range(0, len(calls), 25):
        await asyncio.gather(*(one_call(pushes) for pushes in calls[start : start + 25]))


async def _paused(client: AppClient) -> CallInbox:
    """The app stores pushes but applies none until the test says (a PBX replay piles up)."""
    inbox = client.app[CALLS].inbox
    await inbox._processor.stop()
    return inbox


async def test_a_new_call_is_applied_before_a_replayed_backlog_and_one_call_keeps_its_order(
    make_client: AppFactory, any_db: Database
) -> None:
    client = await make_client(any_db)
    await _paused(client)
    # The call K: a losing extension's CANCELLED (history lane) is stored before the backlog.
    await _post_all(client, [[_event("K-1", "79000000001", "CANCELLED", ext="702")]])
    backlog = [
        call_lifecycle(f"OLD-{n}", f"7901{n:07d}", CRM_TOKEN, contact=False)
        for n in range(BACKLOG_CALLS)
    ]
    await _post_all(client, backlog)
    # Then K is answered, and a new call N rings.
    await _post_all(client, [[_event("K-1", "79000000001", "ACCEPTED")]])
    await _post_all(client, [[_event("N-1", "79000000002", "INCOMING")]])

    # The replay's events were stored live, then moved to history by their call's late outcome.
    stored = 1 + 4 * BACKLOG_CALLS + 2
    assert await lane_backlog(any_db) == {Lane.LIVE: 2, Lane.HISTORY: stored - 2}
    metrics = await (await client.get("/metrics")).text()
    assert 'trubka_inbox_backlog{lane="live"} 2.0' in metrics
    assert f'trubka_inbox_backlog{{lane="history"}} {stored - 2}.0' in metrics

    recorder = Recorder()
    applier = CallInbox(
        any_db,
        CallPipeline(any_db, after=[recorder]),
        {PROVIDER: parse_call_push},
        slice_seconds=30,
    )
    assert await applier.process_once() >= 3
    # The first slice: K's earlier CANCELLED comes along, before its ACCEPTED; then N.
    assert recorder.applied()[:3] == [
        ("K-1", "CANCELLED"),
        ("K-1", "ACCEPTED"),
        ("N-1", "INCOMING"),
    ]
    assert len(recorder.applied()) <= 5  # and at most a push or two of the backlog
    assert (await lane_backlog(any_db))[Lane.LIVE] == 0

    await applier.drain()
    assert len(recorder.applied()) == stored
    async with any_db.read() as session:
        calls = {c.callid: c for c in (await session.exec(select(Call))).all()}
        assert calls["N-1"].last_event == "INCOMING"
        assert calls["K-1"].last_event == "ACCEPTED" and calls["K-1"].answered
        old = [c for callid, c in calls.items() if callid and callid.startswith("OLD-")]
        assert len(old) == BACKLOG_CALLS and all(c.status == "Success" for c in old)
        # Applied before the backlog: their calls were created first.
        assert max(calls["K-1"].id or 0, calls["N-1"].id or 0) < min(c.id or 0 for c in old)
        lines = (
            await session.exec(
                select(DialogMessage.text)
                .where(DialogMessage.call_id == calls["K-1"].id)
                .order_by(col(DialogMessage.id))
            )
        ).all()
    assert list(lines) == ["megafon_call_event CANCELLED", "megafon_call_event ACCEPTED"]


async def test_a_fresh_missed_outcome_is_live_and_an_old_one_is_history(
    make_client: AppFactory, any_db: Database
) -> None:
    client = await make_client(any_db)
    inbox = await _paused(client)
    now = utcnow()

    def missed(callid: str, ended_ago: timedelta) -> dict[str, str]:
        start = now - ended_ago - timedelta(seconds=20)
        return {
            "cmd": "history",
            "type": "in",
            "status": "Missed",
            "user": "",
            "phone": "79000000003",
            "callid": callid,
            "start": start.strftime("%Y%m%dT%H%M%SZ"),
            "duration": "20",
            "crm_token": CRM_TOKEN,
        }

    await _post_all(
        client,
        [
            [_event("FRESH", "79000000003", "INCOMING"), missed("FRESH", timedelta(seconds=5))],
            [_event("STALE", "79000000004", "INCOMING"), missed("STALE", timedelta(hours=3))],
            [{**_event("R", "79000000005", "INCOMING"), "cmd": "rating", "rating": "5"}],
        ],
    )
    await inbox.move_spooled()  # SQLite: from the landing file, as the applier's next slice
    async with any_db.read() as session:
        rows = (await session.exec(select(CallEvent).order_by(col(CallEvent.id)))).all()
    lanes = {(row.call_key, row.command, row.event_type): Lane(row.lane) for row in rows}
    assert lanes == {
        ("megafon:FRESH", "event", "INCOMING"): Lane.LIVE,
        ("megafon:FRESH", "history", None): Lane.LIVE,
        ("megafon:STALE", "event", "INCOMING"): Lane.HISTORY,  # its call ended hours ago
        ("megafon:STALE", "history", None): Lane.HISTORY,
        ("megafon:R", "rating", None): Lane.HISTORY,
    }


# --- several appliers on PostgreSQL -------------------------------------------------------------


def _mixed_backlog(calls: int) -> list[list[dict[str, str]]]:
    """Finished calls replayed (history), fresh missed calls and calls still ringing (live)."""
    now = utcnow()
    backlog: list[list[dict[str, str]]] = []
    for n in range(calls):
        callid, phone = f"MIX-{n}", f"7902{n:07d}"
        kind = n % 3
        if kind == 0:
            backlog.append(call_lifecycle(callid, phone, CRM_TOKEN, contact=False))
        elif kind == 1:
            start = (now - timedelta(seconds=30)).strftime("%Y%m%dT%H%M%SZ")
            outcome = {
                "cmd": "history",
                "type": "in",
                "status": "Missed",
                "user": "",
                "phone": phone,
                "callid": callid,
                "start": start,
                "duration": "25",
                "crm_token": CRM_TOKEN,
            }
            cancelled = _event(callid, phone, "CANCELLED", ext="702")
            backlog.append([_event(callid, phone, "INCOMING"), cancelled, outcome])
        else:
            rating = {**_event(callid, phone, "INCOMING"), "cmd": "rating", "rating": "4"}
            answered = _event(callid, phone, "ACCEPTED")
            backlog.append([_event(callid, phone, "INCOMING"), rating, answered])
    return backlog


_CYCLE = ("INCOMING", "CANCELLED", "ACCEPTED", "TRANSFERRED", "COMPLETED", "OUTGOING")


def _long_calls(calls: int, pushes: int) -> list[list[dict[str, str]]]:
    """Calls of many events (a new extension each: each push is new), both lanes mixed: the
    final manager, last event and dialog depend on the order they are applied in."""
    return [
        [
            _event(f"LONG-{n}", f"7903{n:07d}", _CYCLE[(i + n) % len(_CYCLE)], ext=str(700 + i))
            for i in range(pushes)
        ]
        for n in range(calls)
    ]


def _waves(backlog: list[list[dict[str, str]]]) -> list[list[dict[str, str]]]:
    """Every call's first push, then every call's second…: stored round robin, each call's
    pushes far apart, so appliers meet inside calls."""
    longest = max(len(pushes) for pushes in backlog)
    return [[pushes[i] for pushes in backlog if i < len(pushes)] for i in range(longest)]


async def _store(db: Database, waves: list[list[dict[str, str]]]) -> None:
    writer = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await writer.start(process=False)

    async def submit(fields: dict[str, str]) -> bool:
        return await writer.submit(
            PROVIDER,
            fields,
            dedup_key(fields),
            command=fields["cmd"],
            event_type=fields.get("type") if fields["cmd"] == "event" else None,
            secret_field="crm_token",
            push=parse_push(fields),  # type: ignore[arg-type]
        )

    for wave in waves:  # a wave is stored together (group commits), waves one after another
        assert all(await asyncio.gather(*(submit(fields) for fields in wave)))
    await writer.drain(process=False)
    for task in writer._tasks:  # only stored: applying is the appliers' part
        task.cancel()
    await asyncio.gather(*writer._tasks, return_exceptions=True)


async def _pending(db: Database) -> int:
    return sum((await lane_backlog(db)).values())


async def _drain(inbox: CallInbox, db: Database) -> None:
    while await _pending(db):
        if not await inbox.process_once():
            await asyncio.sleep(0.005)  # the rest is another applier's


async def _state(db: Database) -> dict[str, Any]:
    """What applying produced, per call: its facts and its dialog in order."""
    async with db.read() as session:
        calls = (await session.exec(select(Call).order_by(col(Call.callid)))).all()
        lines = (
            await session.exec(
                select(Client.phone, DialogMessage.text)
                .join(Client, col(Client.id) == col(DialogMessage.client_id))
                .order_by(col(DialogMessage.id))
            )
        ).all()
        dead = (
            await session.exec(select(CallEvent.id).where(col(CallEvent.error).is_not(None)))
        ).all()
    dialogs: dict[str, list[str]] = {}
    for phone, line in lines:
        dialogs.setdefault(phone, []).append(line)
    facts = {
        c.callid: (
            c.status,
            c.last_event,
            c.answered,
            c.ended,
            c.duration,
            c.phone,
            c.rating,
            c.manager_ext,
        )
        for c in calls
    }
    return {"calls": facts, "dialogs": dialogs, "dead": list(dead)}


async def _empty(db: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    async with db.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


async def test_two_appliers_on_postgresql_end_where_one_applier_ends(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.calls.inbox")
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        await _empty(first)
        waves = _waves(_long_calls(16, 24) + _mixed_backlog(120))
        pushes = [fields for wave in waves for fields in wave]

        await _store(first, waves)
        alone = Recorder()
        await _drain(
            CallInbox(first, CallPipeline(first, after=[alone]), {PROVIDER: parse_call_push}), first
        )
        expected = await _state(first)

        await _empty(first)
        await _store(first, waves)
        recorders = [Recorder(), Recorder()]
        appliers = [
            CallInbox(db, CallPipeline(db, after=[rec]), {PROVIDER: parse_call_push}, batch_limit=8)
            for db, rec in zip((first, second), recorders, strict=True)
        ]
        async with asyncio.timeout(120):  # a deadlock would hang here
            await asyncio.gather(
                *(_drain(a, db) for a, db in zip(appliers, (first, second), strict=True))
            )
        got = await _state(first)
    finally:
        await first.dispose()
        await second.dispose()

    assert len(alone.updates) == len(pushes)
    # Every push applied exactly once, and both appliers took part.
    assert sum(len(r.updates) for r in recorders) == len(pushes)
    assert all(r.updates for r in recorders)
    assert got == expected
    assert not expected["dead"]
    assert "slice failed" not in caplog.text and "deadlock" not in caplog.text.lower()


async def _applied(db: Database) -> list[tuple[str | None, str | None]]:
    async with db.read() as session:
        rows = (
            await session.exec(
                select(CallEvent.call_key, CallEvent.event_type)
                .where(col(CallEvent.processed_at).is_not(None))
                .order_by(col(CallEvent.id))
            )
        ).all()
    return [(key, kind) for key, kind in rows]


async def test_a_call_another_applier_holds_is_left_to_it(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        await _empty(db)
        x, y = "79000000011", "79000000012"
        # One wave each: X's INCOMING, Y's INCOMING, X's ACCEPTED, in that order.
        await _store(
            db,
            [
                [_event("X", x, "INCOMING")],
                [_event("Y", y, "INCOMING")],
                [_event("X", x, "ACCEPTED")],
            ],
        )
        inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
        async with db.session() as other:  # another applier's slice, holding call X
            held = await claim(other, 1, postgres=True)
            assert [(e.call_key, e.event_type) for e in held.events] == [("megafon:X", "INCOMING")]
            assert await inbox.process_once() == 1
            assert await _applied(db) == [("megafon:Y", "INCOMING")]
            await other.rollback()
        await inbox.drain()
        assert await _applied(db) == [
            ("megafon:X", "INCOMING"),
            ("megafon:Y", "INCOMING"),
            ("megafon:X", "ACCEPTED"),
        ]
    finally:
        await db.dispose()


async def test_a_call_stops_at_an_earlier_push_another_transaction_holds(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    try:
        await _empty(db)
        phone = "79000000013"
        await _store(
            db,
            [[_event("Z", phone, "CANCELLED", ext="702")], [_event("Z", phone, "INCOMING")]],
        )
        inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
        async with db.session() as other:  # e.g. an applier that lost the call, in its step 1
            await other.exec(
                select(CallEvent).where(CallEvent.event_type == "CANCELLED").with_for_update()
            )
            # Z's INCOMING is live, but the push before it is held: nothing of Z is applied.
            assert await inbox.process_once() == 0
            assert await _applied(db) == []
            await other.rollback()
        await inbox.drain()
        assert await _applied(db) == [("megafon:Z", "CANCELLED"), ("megafon:Z", "INCOMING")]
        async with db.read() as session:
            lines = (
                await session.exec(select(DialogMessage.text).order_by(col(DialogMessage.id)))
            ).all()
        assert list(lines) == ["megafon_call_event CANCELLED", "megafon_call_event INCOMING"]
    finally:
        await db.dispose()


async def test_a_slice_searches_its_calls_pushes_instead_of_walking_the_backlog(
    db: Database,
) -> None:
    """Each slice reads the pending pushes of the calls it claimed. Ordered by id in SQL,
    SQLite walked every pending push to find them: 8 ms a slice behind 13,000 pushes, so
    applying fell behind 300 pushes/s after a burst. The claim still returns them in order."""
    # A replayed backlog of 500 calls, six pushes each; the last 32 are live (a late push of a
    # call that rings now): the claim pulls each such call's earlier pushes along.
    await _insert_rows(
        db,
        [
            stored_push(f"k{n}", f"call-{n % 500}", Lane.LIVE if n >= 2968 else Lane.HISTORY)
            for n in range(3000)
        ],
    )
    with _captured(db, "SELECT call_events.id, call_events.provider") as captured:
        async with db.session() as session:
            claimed = await claim(session, 32, postgres=False)
    # The 32 live pushes name 32 calls; each call's six pushes come along, in id order.
    assert len(claimed.events) == 32 * 6
    by_call: dict[str | None, list[int]] = {}
    for pushed in claimed.events:
        by_call.setdefault(pushed.call_key, []).append(pushed.id or 0)
    assert all(ids == sorted(ids) for ids in by_call.values())
    assert [pushed.id for pushed in claimed.events[:3]] == [469, 969, 1469]
    [(statement, parameters)] = captured
    plan = await _plan(db, statement, parameters)
    assert "SEARCH call_events USING INDEX ix_call_events_pending_call" in plan, plan
    assert "SCAN call_events" not in plan, plan  # the pending pushes are never walked


async def test_a_late_outcome_searches_its_calls_pushes_instead_of_the_live_lane(
    db: Database,
) -> None:
    """A late outcome moves its call's pending pushes to history. With the lane in its
    condition, SQLite searched the index of the lane: every pending live push, for every late
    outcome of a replay."""
    await _insert_rows(db, [stored_push(f"k{n}", f"call-{n % 500}") for n in range(3000)])
    with _captured(db, "UPDATE call_events SET lane") as captured:
        async with db.session() as session:
            await demote(session, ["megafon:call-7", "megafon:call-8"])
    assert await lane_backlog(db) == {Lane.LIVE: 3000 - 12, Lane.HISTORY: 12}
    [(statement, parameters)] = captured
    one_call = parameters[0] if isinstance(parameters, list) else parameters  # executemany
    plan = await _plan(db, statement, one_call)
    assert "SEARCH call_events USING INDEX ix_call_events_pending_call" in plan, plan
    assert "pending_lane" not in plan and "SCAN call_events" not in plan, plan


async def _insert_rows(db: Database, rows: list[dict[str, Any]]) -> None:
    """`call_events` rows written as they are (a backlog without the webhook)."""
    async with db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            SQLModel.metadata.tables["call_events"].insert(), params=rows
        )


@contextlib.contextmanager
def _captured(db: Database, prefix: str) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) starting with `prefix` run inside the block."""
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith(prefix):
            captured.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)


async def _plan(db: Database, statement: str, parameters: Any) -> str:
    """SQLite's query plan of a captured statement, its steps joined."""
    async with db.session() as session:
        connection = await session.connection()
        found = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return " ".join(str(row[-1]) for row in found.all())


async def _rows_read(db: Database, statement: str, parameters: Any) -> int:
    """How many rows PostgreSQL's plan of a captured statement reads: those its scans return
    and those their filters throw away (EXPLAIN ANALYZE, rolled back)."""
    async with db.session() as session:
        connection = await session.connection()
        found = await connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
        )
        plan = found.scalar_one()
        await session.rollback()

    def read(node: dict[str, Any]) -> int:
        own = 0
        if "Scan" in node["Node Type"] and "Bitmap Index" not in node["Node Type"]:
            own = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        return own + sum(read(child) for child in node.get("Plans", []))

    return read((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])


async def test_a_backlog_behind_statistics_of_an_idle_inbox_is_claimed_from_its_index(
    postgres_url: str,
) -> None:
    """PostgreSQL plans the claim from statistics autovacuum took when it liked. Taken while
    nothing waited, they say no push is pending: every claim then read the whole backlog (4 ms
    a claim behind 10,000 pushes, three claims a slice). Applying a backlog refreshes them."""
    db = Database(postgres_url)
    autovacuum = "ALTER TABLE call_events SET (autovacuum_enabled = {})"
    try:
        await _empty(db)
        async with db.autocommit() as connection:
            await connection.execute(text(autovacuum.format("false")))  # no refresh but ours
        done = stored_rings(range(7000), "B")
        for row in done[:5000]:
            row["processed_at"] = utcnow()
        await _insert_rows(db, done[:5000])
        async with db.autocommit() as connection:
            await connection.execute(text("VACUUM ANALYZE call_events"))  # an idle inbox's
        await _insert_rows(db, done[5000:])
        inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
        claiming = "SELECT call_events.id"  # the claim's three statements
        with _captured(db, claiming) as captured:
            async with db.session() as session:
                await claim(session, 32, postgres=True)
        stale = [await _rows_read(db, *statement) for statement in captured]
        assert max(stale) >= 2000, stale  # the whole backlog: the statistics are stale

        handled = 0
        while handled < 32:  # a slice that applied a backlog's worth refreshes the statistics
            handled = await inbox.process_once()
        with _captured(db, claiming) as captured:
            assert await inbox.process_once()
        fresh = [await _rows_read(db, *statement) for statement in captured]
        assert max(fresh) <= 200, fresh  # the slice's claim, not the backlog
        assert await _pending(db) > 1800  # a backlog still waits
    finally:
        async with db.autocommit() as connection:
            await connection.execute(text(autovacuum.format("true")))
        await db.dispose()
