"""Delivery: one claimed batch is sent and each of its rows settled with the claim's token
(storage/telegram_queue.py on the queue engine): sent, failed for good, dropped, retried by the
`RetryPolicy`, or handed back unsent (a 429's wait: not a try)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)

from bot.telegram.admission import call
from bot.telegram.budgets import Budgets
from bot.telegram.live import send_live
from bot.telegram.policy import merged
from bot.telegram.render import undelivered
from bot.telegram.status import SendStatus
from bot.telegram.topics import Topics, thread_gone
from storage import telegram_queue as queue
from storage.db import Database
from storage.queue import RetryPolicy, Status
from storage.telegram_models import TelegramDelivery, TelegramTopic
from storage.telegram_queue import ALERT, ESCALATE, Outgoing
from telephony.infra.clock import Clock

log = logging.getLogger(__name__)

# Refusals about the message itself: sending it again cannot help.
_POISON = ("can't parse entities", "message is too long", "text must be non-empty", "button_")


class TopicGone(Exception):
    """The client's topic was deleted by someone: create it again and resend."""


class NotSentYet(Exception):
    """A send that cannot happen now for a reason of ours (worth retrying later)."""


class Delivery:
    def __init__(
        self,
        bot: Bot,
        db: Database,
        *,
        topics: Topics,
        budgets: Budgets,
        status: SendStatus,
        clock: Clock,
        policy: Callable[[], RetryPolicy],
    ) -> None:
        self.bot = bot
        self.db = db
        self.topics = topics
        self.budgets = budgets
        self.status = status
        self.clock = clock
        self.policy = policy
        self.rng = random.Random()
        self.alerted: dict[int, float] = {}  # private chat → when (monotonic) it last got an alert

    async def deliver(self, claimed: list[TelegramDelivery]) -> list[TelegramDelivery] | None:
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
                if await queue.sent(self.db, batch, message_id, now=self.clock.now()) < len(batch):
                    log.warning("telegram delivery %s: sent after its claim passed on", row.id)
                self.status.delivered("sent", len(batch))
                if row.lane == ALERT and row.target == "chat":
                    self.alerted[row.chat_id] = self.clock.monotonic()
                return settled + batch
            raise NotSentYet("the topic was deleted again")
        except TelegramRetryAfter as exc:
            # The chat is cooled off by the admission; the batch waits as long (not a try).
            seconds = exc.retry_after * self.budgets.rates.time_scale
            due = self.clock.now() + timedelta(seconds=seconds)
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
        managers_chat_id = self.topics.managers_chat_id
        if row.client_id is None or managers_chat_id is None:
            return
        async with self.db.session() as session:
            queue.enqueue(
                session,
                Outgoing(
                    target="topic",
                    chat_id=managers_chat_id,
                    client_id=row.client_id,
                    text=undelivered(reason),
                ),
            )

    async def _retry_later(self, row: TelegramDelivery, exc: Exception) -> bool:
        """A counted failed try: back in line when the policy says, or dead after its max
        attempts. Whether it waits in line (False: dead)."""
        status = await queue.retry(
            self.db,
            row,
            policy=self.policy(),
            rng=self.rng,
            error=str(exc),
            now=self.clock.now(),
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
            topic = await self.topics.topic(row.client_id)
            if topic is None:
                raise NotSentYet("no managers' group or no client for the topic")
            chat_id, thread_id = topic.chat_id, topic.message_thread_id
            self.topics.ready.add(topic.client_id)  # (dropped again below if the topic is gone)
        for each in batch:
            each.sent_thread_id = thread_id
        try:
            if topic is not None:
                await self.topics.ensure_card(topic)
            if row.method == "card":
                await self.topics.redraw(row)
                return None
            if row.method == "live":
                return await send_live(self.bot, self.db, self.status, batch, chat_id, thread_id)
            if row.method == "copy":
                assert row.from_chat_id is not None and row.from_message_id is not None
                from_chat, from_message = row.from_chat_id, row.from_message_id
                copied = await call(
                    self.status,
                    lambda: self.bot.copy_message(
                        chat_id, from_chat, from_message, message_thread_id=thread_id
                    ),
                )
                return copied.message_id
            text, markup = merged(batch)
            message = await call(
                self.status,
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
            if thread_id is not None and thread_gone(exc):
                assert row.client_id is not None
                log.info("topic %s of client %s is gone: re-creating", thread_id, row.client_id)
                await self.topics.forget(row.client_id, thread_id)
                raise TopicGone from None
            raise
