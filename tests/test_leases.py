"""Lease rows with a fencing epoch (storage/leases.py) and the per-process Leadership that
keeps them (bot/singletons.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.singletons import Leadership
from storage import leases
from storage.db import Database
from storage.types import utcnow

TTL = timedelta(seconds=5)


async def test_take_renew_expire_and_release(any_db: Database) -> None:
    now = utcnow()
    assert await leases.take(any_db, "sender", "a", TTL, now=now) == 1
    assert await leases.take(any_db, "sender", "a", TTL, now=now) == 1  # a renewal
    assert await leases.take(any_db, "sender", "b", TTL, now=now) is None  # held by a
    assert await leases.take(any_db, "other", "b", TTL, now=now) == 1  # names are separate

    later = now + TTL + timedelta(seconds=1)  # a stopped renewing: its row expired
    assert await leases.take(any_db, "sender", "b", TTL, now=later) == 2
    assert await leases.take(any_db, "sender", "a", TTL, now=later) is None
    assert not await leases.still_held(any_db, "sender", "a", 1)  # fenced off

    await leases.release(any_db, "sender", "b", 2)
    assert await leases.take(any_db, "sender", "a", TTL) == 3  # at once, no TTL to wait
    holder, epoch, _ = (await leases.holders(any_db))["sender"]
    assert (holder, epoch) == ("a", 3)
    assert await leases.still_held(any_db, "sender", "a", 3)


async def test_a_dead_holder_is_replaced_and_a_clean_stop_hands_over(any_db: Database) -> None:
    first = Leadership(any_db, holder="first", ttl=0.6)
    second = Leadership(any_db, holder="second", ttl=0.6)
    gained: list[str] = []
    taken = asyncio.Event()
    guard_1, guard_2 = first.guard("scheduler"), second.guard("scheduler")
    guard_2.on_gain(lambda: gained.append("second"))
    guard_2.on_gain(taken.set)

    await first.tick()
    await second.tick()
    assert guard_1.held() and not guard_2.held()

    # The first process "dies": it stops renewing (no release). The second keeps trying.
    renewing = asyncio.create_task(second.run())
    try:
        await asyncio.wait_for(taken.wait(), 5)
        assert guard_2.held()
        assert gained == ["second"]
        assert guard_2.epoch == 2
        assert not guard_1.held()  # its own trust ran out before the row did
    finally:
        await second.worker.stop(task=renewing)

    # A clean stop releases: the first takes the row back without waiting for it to expire.
    lifetime = second.lifetime()
    await anext(lifetime)
    await anext(lifetime, None)
    await first.tick()
    assert guard_1.held() and guard_1.epoch == 3
