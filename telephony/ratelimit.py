"""A small async sliding-window limiter: at most `limit` requests in any `period` seconds.

Upstreams such as Novofon answer 429 beyond their quota (100 requests/min); waiting our turn is
cheaper than being refused. The clock and the sleep are injectable so tests need no real waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be ≥ 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    def _forget_old(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()

    async def acquire(self) -> float:
        """Wait until one more request fits the window; returns the seconds waited."""
        waited = 0.0
        async with self._lock:  # one waiter at a time keeps the order fair (first come, first go)
            while True:
                now = self._clock()
                self._forget_old(now)
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                pause = self._sent[0] + self.period - now
                waited += pause
                await self._sleep(pause)

    def hold_off(self, seconds: float) -> None:
        """The upstream said 429: count the window as full for `seconds` from now."""
        now = self._clock()
        until = now + seconds - self.period  # entries at `until` expire exactly `seconds` from now
        self._sent = deque([until] * self.limit)
