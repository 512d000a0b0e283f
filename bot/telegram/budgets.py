"""Telegram's send budgets as token buckets (telephony/infra/ratelimit.py): one bucket per group
(≈20 a minute, edits included), one per private chat (≈1 a second) and one for the whole bot
(≈30 a second). Bursts are allowed within a budget; a 429 cools the whole chat off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.ratelimit import TokenBuckets

_ALL = "all"


@dataclass(frozen=True)
class BudgetRates:
    """Per-minute group limit, its burst, the private chat and bot-wide per-second limits.

    The group bucket refills at (limit − burst) a minute so that no 60 s window ever holds more
    than `group_per_minute` sends. `time_scale` < 1 shrinks every window (tests and the bench
    run against a fake Bot API scaled the same way). A rate of 0 means unlimited.
    """

    group_per_minute: float = 20
    group_burst: float = 5
    chat_per_second: float = 1
    chat_burst: float = 3
    global_per_second: float = 30
    time_scale: float = 1.0

    def with_intervals(
        self, group_interval: float | None, chat_interval: float | None
    ) -> BudgetRates:
        """The older settings (seconds between two sends; 0 = unpaced) as budgets of burst 1."""
        rates = self
        # Intervals are real seconds: undo the scale the rates get in `Budgets`.
        scale = self.time_scale
        if group_interval is not None:
            per_minute = 60 * scale / group_interval + 1 if group_interval > 0 else 0
            rates = replace(rates, group_per_minute=per_minute, group_burst=1)
        if chat_interval is not None:
            per_second = scale / chat_interval if chat_interval > 0 else 0
            rates = replace(rates, chat_per_second=per_second, chat_burst=1)
        return rates


_UNLIMITED = 1e9


def _buckets(per_second: float, burst: float, clock: Clock) -> TokenBuckets:
    """A rate of 0 is unlimited (still a bucket, so a 429 can cool the chat off)."""
    if per_second <= 0:
        return TokenBuckets(_UNLIMITED, _UNLIMITED, clock=clock)
    return TokenBuckets(per_second, max(1.0, burst), clock=clock)


class Budgets:
    def __init__(self, rates: BudgetRates | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rates = rates or BudgetRates()
        self.clock = clock
        scale = self.rates.time_scale
        per_minute, burst = self.rates.group_per_minute, self.rates.group_burst
        # Burst plus a minute's refill stays within the per-minute limit.
        group_rate = max(per_minute - burst, 1.0) / 60 if per_minute > 0 else 0.0
        self._group = _buckets(group_rate / scale, burst, clock)
        self._chat = _buckets(self.rates.chat_per_second / scale, self.rates.chat_burst, clock)
        self._all = _buckets(
            self.rates.global_per_second / scale, self.rates.global_per_second, clock
        )

    def _bucket(self, chat_id: int) -> TokenBuckets:
        return self._group if chat_id < 0 else self._chat

    def wait_for(self, chat_id: int, cost: float = 1.0) -> float:
        """Seconds until `cost` more sends to `chat_id` fit its chat's and the bot's budget."""
        return max(self._bucket(chat_id).wait_for(chat_id, cost), self._all.wait_for(_ALL, cost))

    def take(self, chat_id: int) -> bool:
        """Spend one send of `chat_id` if both budgets allow it now."""
        if self.wait_for(chat_id) > 0:
            return False
        self._bucket(chat_id).take(chat_id)
        self._all.take(_ALL)
        return True

    async def acquire(self, chat_id: int) -> None:
        """Wait for the budget (sends made outside the queue: topic titles, cards)."""
        while True:
            wait = self.wait_for(chat_id)
            if wait <= 0 and self.take(chat_id):
                return
            await self.clock.sleep(max(0.001, wait))

    def landed(self, chat_id: int, flight: float) -> None:
        """A send took `flight` seconds: its tokens count from its end (Telegram counts them
        on arrival), so two sends never land closer than the budget allows."""
        self._bucket(chat_id).hold(chat_id, flight)
        self._all.hold(_ALL, flight)

    def spread(self, chat_id: int) -> float:
        """Seconds between two alert messages to one private chat: its burst spread over a
        second, so alerts arriving in a surge go merged in a few messages, not the first few
        alone and the rest a whole refill later."""
        rates = self.rates
        if chat_id < 0 or rates.chat_per_second <= 0:
            return 0.0
        return rates.time_scale / (rates.chat_per_second * max(1.0, rates.chat_burst))

    def cool_off(self, chat_id: int, retry_after: float) -> None:
        """Telegram said 429: nothing more to that chat for `retry_after` (Telegram) seconds."""
        self._bucket(chat_id).cool_off(chat_id, retry_after * self.rates.time_scale)
