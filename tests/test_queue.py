"""The queue engine on SQLite and PostgreSQL: scenario jobs claimed with a lease and a token,
and reads that do not wait for the writer."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlmodel import select

from storage.db import Database
from storage.queue import Status
from storage.scenario_models import ScenarioJob
from storage.scenario_queries import JOBS, claim_due
from storage.types import utcnow
from telephony.clients import create_client, find_client_by_phone
from telephony.leads import outbox
from tests.leads_harness import START

LEASE = timedelta(minutes=5)


async def _jobs(db: Database) -> list[ScenarioJob]:
    async with db.session() as session:
        return list((await session.exec(select(ScenarioJob).order_by(ScenarioJob.id))).all())


async def test_a_scenario_run_whose_lease_passed_on_cannot_finish_the_job(any_db: Database) -> None:
    async with any_db.session() as session:
        session.add(ScenarioJob(rule="r", payload=json.dumps({}), due_at=START, created_at=START))
    [stale] = await claim_due(any_db, START, lease=LEASE)
    assert stale.status == Status.RUNNING and stale.claim_token
    assert await claim_due(any_db, START + timedelta(minutes=1), lease=LEASE) == []  # leased
    [fresh] = await claim_due(any_db, START + LEASE + timedelta(seconds=1), lease=LEASE)
    assert fresh.id == stale.id and fresh.claim_token != stale.claim_token
    assert fresh.attempts == 2

    assert stale.id is not None and fresh.id is not None
    assert not await JOBS.complete(any_db, stale.id, stale.claim_token, status=Status.FAILED)
    assert await JOBS.complete(any_db, fresh.id, fresh.claim_token)
    [job] = await _jobs(any_db)
    assert (job.status, job.claim_token, job.lease_until) == ("done", None, None)


async def test_a_released_job_waits_until_due_and_then_is_claimed_once(any_db: Database) -> None:
    async with any_db.session() as session:
        session.add(ScenarioJob(rule="r", payload="{}", due_at=START, created_at=START))
    [job] = await claim_due(any_db, START, lease=LEASE)
    assert job.id is not None
    later = START + timedelta(hours=1)
    assert await JOBS.release(any_db, job.id, job.claim_token, due=later, step=1)
    assert await claim_due(any_db, later - timedelta(seconds=1), lease=LEASE) == []
    assert await JOBS.next_due(any_db) == later
    claims = await asyncio.gather(*(claim_due(any_db, later, lease=LEASE) for _ in range(3)))
    assert sorted(len(claimed) for claimed in claims) == [0, 0, 1]
    [again] = [claimed[0] for claimed in claims if claimed]
    assert (again.step, again.status) == (1, "running")


async def test_a_read_does_not_wait_for_an_open_write_transaction(db: Database) -> None:
    """SQLite: while the writer holds the lock (the call inbox mid-slice), the PBX's `contact`
    and the client lookup still answer from the last committed state."""
    async with db.session() as session:
        await create_client(session, phone="79004443322", name="Иван")
    async with db.session() as writing:
        await create_client(writing, phone="79005556677", name="Пётр")  # not committed yet
        async with asyncio.timeout(10):  # a deadlock detector, not a timing goal
            async with db.read() as reading:
                ivan = await find_client_by_phone(reading, "8 900 444-33-22")
                petr = await find_client_by_phone(reading, "79005556677")
    assert ivan is not None and ivan.name == "Иван"
    assert petr is None  # the writer's row is not visible before its commit


async def test_a_claim_takes_no_more_rows_than_its_limit(any_db: Database) -> None:
    """PostgreSQL may evaluate an `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` more than once;
    the engine must still hand out at most `limit` rows per claim."""
    now = utcnow()
    async with any_db.session() as session:
        for index in range(5):
            await outbox.enqueue(
                session, "roistat", f"lead:{index}", {}, now=now, policy=outbox.RetryPolicy()
            )
    first = await outbox.QUEUE.claim(any_db, now=now, limit=1, lease=timedelta(minutes=5))
    second = await outbox.QUEUE.claim(any_db, now=now, limit=3, lease=timedelta(minutes=5))
    assert len(first) == 1 and len(second) == 3
    assert {row.id for row in first}.isdisjoint({row.id for row in second})


async def test_telegram_queue_depth_counts_by_lane_and_chat_kind(any_db: Database) -> None:
    """The /metrics figure of the send queue (PostgreSQL once refused its GROUP BY)."""
    from storage import telegram_queue

    async with any_db.session() as session:
        for chat_id in (-100123, -100123, 555):
            telegram_queue.enqueue(
                session, telegram_queue.Outgoing(target="chat", chat_id=chat_id, text="x")
            )
    depth = await telegram_queue.depth(any_db)
    assert sum(depth.values()) == 3
    assert {kind for _lane, kind in depth} == {"group", "private"}
    assert sum(n for (_lane, kind), n in depth.items() if kind == "group") == 2
