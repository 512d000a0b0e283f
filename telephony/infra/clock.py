"""Time, injectable: the one `Clock` of the house. Tests move a fake clock instead of sleeping.

A clock tells wall time (`now`: an aware UTC datetime, for what is stored and compared with
stored times), monotonic time (`monotonic`: seconds, for budgets, windows and intervals) and
waits (`sleep`). Code where time decides behaviour takes a clock; `storage.types.utcnow` stays
only as the default of timestamp columns.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Protocol

from storage.types import utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that only moves when told to (tests, benches): `advance`, or a `sleep`, which
    moves it at once (and lets other tasks run) and is recorded in `sleeps`. Wall and
    monotonic time move together."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._monotonic = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds
        return self._now

    def set(self, moment: datetime) -> None:
        self._monotonic += (moment - self._now).total_seconds()
        self._now = moment


class SkippingClock:
    """Real time that skips its own waits (tests, benches of a whole app): `sleep` and
    `advance` move it forward at once. Unlike FakeClock it runs on between waits, so times
    stored by code that reads the real clock (column defaults) never lie ahead of it."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self.skipped)

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> datetime:
        self.skipped += seconds
        return self.now()
