"""The send scheduler: stored deliveries go out by priority within Telegram's budgets.

Every chat (a client's topic, a private chat) is a FIFO of its pending deliveries, so one
chat's messages never overtake each other. Among chats the one holding the most urgent lane
goes first (a ringing or missed call, then people's messages, then live call lines, then cards),
as long as its chat's token bucket and the bot's global bucket allow (bot/telegram/budgets.py).
Pending lines of one call's live message collapse into one edit to its latest state; alerts
waiting for one manager's private chat go as one message. A 429 cools the whole chat off.

Deliveries are a queue of the engine (storage.queue, through storage/telegram_queue.py): a pass
reads the unsettled rows, decides here in memory, and claims exactly the batch it chose (lease
and token) before any Bot API call; a batch it cannot claim is skipped this pass. A sender that
died leaves its rows claimed: their chat waits until the lease ends, then the next pass sends
them. Failed sends are retried by the engine's `RetryPolicy` (`Pacing`); a 429 is not a try.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import delete
from sqlmodel import col

from bot.telegram.budgets import Budgets
from bot.telegram.render import undelivered
from bot.telegram.status import SendStatus
from handlers.telegram.cards import render_card
from handlers.telegram.texts import merged_away, topic_link, topic_title
from storage import telegram_queue as queue
from storage.db import Database
from storage.models import Client
from storage.queue import RetryPolicy, Status
from storage.telegram_models import TelegramDelivery, TelegramTopic
from storage.telegram_queue import ALERT, CARD, ESCALATE, MAX_ATTEMPTS, Outgoing
from storage.types import utcnow
from telephony.infra.worker import Worker

log = logging.getLogger(__name__)

BATCH = 500
SENDS_PER_PASS = 10  # then look at the table again: a new ringing call must not wait long
MAX_BACKOFF = 600.0
IDLE_POLL = 5.0  # seconds between looks at the table when nobody wakes the sender
MAX_TEXT = 4096
MAX_MERGED = 20  # alerts merged into one private message
DEPTH_EVERY = 1.0  # seconds between refreshes of the queue depth gauge
IDLE_PASS_GAP = 0.1  # seconds: wakes right after a pass that sent nothing wait this long
BACKLOG_ROWS = 100  # … when the pass read at least this many waiting deliveries
MAX_PASS_GAP = 1.0  # … or until the next send may go (a budget), at most this long
# Refusals about the message itself: sending it again cannot help.
_POISON = ("can't parse entities", "message is too long", "text must be non-empty", "button_")
_MESSAGE_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
_THREAD_GONE = ("thread not found", "topic_deleted", "topic deleted", "topic_closed")
T = TypeVar("T")


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


class TopicGone(Exception):
    """The client's topic was deleted by someone: create it again and resend."""


class NotSentYet(Exception):
    """A send that cannot happen now for a reason of ours (worth retrying later)."""


def _fifo(row: TelegramDelivery) -> tuple[str, int]:
    if row.target == "topic" and row.client_id is not None:
        return "topic", row.client_id
    return "chat", row.chat_id


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
    ) -> None:
        self.bot = bot
        self.db = db
        self.managers_chat_id = managers_chat_id
        self.zone = zone
        self.pacing = pacing or Pacing()
        self.budgets = budgets or Budgets()
        self.status = status or SendStatus()
        self._lock = asyncio.Lock()
        self._topic_lock = asyncio.Lock()
        self.worker = Worker(
            "telegram-sender", self._step, idle_poll=IDLE_POLL, error_pause=IDLE_POLL
        )
        self._stopping = False
        # Several processes: only the holder of the "telegram-sender" lease sends (bot.singletons).
        self.gate: Callable[[], bool] = lambda: True
        self._depth_at = float("-inf")
        self._quiet_until = float("-inf")  # wakes before this wait (an idle pass over a backlog)
        self._candidates = 0  # deliveries the last pass read
        self._rng = random.Random()
        self._alerted: dict[int, float] = {}  # private chat → when it last got an alert
        # Clients whose topic and card stand (read each pass): a send there is one call, not
        # three (topic, card, message), so a delivery waits for as many tokens as it needs
        # instead of blocking the pass (and other chats) halfway.
        self._ready: set[int] = set()
        # The topics of the pass's clients, read once per pass rather than once per send (the
        # pass's own changes kept in it; a claim refreshes each row's client_id, so a merge of
        # two clients meanwhile is seen).
        self._topics: dict[int, TelegramTopic] = {}
        bot.session.middleware(Budgeted(self))

    # --- one Bot API call within the budget -------------------------------------------------

    async def _api(self, chat_id: int, call: Callable[[], Awaitable[T]]) -> T:
        """The budget is taken (and a 429 cools the chat off) in `Budgeted`, for every call."""
        try:
            result = await call()
        except TelegramUnauthorizedError:
            self.status.token_refused(True)
            raise
        self.status.token_refused(False)
        return result

    # --- the managers' group topics -------------------------------------------------------

    async def ensure_topic(self, client_id: int) -> int | None:
        topic = await self._topic(client_id)
        if topic is None:
            return None
        try:
            await self._ensure_card(topic)
        except TelegramAPIError as exc:  # the queue sends the card before the next message
            log.warning("card for client %s not sent yet: %s", client_id, exc)
        return topic.message_thread_id

    async def refresh(self, client_id: int) -> None:
        """Queue a redraw of the client's topic title and card (the last lane)."""
        if self.managers_chat_id is None:
            return
        async with self.db.session() as session:
            queue.enqueue(
                session,
                Outgoing(
                    target="topic",
                    chat_id=self.managers_chat_id,
                    client_id=client_id,
                    method="card",
                    lane=CARD,
                ),
            )
        self.wake()

    async def _redraw(self, row: TelegramDelivery) -> None:
        """Best effort: a failure here leaves the old title or card, nothing else."""
        async with self.db.session() as session:
            topic = await session.get(TelegramTopic, row.client_id)
            client = await session.get(Client, row.client_id)
            if topic is None or client is None:
                return
            text, keyboard = await render_card(session, client, self.zone)
        try:
            await self._api(
                topic.chat_id,
                lambda: self.bot.edit_forum_topic(
                    topic.chat_id, topic.message_thread_id, name=topic_title(client)
                ),
            )
            if topic.card_message_id:
                card_id = topic.card_message_id
                await self._api(
                    topic.chat_id,
                    lambda: self.bot.edit_message_text(
                        text,
                        chat_id=topic.chat_id,
                        message_id=card_id,
                        parse_mode="HTML",
                        reply_markup=keyboard,
                    ),
                )
        except TelegramRetryAfter:
            raise
        except TelegramAPIError as exc:
            log.info("refreshing the topic of client %s: %s", row.client_id, exc)

    async def retire(self, thread_id: int, client_id: int) -> None:
        """Best effort, like `refresh`: the old topic only loses its pointer if this fails."""
        chat_id = self.managers_chat_id
        current = await self.ensure_topic(client_id)
        if chat_id is None or current is None or current == thread_id:
            return
        try:
            await self._api(
                chat_id,
                lambda: self.bot.send_message(
                    chat_id,
                    merged_away(topic_link(chat_id, current)),
                    message_thread_id=thread_id,
                    disable_notification=True,
                ),
            )
            await self._api(chat_id, lambda: self.bot.close_forum_topic(chat_id, thread_id))
        except TelegramAPIError as exc:
            log.info("retiring topic %s: %s", thread_id, exc)

    async def _topic(self, client_id: int) -> TelegramTopic | None:
        """The client's topic, created when missing (its card is sent by `_ensure_card`)."""
        if self.managers_chat_id is None:
            return None
        chat_id = self.managers_chat_id
        async with self._topic_lock:
            topic = self._topics.get(client_id)
            if topic is not None:
                return topic
            async with self.db.read() as session:
                topic = await session.get(TelegramTopic, client_id)
                client = None if topic is not None else await session.get(Client, client_id)
            if topic is not None or client is None:
                return topic
            created = await self._api(
                chat_id, lambda: self.bot.create_forum_topic(chat_id, topic_title(client))
            )
            topic = TelegramTopic(
                client_id=client_id,
                chat_id=chat_id,
                message_thread_id=created.message_thread_id,
                created_at=utcnow(),
            )
            async with self.db.session() as session:
                session.add(topic)
            self._topics[client_id] = topic
            return topic

    async def _ensure_card(self, topic: TelegramTopic) -> None:
        """The client card opens the topic: sent before anything else goes into it.

        A 429 or a network error propagates, so the delivery waiting behind it is postponed and
        the card is tried again first. A refused card (400) is given up (0) and logged.
        """
        if topic.card_message_id is not None:
            return
        async with self._topic_lock:
            await self._send_card(topic)

    async def _send_card(self, topic: TelegramTopic) -> None:
        async with self.db.session() as session:
            stored = await session.get(TelegramTopic, topic.client_id)
            if stored is not None and stored.card_message_id is not None:
                topic.card_message_id = stored.card_message_id
                return  # sent meanwhile
            client = await session.get(Client, topic.client_id)
            if client is None:
                return
            text, keyboard = await render_card(session, client, self.zone)
        try:
            message = await self._api(
                topic.chat_id,
                lambda: self.bot.send_message(
                    topic.chat_id,
                    text,
                    message_thread_id=topic.message_thread_id,
                    parse_mode="HTML",
                    reply_markup=keyboard,
                    disable_notification=True,
                ),
            )
            topic.card_message_id = message.message_id
        except TelegramBadRequest as exc:
            if any(s in exc.message.lower() for s in _THREAD_GONE):
                raise
            log.warning("card for client %s refused: %s", topic.client_id, exc.message)
            topic.card_message_id = 0
        async with self.db.session() as session:
            session.add(topic)

    async def _forget_topic(self, client_id: int, thread_id: int) -> None:
        known = self._topics.get(client_id)
        if known is not None and known.message_thread_id == thread_id:
            del self._topics[client_id]
        async with self.db.session() as session:
            await session.exec(
                delete(TelegramTopic).where(
                    col(TelegramTopic.client_id) == client_id,
                    col(TelegramTopic.message_thread_id) == thread_id,
                )
            )

    # --- the loop ------------------------------------------------------------------------

    def wake(self) -> None:
        self.worker.wake()

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
            delay = next_due - time.monotonic()
            if delay > 0 and not include_waiting:
                return
            if delay > 0:
                await asyncio.sleep(delay)

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
        quiet = self._quiet_until - time.monotonic()
        if quiet > 0:
            return quiet
        next_due = await self._pass()
        now = time.monotonic()
        sent = next_due is not None and next_due <= now
        self._quiet_until = float("-inf")
        if self._candidates >= BACKLOG_ROWS and not sent:
            wait = IDLE_PASS_GAP if next_due is None else next_due - now
            self._quiet_until = now + min(max(wait, IDLE_PASS_GAP), MAX_PASS_GAP)
        return None if next_due is None else max(0.0, next_due - now)

    async def _pass(self, *, include_scheduled: bool = True) -> float | None:
        """Send up to SENDS_PER_PASS messages, most urgent chat first. Returns when
        (monotonic) the next pass is due, or None when nothing is pending."""
        async with self._lock:
            try:
                rows = await queue.candidates(self.db, BATCH)
                self._candidates = len(rows)
                now, mono = utcnow(), time.monotonic()
                fifos: dict[tuple[str, int], list[TelegramDelivery]] = {}
                held: set[tuple[str, int]] = set()
                next_due: list[float] = []
                for row in rows:
                    if queue.held(row, now):
                        # Another sender is sending it (or died doing so): its chat waits, in
                        # order, until the claim is settled or its lease ends.
                        assert row.lease_until is not None
                        held.add(_fifo(row))
                        next_due.append(mono + (row.lease_until - now).total_seconds())
                        continue
                    if row.method == ESCALATE and row.next_attempt_at > now:
                        # Scheduled for later, not waiting in its chat's line.
                        if include_scheduled:
                            next_due.append(mono + (row.next_attempt_at - now).total_seconds())
                        continue
                    fifos.setdefault(_fifo(row), []).append(row)
                for key in held:
                    fifos.pop(key, None)
                clients = {key[1] for key in fifos if key[0] == "topic"}
                self._topics = await queue.topics(self.db, clients)
                self._ready = {c for c, t in self._topics.items() if t.card_message_id is not None}
                sends = 0
                while fifos and sends < SENDS_PER_PASS and not self._stopping:
                    chosen = self._most_urgent(fifos, next_due)
                    if chosen is None:
                        break
                    key, batch = chosen
                    batch = await queue.claim(self.db, batch, lease=self.pacing.policy().lease)
                    if not batch:  # settled or claimed by another sender meanwhile: skip the chat
                        del fifos[key]
                        continue
                    sends += 1
                    settled = await self._deliver(batch)
                    if settled is None:  # back in line, due later: its chat waits
                        del fifos[key]
                        continue
                    done = {r.id for r in settled}
                    rest = [r for r in fifos[key] if r.id not in done]
                    if rest:
                        fifos[key] = rest
                    else:
                        del fifos[key]
                if time.monotonic() - self._depth_at >= DEPTH_EVERY:
                    self._depth_at = time.monotonic()
                    self.status.queue_depth(await queue.depth(self.db))
                if self._stopping:
                    return None
                if sends:
                    return time.monotonic()  # look again: more may be due, new rows may be queued
                return min(next_due) if next_due else None
            finally:
                self._topics = {}  # between passes `_topic` reads the table

    def _most_urgent(
        self, fifos: dict[tuple[str, int], list[TelegramDelivery]], next_due: list[float]
    ) -> tuple[tuple[str, int], list[TelegramDelivery]] | None:
        """The chat holding the most urgent lane whose head may go now, with what goes at once."""
        now, mono = utcnow(), time.monotonic()
        saving: set[int] = set()  # chats whose budget a more urgent line is waiting for
        for key, fifo in sorted(
            fifos.items(), key=lambda kv: (min(r.lane for r in kv[1]), kv[1][0].id or 0)
        ):
            head = fifo[0]
            due_in = (head.next_attempt_at - now).total_seconds()
            if due_in > 0:  # a backoff: this line waits, it does not hold the chat's budget
                next_due.append(mono + due_in)
                continue
            if head.chat_id in saving:
                continue
            budget = self.budgets.wait_for(head.chat_id, min(self._cost(head), self._burst(head)))
            if budget > 0:
                saving.add(head.chat_id)  # less urgent lines must not spend what this one needs
            wait = budget
            if head.lane == ALERT and head.target == "chat":
                last = self._alerted.get(head.chat_id, float("-inf"))
                wait = max(wait, last + self.budgets.spread(head.chat_id) - mono)
            if wait > 0:
                next_due.append(mono + wait)
                continue
            return key, self._together(fifo)
        return None

    def _cost(self, row: TelegramDelivery) -> int:
        """Bot API calls the delivery makes: a topic not known to stand may need creating and
        its card sending first; a card redraw edits the title and the card."""
        if row.target != "topic":
            return 1
        extra = 0 if row.client_id in self._ready else 2
        return extra + (2 if row.method == "card" else 1)

    def _burst(self, row: TelegramDelivery) -> float:
        rates = self.budgets.rates
        return rates.group_burst if row.chat_id < 0 else rates.chat_burst

    @staticmethod
    def _together(fifo: list[TelegramDelivery]) -> list[TelegramDelivery]:
        """The head and what goes in the same message: the call's next live lines (one edit to
        the latest state), or more alerts waiting for the same private chat."""
        head = fifo[0]
        batch = [head]
        size = len(head.text)
        for row in fifo[1:]:
            size += len(row.text) + 2
            if (head.method == "live" and row.method == "live" and row.call_id == head.call_id) or (
                head.target == "chat"
                and head.lane == ALERT
                and row.lane == ALERT
                and row.method in ("send", ESCALATE)
                and head.method in ("send", ESCALATE)
                and len(batch) < MAX_MERGED
                and size <= MAX_TEXT
            ):
                batch.append(row)
            else:
                break
        return batch

    async def _deliver(self, claimed: list[TelegramDelivery]) -> list[TelegramDelivery] | None:
        """Send one claimed batch and settle each of its rows with the claim's token.

        Returns the rows settled (sent, failed for good, dropped), or None when the head is
        back in line and due later (a 429's wait, a retry), so its chat waits. Rows behind a
        head that failed are handed back unsent (not a try) and keep their place in line."""
        settled: list[TelegramDelivery] = []
        batch = claimed
        row = batch[0]
        waits = False
        try:
            batch, settled = await self._still_needed(batch)
            if not batch:
                return settled
            row = batch[0]
            for _ in range(2):  # a second try after re-creating a deleted topic
                try:
                    message_id = await self._send(batch)
                except TopicGone:
                    continue
                if await queue.sent(self.db, batch, message_id) < len(batch):
                    log.warning("telegram delivery %s: sent after its claim passed on", row.id)
                self.status.delivered("sent", len(batch))
                if row.lane == ALERT and row.target == "chat":
                    self._alerted[row.chat_id] = time.monotonic()
                return settled + batch
            raise NotSentYet("the topic was deleted again")
        except TelegramRetryAfter as exc:
            # The chat is cooled off by `_api`; the batch waits as long (not a failed attempt).
            seconds = exc.retry_after * self.budgets.rates.time_scale
            due = utcnow() + timedelta(seconds=seconds)
            await queue.release(self.db, batch, due=due, error=exc.message)
            return None
        except TelegramForbiddenError as exc:
            if row.target == "chat":  # the person blocked the bot: nothing will get through
                await self._fail(row, exc.message)
                if row.lane != ALERT:  # a client, not a manager's own alert
                    await self._tell_managers(row, exc.message)
            else:  # the bot lost its rights in the managers' group: an admin can fix that
                waits = await self._retry_later(row, exc)
        except TelegramBadRequest as exc:
            if row.target == "topic" and not any(s in exc.message.lower() for s in _POISON):
                # The managers' group refuses (topics off, no rights, wrong id): an admin fixes
                # the group and the notes go out then.
                log.warning("the managers' group refused a send: %s", exc.message)
                waits = await self._retry_later(row, exc)
            else:
                await self._fail(row, exc.message)
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            # A wrong token or API URL: settings get fixed, the messages should then go out.
            waits = await self._retry_later(row, exc)
        except (TelegramAPIError, NotSentYet, OSError, TimeoutError) as exc:
            waits = await self._retry_later(row, exc)
        # The head is settled or back in line; the rest of the batch was not tried.
        await queue.release(self.db, batch[1:])
        return None if waits else [*settled, row]

    async def _still_needed(
        self, batch: list[TelegramDelivery]
    ) -> tuple[list[TelegramDelivery], list[TelegramDelivery]]:
        """Escalations of a call someone has taken meanwhile are dropped, not sent. The rows
        kept, and those dropped."""
        kept, dropped = [], []
        for row in batch:
            if row.method == ESCALATE and await queue.call_taken(self.db, row.call_id):
                # Not a try: nothing was sent.
                await queue.finish(self.db, row, Status.DROPPED, "taken", attempts=row.attempts - 1)
                self.status.delivered("dropped")
                dropped.append(row)
            else:
                kept.append(row)
        return kept, dropped

    async def _fail(self, row: TelegramDelivery, reason: str) -> None:
        log.warning("telegram delivery %s failed for good: %s", row.id, reason)
        await queue.finish(self.db, row, Status.FAILED, reason)
        self.status.delivered("failed")

    async def _tell_managers(self, row: TelegramDelivery, reason: str) -> None:
        """A reply that cannot reach the client: say so in the client's topic."""
        if row.client_id is None or self.managers_chat_id is None:
            return
        async with self.db.session() as session:
            queue.enqueue(
                session,
                Outgoing(
                    target="topic",
                    chat_id=self.managers_chat_id,
                    client_id=row.client_id,
                    text=undelivered(reason),
                ),
            )

    async def _retry_later(self, row: TelegramDelivery, exc: Exception) -> bool:
        """A counted failed try: back in line when the policy says, or dead after its max
        attempts. Whether it waits in line (False: dead)."""
        status = await queue.retry(
            self.db, row, policy=self.pacing.policy(), rng=self._rng, error=str(exc)
        )
        if status == Status.PENDING:
            return True
        log.warning("telegram delivery %s is dead after %d attempts: %s", row.id, row.attempts, exc)
        self.status.delivered("dead")
        return False

    async def _send(self, batch: list[TelegramDelivery]) -> int | None:
        row = batch[0]
        chat_id, thread_id = row.chat_id, None
        topic: TelegramTopic | None = None
        if row.target == "topic":
            assert row.client_id is not None
            topic = await self._topic(row.client_id)
            if topic is None:
                raise NotSentYet("no managers' group or no client for the topic")
            chat_id, thread_id = topic.chat_id, topic.message_thread_id
            self._ready.add(topic.client_id)  # (dropped again below if the topic is gone)
        for each in batch:
            each.sent_thread_id = thread_id
        try:
            if topic is not None:
                await self._ensure_card(topic)
            if row.method == "card":
                await self._redraw(row)
                return None
            if row.method == "live":
                return await self._send_live(batch, chat_id, thread_id)
            if row.method == "copy":
                assert row.from_chat_id is not None and row.from_message_id is not None
                from_chat, from_message = row.from_chat_id, row.from_message_id
                copied = await self._api(
                    chat_id,
                    lambda: self.bot.copy_message(
                        chat_id, from_chat, from_message, message_thread_id=thread_id
                    ),
                )
                return copied.message_id
            text, markup = _merged(batch)
            message = await self._api(
                chat_id,
                lambda: self.bot.send_message(
                    chat_id,
                    text,
                    message_thread_id=thread_id,
                    parse_mode="HTML",
                    reply_markup=markup,
                ),
            )
            return message.message_id
        except TelegramBadRequest as exc:
            if thread_id is not None and any(s in exc.message.lower() for s in _THREAD_GONE):
                assert row.client_id is not None
                log.info("topic %s of client %s is gone: re-creating", thread_id, row.client_id)
                await self._forget_topic(row.client_id, thread_id)
                self._ready.discard(row.client_id)
                raise TopicGone from None
            raise

    async def _send_live(
        self, batch: list[TelegramDelivery], chat_id: int, thread_id: int | None
    ) -> int:
        """Edit the call's live message to hold every live line up to the batch's last (pending
        lines collapse into one edit); send it if none is standing in this topic (first line,
        deleted topic, message gone). Only a ringing call's first send notifies."""
        last = batch[-1]
        assert last.id is not None
        lines = await queue.live_lines(self.db, last.call_id, last.id)
        text = "\n".join(line.text for line in lines)
        if len(text) > MAX_TEXT:  # keep the opening block and the latest lines
            text = lines[0].text + "\n…\n" + text[-(MAX_TEXT - len(lines[0].text) - 3) :]
        ids = {row.id for row in batch}
        standing = next(
            (
                line
                for line in reversed(lines)
                if line.id not in ids
                and line.status == Status.SENT
                and line.sent_message_id
                and line.sent_thread_id == thread_id
            ),
            None,
        )
        if standing is not None and standing.sent_message_id is not None:
            message_id = standing.sent_message_id
            try:
                await self._api(
                    chat_id,
                    lambda: self.bot.edit_message_text(
                        text, chat_id=chat_id, message_id=message_id, parse_mode="HTML"
                    ),
                )
                return message_id
            except TelegramBadRequest as exc:
                reason = exc.message.lower()
                if "not modified" in reason:
                    return message_id
                if not any(s in reason for s in _MESSAGE_GONE):
                    raise
                log.info("live message of call %s is gone: sending it again", last.call_id)
        silent = batch[0].lane != ALERT
        message = await self._api(
            chat_id,
            lambda: self.bot.send_message(
                chat_id,
                text,
                message_thread_id=thread_id,
                parse_mode="HTML",
                disable_notification=silent,
            ),
        )
        return message.message_id


def _merged(batch: list[TelegramDelivery]) -> tuple[str, InlineKeyboardMarkup | None]:
    """One message for the batch: the texts one after another, the buttons of each."""
    texts: list[str] = []
    buttons = []
    for row in batch:
        texts.append(row.text)
        if row.reply_markup:
            buttons.extend(
                InlineKeyboardMarkup.model_validate_json(row.reply_markup).inline_keyboard
            )
    text = "\n\n".join(texts)
    return text, InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None


# Bot API methods that put something into a chat: they spend the chat's and the bot's budget.
COUNTED = frozenset(
    {
        "sendMessage",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "reopenForumTopic",
        "sendPhoto",
        "sendDocument",
    }
)


class Budgeted(BaseRequestMiddleware):
    """Every Bot API call of the bot — the queue's sends and handlers' direct answers alike —
    waits for its chat's budget, and a 429 cools that chat off."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if method.__api_method__ not in COUNTED or not isinstance(chat_id, int):
            return await make_request(bot, method)
        budgets = self.sender.budgets
        await budgets.acquire(chat_id)
        started = time.monotonic()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            budgets.cool_off(chat_id, exc.retry_after)
            self.sender.status.retry_after(chat_id)
            raise
        finally:
            budgets.landed(chat_id, time.monotonic() - started)
