"""SQLite: a push is answered once it is on disk in the inbox's landing file, without waiting
for the main database's writer, and every landed push is applied exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import event, func, text
from sqlmodel import select

from bot.singletons import TTL
from handlers.web.context import CALLS
from storage import leases
from storage.db import CACHE_KIB, Database
from storage.inbox_queries import lane_backlog
from storage.inbox_spool import inbox_rows, spool_url
from storage.models import Call, CallEvent, DialogMessage
from storage.outcome import Lane
from storage.queries import insert_many_or_ignore
from storage.queue_stats import INBOX, queue_stats
from storage.types import utcnow
from telephony.calls.inbox import _MOVE_AT_ONCE, CallInbox, oldest_pending_age
from telephony.calls.pipeline import CallPipeline
from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push, parse_push
from tests.conftest import CRM_TOKEN, AppFactory
from tests.megafon_replay import stored_rings


def _ringing(callid: str, phone: str) -> dict[str, str]:
    return {
        "cmd": "event",
        "type": "INCOMING",
        "phone": phone,
        "callid": callid,
        "user": "andy",
        "ext": "701",
        "crm_token": CRM_TOKEN,
    }


def test_the_landing_file_sits_beside_a_sqlite_file_and_nowhere_else() -> None:
    assert spool_url("sqlite+aiosqlite:////data/trubka.db") == (
        "sqlite+aiosqlite:////data/trubka.inbox.db"
    )
    assert spool_url("sqlite+aiosqlite:///./trubka") == "sqlite+aiosqlite:///./trubka.inbox"
    assert spool_url("sqlite+aiosqlite:///:memory:") is None
    assert spool_url("sqlite+aiosqlite://") is None
    assert spool_url("postgresql+asyncpg://u@localhost/trubka") is None


async def test_a_push_is_answered_while_the_main_writer_is_held(
    make_client: AppFactory, db: Database
) -> None:
    client = await make_client(db)
    assert db.spool is not None
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_writer() -> None:
        # A long transaction on the main file (as an applier's slice or a big report write).
        async with db.session() as session:
            await session.exec(text("UPDATE call_events SET lane = lane"))  # type: ignore[call-overload]
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_writer())
    await held.wait()
    try:
        async with asyncio.timeout(5):
            response = await client.post("/megafon_webhook", data=_ringing("S-1", "79000000011"))
        assert response.status == 200
        # Answered while the writer is still held: it is in the landing file, not applied yet.
        assert not holder.done()
        assert await lane_backlog(db) == {Lane.LIVE: 1, Lane.HISTORY: 0}
        metrics = await (await client.get("/metrics")).text()
        assert 'trubka_inbox_backlog{lane="live"} 1.0' in metrics
        assert 'trubka_queue_backlog{queue="inbox"} 1.0' in metrics
    finally:
        release.set()
        await holder

    await client.app[CALLS].inbox.drain()
    async with db.read() as session:
        [call] = (await session.exec(select(Call))).all()
    assert (call.callid, call.last_event) == ("S-1", "INCOMING")
    assert await lane_backlog(db) == {Lane.LIVE: 0, Lane.HISTORY: 0}
    assert db.spool is not None and await db.spool.backlog() == (0, None)


async def test_a_push_moved_but_not_forgotten_before_a_crash_is_applied_once(
    db: Database,
) -> None:
    assert db.spool is not None
    ringing = _ringing("S-2", "79000000012")
    pushes = [ringing, {**ringing, "type": "ACCEPTED"}]
    writer = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await writer.start(process=False)
    for fields in pushes:
        new = await writer.submit(
            PROVIDER, fields, dedup_key(fields), command="event", event_type=fields["type"]
        )
        assert new
    await writer.stop(grace_seconds=0)
    # The process died after copying the landed pushes into call_events, before forgetting
    # them in the landing file.
    landed = await db.spool.oldest(10)
    async with db.session() as session:
        await insert_many_or_ignore(
            session, CallEvent, inbox_rows(landed), ("provider", "dedup_key")
        )

    after = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await after.start()
    repeat = pushes[0]
    # A repeat of a push already moved on is still a repeat.
    assert not await after.submit(
        PROVIDER, repeat, dedup_key(repeat), command="event", event_type="INCOMING"
    )
    await after.drain()
    await after.stop()
    async with db.read() as session:
        events = (await session.exec(select(CallEvent))).all()
        lines = (await session.exec(select(DialogMessage.text))).all()
    assert len(events) == 2 and all(e.processed_at and not e.error for e in events)
    assert sorted(lines) == ["megafon_call_event ACCEPTED", "megafon_call_event INCOMING"]
    assert await db.spool.backlog() == (0, None)


async def test_health_counts_a_landed_push_nobody_applies(db: Database) -> None:
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push}, stuck_after=0.0)
    await inbox.start(process=False)
    fields = _ringing("S-3", "79000000013")
    await inbox.submit(PROVIDER, fields, dedup_key(fields), command="event", event_type="INCOMING")
    await inbox.drain(process=False)
    await asyncio.sleep(0.01)
    problem = await inbox.health()
    await inbox.stop(grace_seconds=0)
    assert problem is not None and problem.startswith("oldest unapplied push waits")


async def test_the_oldest_waiting_push_counts_wherever_it_waits(db: Database) -> None:
    """A push moved on but not applied is older than any still landing: /healthz's age is its."""
    assert db.spool is not None
    async with db.session() as session:
        session.add(
            CallEvent(
                provider=PROVIDER,
                dedup_key="old",
                command="event",
                payload="{}",
                received_at=utcnow() - timedelta(seconds=300),
            )
        )
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await inbox.start(process=False)
    fields = _ringing("S-4", "79000000014")
    await inbox.submit(PROVIDER, fields, dedup_key(fields), command="event", event_type="INCOMING")
    await inbox.stop(grace_seconds=0)
    assert (await db.spool.backlog())[0] == 1
    age = await oldest_pending_age(db)
    assert age is not None and 300 <= age < 330
    stats = await queue_stats(db, INBOX)
    assert stats.backlog == 2
    assert 300 <= stats.oldest_due_seconds < 330  # /metrics and `trubka` ops agree


async def test_every_sqlite_connection_keeps_a_small_page_cache(db: Database) -> None:
    """SQLite's default cache (2 MB a connection, seven connections) held 6 MB of serve's peak."""
    assert db.spool is not None
    async with db.session() as session:
        writer = (await session.exec(text("PRAGMA cache_size"))).one()  # type: ignore[call-overload]
    async with db.read() as session:
        reader = (await session.exec(text("PRAGMA cache_size"))).one()  # type: ignore[call-overload]
    spool = db.spool
    landing = await spool._run(lambda: spool._connection().execute("PRAGMA cache_size").fetchone())
    moved = await spool._run(lambda: spool._main_reader().execute("PRAGMA cache_size").fetchone())
    # Negative: KiB, as SQLite reads it.
    assert [writer[0], reader[0], landing[0], moved[0]] == [-CACHE_KIB] * 4
    assert CACHE_KIB <= 256


async def test_a_late_outcome_finds_its_calls_live_pushes_without_a_scan(db: Database) -> None:
    """A PBX replaying its history sends late outcomes only; each moved its call's spooled live
    pushes by scanning the whole landing file (quadratic in the backlog: seen in a profile as
    most of the landing thread's time)."""
    from storage.inbox_spool import _DEMOTE

    assert db.spool is not None
    spool = db.spool
    plan = await spool._run(
        lambda: spool._connection().execute(f"EXPLAIN QUERY PLAN {_DEMOTE}", ("k",)).fetchall()
    )
    assert [row[3] for row in plan] == [
        "SEARCH spooled_pushes USING INDEX spooled_live_calls (call_key=?)"
    ]


async def test_a_big_landing_backlog_is_moved_in_turns_with_other_writers(db: Database) -> None:
    """A PBX replaying its history fills the landing file faster than slices move it. Moving
    all of it in one slice held SQLite's one writer for as long: every other writer (a lease
    renewal, the Telegram sender, the API) waited, and under a steady flood it never got in.
    A slice moves for `move_seconds` at most (here: one batch), then gives the writer up."""
    assert db.spool is not None
    pushes = 4 * _MOVE_AT_ONCE
    await db.spool.store(stored_rings(range(pushes), "R-", "7901"))
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push}, move_seconds=0.001)
    writer_taken = asyncio.Event()

    def taken(*_: object) -> None:
        writer_taken.set()

    event.listen(db.engine.sync_engine.pool, "checkout", taken)
    await inbox.start()
    try:
        await writer_taken.wait()  # the first slice holds the writer
        async with asyncio.timeout(TTL / 3):  # as a lease renewal (bot/singletons.py)
            await leases.take(db, "replay-test", "this-process", timedelta(seconds=TTL))
        moved = await _events_stored(db)
        assert 0 < moved < pushes  # the renewal got the writer between two slices
    finally:
        event.remove(db.engine.sync_engine.pool, "checkout", taken)
        await inbox.stop(grace_seconds=0)  # between two slices; the rest waits for a restart


async def test_moving_any_number_of_pushes_prepares_one_statement(db: Database) -> None:
    """SQLite keeps every statement it prepared in the connection's cache: a multi-row INSERT
    per number of rows moved was a new one each time (megabytes of RSS under a flood)."""
    assert db.spool is not None
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    inserts: set[str] = set()

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if sql.startswith("INSERT INTO call_events"):
            inserts.add(sql)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    moved = 0
    try:
        for size in (1, 7, 30):
            await db.spool.store(stored_rings(range(moved, moved + size), "R-", "7901"))
            assert await inbox.move_spooled() == size
            moved += size
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    assert await _events_stored(db) == moved


async def _events_stored(db: Database) -> int:
    async with db.read() as session:
        return int((await session.exec(select(func.count()).select_from(CallEvent))).one())


async def test_a_moved_push_keeps_its_time_of_arrival_to_the_microsecond(db: Database) -> None:
    """The landing file keeps ISO 8601 text; `call_events` keeps SQLAlchemy's form of UTC. The
    ages /healthz and /metrics tell depend on the move keeping the time, also on the whole
    second (no fraction in ISO 8601) and from another offset."""
    assert db.spool is not None
    times = [
        datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 5, 12, 0, 1, 123456, tzinfo=UTC),
        datetime(2026, 12, 5, 15, 0, 2, 5, tzinfo=timezone(timedelta(hours=3))),
    ]
    rows = stored_rings(range(len(times)), "T-", "7901")
    await db.spool.store([{**row, "received_at": at} for row, at in zip(rows, times, strict=True)])
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    assert await inbox.move_spooled() == len(times)
    async with db.read() as session:
        stored = (await session.exec(select(CallEvent.received_at).order_by(CallEvent.id))).all()
    assert stored == times
    assert stored[2].tzinfo == UTC


async def test_a_late_outcome_moves_its_calls_pushes_already_moved_on_to_history(
    db: Database,
) -> None:
    """A call's ringing was moved into `call_events` (not applied yet) when its late outcome
    lands: moving the outcome moves the call's pending pushes to history with it, as storing
    does for those still in the landing file."""
    assert db.spool is not None
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await inbox.start(process=False)
    ringing = {**_ringing("OLD-1", "79000000031"), "crm_token": CRM_TOKEN}
    other = {**_ringing("NEW-1", "79000000032"), "crm_token": CRM_TOKEN}
    for fields in (ringing, other):
        assert await inbox.submit(
            PROVIDER, fields, dedup_key(fields), command="event", event_type="INCOMING",
            secret_field="crm_token", push=parse_push(fields),
        )  # fmt: skip
    assert await inbox.move_spooled() == 2
    outcome = {
        "cmd": "history",
        "type": "in",
        "status": "Missed",
        "user": "",
        "phone": "79000000031",
        "callid": "OLD-1",
        "start": (utcnow() - timedelta(hours=3)).strftime("%Y%m%dT%H%M%SZ"),
        "duration": "20",
    }
    assert await inbox.submit(
        PROVIDER, outcome, dedup_key(outcome), command="history", push=parse_push(outcome)
    )
    assert await inbox.move_spooled() == 1
    await inbox.stop(grace_seconds=0)
    async with db.read() as session:
        rows = (await session.exec(select(CallEvent.call_key, CallEvent.lane))).all()
    assert sorted(rows) == [
        ("megafon:NEW-1", Lane.LIVE),
        ("megafon:OLD-1", Lane.HISTORY),
        ("megafon:OLD-1", Lane.HISTORY),
    ]
