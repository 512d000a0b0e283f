"""The outbox on SQLite and PostgreSQL: exclusive claims, backoff, leases, dead rows, the CLI."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from storage.db import Database
from telephony.infra.clock import FakeClock
from telephony.leads.metrics import LeadMetrics
from telephony.leads.outbox import (
    Claimed,
    DeliveryError,
    OutboxWorker,
    RetryPolicy,
    claim,
    enqueue,
    fail,
    stats,
)
from tests.leads_harness import START

POLICY = RetryPolicy(base_delay=10, max_delay=1800, give_up_after=timedelta(hours=48))


class Recorder:
    """A sink that takes a moment per delivery, so that two workers overlap."""

    def __init__(self, deliveries: list[str], failing: set[str] | None = None) -> None:
        self.deliveries = deliveries
        self.failing = failing or set()

    async def deliver(self, item: Claimed) -> str | None:
        await asyncio.sleep(0.001)
        if item.key in self.failing:
            raise DeliveryError("upstream said no")
        self.deliveries.append(item.key)
        return "ok"


async def fill(db: Database, count: int, now: FakeClock) -> None:
    async with db.session() as session:
        for number in range(count):
            await enqueue(
                session, "test", f"k{number}", {"n": number}, now=now.now(), policy=POLICY
            )
        # The same key again is ignored: one row per (sink, key).
        assert await enqueue(session, "test", "k0", {}, now=now.now(), policy=POLICY) is None


async def test_two_workers_never_deliver_one_row_twice(any_db: Database) -> None:
    clock = FakeClock(START)
    await fill(any_db, 60, clock)
    deliveries: list[str] = []
    # Two engines: two connection pools, as two processes would have.
    other = Database(any_db.url)
    try:
        workers = [
            OutboxWorker(
                database,
                {"test": Recorder(deliveries)},
                clock=clock,
                policy=POLICY,
                metrics=LeadMetrics(),
                batch_size=7,
            )
            for database in (any_db, other)
        ]
        handled = await asyncio.gather(*(worker.drain() for worker in workers))
    finally:
        await other.dispose()
    assert sorted(deliveries) == sorted(f"k{n}" for n in range(60))
    assert sum(handled) == 60
    assert (await stats(any_db))["test"]["done"] == 60


async def test_concurrent_claims_split_the_rows(any_db: Database) -> None:
    clock = FakeClock(START)
    await fill(any_db, 30, clock)
    other = Database(any_db.url)
    try:
        batches = await asyncio.gather(
            *(
                claim(db, ["test"], now=clock.now(), limit=10, lease=timedelta(minutes=5))
                for db in (any_db, other, any_db, other)
            )
        )
    finally:
        await other.dispose()
    ids = [item.id for batch in batches for item in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_backoff_grows_with_jitter_then_gives_up(any_db: Database) -> None:
    clock = FakeClock(START)
    async with any_db.session() as session:
        await enqueue(session, "test", "k", {}, now=clock.now(), policy=POLICY)
    rng = random.Random(7)
    waits = []
    status = "pending"
    while status == "pending":
        [item] = await claim(any_db, ["test"], now=clock.now(), limit=1, lease=POLICY.lease)
        status = await fail(
            any_db, item, DeliveryError("down"), now=clock.now(), policy=POLICY, rng=rng
        )
        async with any_db.session() as session:
            from storage.leads_models import OutboxItem

            row = await session.get(OutboxItem, item.id)
            assert row is not None
        if status == "pending":
            wait = (row.next_attempt_at - clock.now()).total_seconds()
            ceiling = min(1800, 10 * 2 ** (item.attempts - 1))
            assert ceiling / 2 <= wait <= ceiling
            waits.append(wait)
            clock.advance(wait)
    assert row.status == "dead" and row.last_error == "down"
    assert clock.now() - START <= timedelta(hours=48)
    assert clock.now() - START > timedelta(hours=47)
    assert waits[:3] == sorted(waits[:3])  # growing while below the cap
    assert max(waits) <= 1800


async def test_a_lease_holder_that_lost_its_lease_cannot_finish(db: Database) -> None:
    clock = FakeClock(START)
    await fill(db, 1, clock)
    [stale] = await claim(db, ["test"], now=clock.now(), limit=1, lease=timedelta(seconds=30))
    clock.advance(31)
    [fresh] = await claim(db, ["test"], now=clock.now(), limit=1, lease=timedelta(seconds=30))
    assert fresh.id == stale.id and fresh.claim_token != stale.claim_token
    from telephony.leads.outbox import complete

    assert not await complete(db, stale, now=clock.now(), result="late")
    assert await complete(db, fresh, now=clock.now(), result="ok")


def test_cli_shows_dead_rows_and_retries_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TRUBKA_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0

    async def prepare() -> None:
        db = Database(url)
        clock = FakeClock(START)
        policy = RetryPolicy(give_up_after=timedelta(seconds=1))
        async with db.session() as session:
            await enqueue(session, "roistat", "lead:1", {}, now=clock.now(), policy=policy)
            await enqueue(session, "roistat", "lead:2", {}, now=clock.now(), policy=policy)
        [item, _] = await claim(db, ["roistat"], now=clock.now(), limit=2, lease=policy.lease)
        await fail(
            db,
            item,
            DeliveryError("HTTP 500"),
            now=clock.now(),
            policy=policy,
            rng=random.Random(1),
        )
        await db.dispose()

    asyncio.run(prepare())
    capsys.readouterr()
    assert main(["outbox", "--problems"]) == 0
    out = capsys.readouterr().out
    assert "pending" in out and "dead" in out
    [_header, line, *problems] = out.splitlines()
    assert line.split() == ["roistat", "0", "0", "1", "0", "1"]
    assert problems == [problems[0]] and "#1 roistat lead:1 dead" in problems[0]
    assert "error=HTTP 500" in problems[0]

    assert main(["outbox", "retry", "1"]) == 0
    assert "1 dead row(s) will be retried" in capsys.readouterr().out
    assert main(["outbox", "retry", "1"]) == 1  # nothing dead any more
    assert main(["outbox", "retry"]) == 2
    capsys.readouterr()
    main(["outbox"])
    assert capsys.readouterr().out.splitlines()[1].split() == ["roistat", "1", "0", "1", "0", "0"]


def test_a_bad_leads_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "trubka.toml").write_text("[leads]\ntargeted_seconds = -1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRUBKA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert main(["outbox", "retry", "--all-dead"]) == 2
    assert "leads.targeted_seconds" in capsys.readouterr().err
