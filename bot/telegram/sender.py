"""The send scheduler: stored deliveries go out by priority within Telegram's budgets.

Deliveries are a queue of the engine (storage.queue, through storage/telegram_queue.py): a pass
reads the unsettled rows, decides in memory which chat goes next and what goes with it (the pure
policy, bot/telegram/policy.py), and claims exactly the batch it chose (lease and token) before
any Bot API call; a batch it cannot claim is skipped this pass. A sender that died leaves its
rows claimed: their chat waits until the lease ends, then the next pass sends them. Sending and
settling a batch is bot/telegram/delivery.py (live edits bot/telegram/live.py, topics and cards
bot/telegram/topics.py); failed sends are retried by the engine's `RetryPolicy` (`Pacing`), a 429
is not a try. The budgets are enforced at one point, bot/telegram/admission.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot

from bot.telegram import policy
from bot.telegram.admission import Admission
from bot.telegram.budgets import Budgets
from bot.telegram.delivery import Delivery
from bot.telegram.status import SendStatus
from bot.telegram.topics import Topics
from storage import telegram_queue as queue
from storage.db import Database
from storage.queue import RetryPolicy
from storage.telegram_models import TelegramDelivery
from storage.telegram_queue import ESCALATE, MAX_ATTEMPTS
from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.worker import Worker

log = logging.getLogger(__name__)

BATCH = 150  # oldest rows a pass reads (plus alerts past them: storage/telegram_queue.py)
SENDS_PER_PASS = 10  # then look at the table again: a new ringing call must not wait long
MAX_BACKOFF = 600.0
IDLE_POLL = 5.0  # seconds between looks at the table when nobody wakes the sender
DEPTH_EVERY = 1.0  # seconds between refreshes of the queue depth gauge
IDLE_PASS_GAP = 0.1  # seconds: wakes right after a pass that sent nothing wait this long
BACKLOG_ROWS = 100  # … when the pass read at least this many waiting deliveries
MAX_PASS_GAP = 1.0  # … or until the next send may go (a budget), at most this long
BUSY_PASS_GAP = 0.1  # seconds between passes that send over such a backlog (urgent wakes: none)
MIN_WAIT = 0.001  # seconds `drain` waits at least after a pass that sent nothing


@dataclass
class Pacing:
    """Retry timing after a failed send, as the queue engine's `RetryPolicy`: the first retry
    after ~`retry_base` seconds, then twice as long each time (with jitter) up to MAX_BACKOFF;
    dead after MAX_ATTEMPTS tries. `lease`: how long a claimed batch is this sender's (longer
    than any send; a crashed sender's rows go out once it has passed)."""

    retry_base: float = 2.0
    lease: float = 60.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_delay=self.retry_base,
            max_delay=MAX_BACKOFF,
            max_attempts=MAX_ATTEMPTS,
            lease=timedelta(seconds=self.lease),
        )


class Sender:
    def __init__(
        self,
        bot: Bot,
        db: Database,
        *,
        managers_chat_id: int | None,
        zone: ZoneInfo,
        pacing: Pacing | None = None,
        budgets: Budgets | None = None,
        status: SendStatus | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.bot = bot
        self.db = db
        self.managers_chat_id = managers_chat_id
        self.zone = zone
        self.clock = clock or (budgets.clock if budgets is not None else SYSTEM_CLOCK)
        self.pacing = pacing or Pacing()
        self.budgets = budgets or Budgets(clock=self.clock)
        self.status = status or SendStatus()
        self._lock = asyncio.Lock()
        self.worker = Worker(
            "telegram-sender", self._step, idle_poll=IDLE_POLL, error_pause=IDLE_POLL
        )
        self._stopping = False
        # Several processes: only the holder of the "telegram-sender" lease sends (bot.singletons).
        self.gate: Callable[[], bool] = lambda: True
        self._depth_at = float("-inf")
        self._quiet_until = float("-inf")  # wakes before this wait (an idle pass over a backlog)
        self._candidates = 0  # deliveries the last pass read
        self._sent_last = 0  # batches the last pass sent
        self.topics = Topics(
            bot,
            db,
            managers_chat_id=managers_chat_id,
            zone=zone,
            status=self.status,
            clock=self.clock,
            wake=self.wake,
        )
        self.delivery = Delivery(
            bot,
            db,
            topics=self.topics,
            budgets=self.budgets,
            status=self.status,
            clock=self.clock,
            policy=lambda: self.pacing.policy(),
        )
        bot.session.middleware(Admission(self.budgets, self.status, self.clock))

    # --- the managers' group topics (handlers/telegram/context.py `Topics`) ----------------

    async def ensure_topic(self, client_id: int) -> int | None:
        return await self.topics.ensure_topic(client_id)

    async def refresh(self, client_id: int) -> None:
        await self.topics.refresh(client_id)

    async def retire(self, thread_id: int, client_id: int) -> None:
        await self.topics.retire(thread_id, client_id)

    # --- the loop ------------------------------------------------------------------------

    def wake(self, *, urgent: bool = False, alerts: Mapping[int, int] | None = None) -> None:
        """Look at the queue soon; `urgent` (a ringing or missed call was queued): at once,
        even while a backlog's wakes are being coalesced. With `alerts` (each alert's chat:
        the fewest sends it takes there), not before one of them may go: under a call backlog
        behind the group's budget nearly every applied slice queues an alert, and a pass for
        each read BATCH rows again to send nothing."""
        if urgent:
            self._quiet_until = self._quiet_for(alerts or {})
        self.worker.wake()

    def _quiet_for(self, alerts: Mapping[int, int]) -> float:
        """Until when an urgent wake may still wait: until the first of `alerts` fits its
        chat's budget (-inf: one fits now, or the alerts are not known)."""
        budgets = self.budgets
        waits = [
            budgets.wait_for(chat, min(sends, policy.chat_burst(chat, budgets)))
            for chat, sends in alerts.items()
        ]
        if not waits or min(waits) <= 0:
            return float("-inf")
        return min(self._quiet_until, self.clock.monotonic() + min(waits))

    async def stop(self, task: asyncio.Task[None], grace: float = 5.0) -> None:
        """End `run()` between two sends (a cancel mid-query could leak a DB connection)."""
        self._stopping = True
        await self.worker.stop(grace, task)

    async def drain(self, *, include_waiting: bool = False) -> None:
        """Send everything that is due; with `include_waiting`, also wait out 429s, budgets
        and backoffs until nothing but scheduled escalations is left (tests, shutdown)."""
        while True:
            next_due = await self._pass(include_scheduled=False)
            if next_due is None:
                return
            delay = next_due - self.clock.monotonic()
            if not self._sent_last:
                # Nothing went: whatever is next is due later, if only by a rounding error (a
                # budget short by 1e-13 token); on a clock that moves only when slept on, it
                # would never come otherwise.
                delay = max(delay, MIN_WAIT)
            if delay > 0 and not include_waiting:
                return
            if delay > 0:
                await self.clock.sleep(delay)

    async def run(self) -> None:
        """The background loop (the one worker runner): send, then sleep until woken or until
        the next send is due."""
        self.status.loop_running(True)
        try:
            await self.worker.run()
        finally:
            self.status.loop_running(False, stopping=self._stopping)

    async def _step(self) -> float | None:
        """One pass; seconds until the next is due (None: nothing pending, or not our lease).

        After a pass that sent nothing (every chat waits for its budget or a backoff) over a
        backlog (at least BACKLOG_ROWS waiting), wakes are coalesced until the next send may go
        (at least IDLE_PASS_GAP, at most MAX_PASS_GAP): under a call backlog each applied slice
        wakes the sender, and a pass reads up to BATCH rows — a pass per wake cost more CPU
        than applying the pushes. A short queue is looked at on every wake."""
        if not self.gate():
            return None
        quiet = self._quiet_until - self.clock.monotonic()
        if quiet > 0:
            return quiet
        next_due = await self._pass()
        now = self.clock.monotonic()
        sent = next_due is not None and next_due <= now
        self._quiet_until = float("-inf")
        if self._candidates >= BACKLOG_ROWS and not sent:
            wait = IDLE_PASS_GAP if next_due is None else next_due - now
            self._quiet_until = now + min(max(wait, IDLE_PASS_GAP), MAX_PASS_GAP)
        elif self._candidates >= BACKLOG_ROWS:
            # Over a backlog a pass that sent goes again after a short gap, not at every wake:
            # SENDS_PER_PASS a gap is still more than Telegram's 30 a second.
            self._quiet_until = now + BUSY_PASS_GAP
        return None if next_due is None else max(0.0, next_due - now)

    async def _pass(self, *, include_scheduled: bool = True) -> float | None:
        """Send up to SENDS_PER_PASS messages, most urgent chat first. Returns when
        (monotonic) the next pass is due, or None when nothing is pending."""
        async with self._lock:
            try:
                rows = await queue.candidates(self.db, BATCH, now=self.clock.now())
                self._candidates = len(rows)
                now, mono = self.clock.now(), self.clock.monotonic()
                fifos: dict[tuple[str, int], list[TelegramDelivery]] = {}
                held: set[tuple[str, int]] = set()
                next_due: list[float] = []
                for row in rows:
                    if queue.held(row, now):
                        # Another sender is sending it (or died doing so): its chat waits, in
                        # order, until the claim is settled or its lease ends.
                        assert row.lease_until is not None
                        held.add(policy.fifo_key(row))
                        next_due.append(mono + (row.lease_until - now).total_seconds())
                        continue
                    if row.method == ESCALATE and row.next_attempt_at > now:
                        # Scheduled for later, not waiting in its chat's line.
                        if include_scheduled:
                            next_due.append(mono + (row.next_attempt_at - now).total_seconds())
                        continue
                    fifos.setdefault(policy.fifo_key(row), []).append(row)
                for key in held:
                    fifos.pop(key, None)
                await self.topics.load({key[1] for key in fifos if key[0] == "topic"})
                sends = self._sent_last = 0
                while fifos and sends < SENDS_PER_PASS and not self._stopping:
                    chosen = policy.most_urgent(
                        fifos,
                        budgets=self.budgets,
                        now=self.clock.now(),
                        mono=self.clock.monotonic(),
                        ready=self.topics.ready,
                        alerted=self.delivery.alerted,
                        next_due=next_due,
                    )
                    if chosen is None:
                        break
                    key, batch = chosen
                    batch = await queue.claim(
                        self.db, batch, lease=self.pacing.policy().lease, now=self.clock.now()
                    )
                    if not batch:  # settled or claimed by another sender meanwhile: skip the chat
                        del fifos[key]
                        continue
                    sends = self._sent_last = sends + 1
                    settled = await self.delivery.deliver(batch)
                    if settled is None:  # back in line, due later: its chat waits
                        del fifos[key]
                        continue
                    done = {r.id for r in settled}
                    rest = [r for r in fifos[key] if r.id not in done]
                    if rest:
                        fifos[key] = rest
                    else:
                        del fifos[key]
                if self.clock.monotonic() - self._depth_at >= DEPTH_EVERY:
                    self._depth_at = self.clock.monotonic()
                    self.status.queue_depth(await queue.depth(self.db))
                if self._stopping:
                    return None
                if sends:
                    # Look again: more may be due, new rows may be queued.
                    return self.clock.monotonic()
                return min(next_due) if next_due else None
            finally:
                self.topics.unload()  # between passes `topic` reads the table
