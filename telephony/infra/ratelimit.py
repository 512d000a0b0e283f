"""A small async sliding-window limiter: at most `limit` requests in any `period` seconds.

Upstreams such as Novofon answer 429 beyond their quota (100 requests/min); waiting our turn is
cheaper than being refused. The clock (telephony/infra/clock.py: its monotonic time and its
sleep) is injectable so tests need no real waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque

from telephony.infra.clock import SYSTEM_CLOCK, Clock


class RateLimiter:
    def __init__(
        self,
        limit: int,
        period: float = 60.0,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be ≥ 1 and period > 0")
        self.limit = limit
        self.period = period
        self._clock = clock
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
                now = self._clock.monotonic()
                self._forget_old(now)
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                pause = self._sent[0] + self.period - now
                waited += pause
                await self._clock.sleep(pause)

    def hold_off(self, seconds: float) -> None:
        """The upstream said 429: count the window as full for `seconds` from now."""
        now = self._clock.monotonic()
        until = now + seconds - self.period  # entries at `until` expire exactly `seconds` from now
        self._sent = deque([until] * self.limit)


class TokenBuckets:
    """Token buckets per key (a chat, an IP address, a /24 network): `rate` tokens a second up to
    `burst`. Non-blocking: `take()` says whether the key may go now, `wait_for()` how long until
    it may. Used where a caller decides itself what to do when a key is over budget (answer 429,
    send another chat's message first). Idle keys are forgotten once their bucket is full again,
    so memory follows the active keys, not every key ever seen.
    """

    def __init__(self, rate: float, burst: float, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst ≥ 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        # key → (tokens, since): the bucket held `tokens` at `since` and refills from then on;
        # `since` lies in the future during a cool-off.
        self._tokens: dict[object, tuple[float, float]] = {}

    def wait_for(self, key: object, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there for `key` (0 when they are now)."""
        now = self._clock.monotonic()
        tokens, since = self._tokens.get(key, (self.burst, now))
        start = max(now, since)
        level = min(self.burst, tokens + (start - since) * self.rate)
        return (start - now) + max(0.0, cost - level) / self.rate

    def take(self, key: object, cost: float = 1.0) -> bool:
        """Spend `cost` tokens of `key` if they are there now; False (nothing spent) otherwise."""
        now = self._clock.monotonic()
        tokens, since = self._tokens.get(key, (self.burst, now))
        if since > now:
            return False
        level = min(self.burst, tokens + (now - since) * self.rate)
        if level < cost:
            return False
        self._tokens[key] = (level - cost, now)
        if len(self._tokens) > 4096:
            self._forget_full(now)
        return True

    def hold(self, key: object, seconds: float) -> None:
        """Start `key`'s refill `seconds` later: a request taken before it went out counts from
        when the upstream got it (somewhere in its flight), so spacing never shrinks."""
        if key in self._tokens:
            tokens, since = self._tokens[key]
            self._tokens[key] = (tokens, since + seconds)

    def cool_off(self, key: object, seconds: float) -> None:
        """The upstream refused (429 retry_after): nothing for `key` for `seconds`, then an
        empty bucket that refills at the normal rate."""
        now = self._clock.monotonic()
        _, since = self._tokens.get(key, (0.0, now))
        self._tokens[key] = (0.0, max(since, now + seconds))

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, (tokens, since) in self._tokens.items()
            if since <= now and tokens + (now - since) * self.rate >= self.burst
        ]
        for key in full:
            del self._tokens[key]
