"""storage/planner_statistics.py: a queue table's statistics, refreshed at most so often."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.planner_statistics import PlannerStatistics


async def test_a_refresh_runs_at_most_once_in_its_interval(postgres_url: str) -> None:
    db = Database(postgres_url)
    now = [1000.0]
    statistics = PlannerStatistics(db, "call_events", every=60.0, clock=lambda: now[0])
    try:
        assert await statistics.refresh()
        now[0] += 59.0
        assert not await statistics.refresh()
        now[0] += 1.0
        assert await statistics.refresh()
    finally:
        await db.dispose()


async def test_a_refresh_that_fails_is_logged_and_never_raises(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storage.planner_statistics")
    db = Database(postgres_url)
    try:
        statistics = PlannerStatistics(db, "no_such_table")
        assert not await statistics.refresh()
        assert "could not refresh the statistics of no_such_table" in caplog.text
        assert not await statistics.refresh()  # not tried again at once
        assert caplog.text.count("could not refresh") == 1
    finally:
        await db.dispose()


async def test_a_refresh_gives_up_rather_than_wait_behind_a_vacuum(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A VACUUM holds the lock ANALYZE needs for as long as it runs: the applier does not wait
    for it, and the connection goes back to the pool without the refresh's lock timeout."""
    caplog.set_level(logging.WARNING, logger="storage.planner_statistics")
    db = Database(postgres_url)
    try:
        async with db.session() as vacuum:  # holds what a VACUUM of the table holds
            await vacuum.exec(text("LOCK TABLE call_events IN SHARE UPDATE EXCLUSIVE MODE"))
            async with asyncio.timeout(10):  # without a lock timeout: until the VACUUM ends
                assert not await PlannerStatistics(db, "call_events").refresh()
            await vacuum.rollback()
        assert "lock timeout" in caplog.text
        async with db.autocommit() as connection:
            timeout = await connection.execute(text("SHOW lock_timeout"))
            assert timeout.scalar_one() == "0"
    finally:
        await db.dispose()
