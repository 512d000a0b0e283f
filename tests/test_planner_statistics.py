"""storage/planner_statistics.py: a queue table's statistics, refreshed at most so often."""

from __future__ import annotations

import logging

import pytest

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
