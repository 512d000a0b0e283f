"""The send queue: stored deliveries go out in order, paced per chat, 429s and deleted topics
handled, failures retried with backoff.

One sender per process works through `telegram_deliveries` oldest first. A chat whose earliest
pending delivery is not due yet (a 429's retry_after, a backoff, the pacing interval) is skipped
as a whole, so a chat's messages never overtake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import delete
from sqlmodel import col, select

from bot.background import end_task
from bot.telegram.render import undelivered
from handlers.telegram.cards import render_card
from handlers.telegram.texts import merged_away, topic_link, topic_title
from storage.db import Database
from storage.models import Client
from storage.telegram_models import TelegramDelivery, TelegramTopic
from storage.types import utcnow

log = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 12
MAX_BACKOFF = 600.0
IDLE_POLL = 5.0  # seconds between looks at the table when nobody wakes the sender
MAX_TEXT = 4096
# Refusals about the message itself: sending it again cannot help.
_POISON = ("can't parse entities", "message is too long", "text must be non-empty", "button_")
_MESSAGE_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
_THREAD_GONE = ("thread not found", "topic_deleted", "topic deleted", "topic_closed")


@dataclass
class Pacing:
    """Minimum seconds between two sends to one group (≈20/min) and to one private chat (≈1/s)."""

    group_interval: float = 3.0
    chat_interval: float = 1.0
    retry_base: float = 2.0  # backoff after a failed send: base, base², … capped at MAX_BACKOFF

    def interval(self, chat_id: int) -> float:
        return self.group_interval if chat_id < 0 else self.chat_interval


class TopicGone(Exception):
    """The client's topic was deleted by someone: create it again and resend."""


class NotSentYet(Exception):
    """A send that cannot happen now for a reason of ours (worth retrying later)."""


class Sender:
    def __init__(
        self,
        bot: Bot,
        db: Database,
        *,
        managers_chat_id: int | None,
        zone: ZoneInfo,
        pacing: Pacing | None = None,
    ) -> None:
        self.bot = bot
        self.db = db
        self.managers_chat_id = managers_chat_id
        self.zone = zone
        self.pacing = pacing or Pacing()
        self._ready_at: dict[int, float] = {}  # chat id → monotonic time it may be sent to again
        self._lock = asyncio.Lock()
        self._topic_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        # Several processes: only the holder of the "telegram-sender" lease sends (bot.singletons).
        self.gate: Callable[[], bool] = lambda: True

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
        """Best effort: a failure here leaves the old title or card, nothing else."""
        async with self.db.session() as session:
            topic = await session.get(TelegramTopic, client_id)
            client = await session.get(Client, client_id)
            if topic is None or client is None:
                return
            text, keyboard = await render_card(session, client, self.zone)
        try:
            await self._pace(topic.chat_id)
            await self.bot.edit_forum_topic(
                topic.chat_id, topic.message_thread_id, name=topic_title(client)
            )
            if topic.card_message_id:
                await self.bot.edit_message_text(
                    text,
                    chat_id=topic.chat_id,
                    message_id=topic.card_message_id,
                    parse_mode="HTML",
                    reply_markup=keyboard,
                )
        except TelegramAPIError as exc:
            log.info("refreshing the topic of client %s: %s", client_id, exc)
        finally:
            self._sent(topic.chat_id)

    async def retire(self, thread_id: int, client_id: int) -> None:
        """Best effort, like `refresh`: the old topic only loses its pointer if this fails."""
        chat_id = self.managers_chat_id
        current = await self.ensure_topic(client_id)
        if chat_id is None or current is None or current == thread_id:
            return
        try:
            await self._pace(chat_id)
            await self.bot.send_message(
                chat_id, merged_away(topic_link(chat_id, current)), message_thread_id=thread_id
            )
            self._sent(chat_id)
            await self.bot.close_forum_topic(chat_id, thread_id)
        except TelegramAPIError as exc:
            log.info("retiring topic %s: %s", thread_id, exc)

    async def _topic(self, client_id: int) -> TelegramTopic | None:
        """The client's topic, created when missing (its card is sent by `_ensure_card`)."""
        if self.managers_chat_id is None:
            return None
        chat_id = self.managers_chat_id
        async with self._topic_lock:
            async with self.db.session() as session:
                topic = await session.get(TelegramTopic, client_id)
                client = await session.get(Client, client_id)
            if topic is not None or client is None:
                return topic
            await self._pace(chat_id)
            created = await self.bot.create_forum_topic(chat_id, topic_title(client))
            self._sent(chat_id)
            topic = TelegramTopic(
                client_id=client_id,
                chat_id=chat_id,
                message_thread_id=created.message_thread_id,
                created_at=utcnow(),
            )
            async with self.db.session() as session:
                session.add(topic)
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
        await self._pace(topic.chat_id)
        try:
            message = await self.bot.send_message(
                topic.chat_id,
                text,
                message_thread_id=topic.message_thread_id,
                parse_mode="HTML",
                reply_markup=keyboard,
            )
            topic.card_message_id = message.message_id
        except TelegramBadRequest as exc:
            if any(s in exc.message.lower() for s in _THREAD_GONE):
                raise
            log.warning("card for client %s refused: %s", topic.client_id, exc.message)
            topic.card_message_id = 0
        finally:
            self._sent(topic.chat_id)
        async with self.db.session() as session:
            session.add(topic)

    async def _forget_topic(self, client_id: int, thread_id: int) -> None:
        async with self.db.session() as session:
            await session.exec(
                delete(TelegramTopic).where(
                    col(TelegramTopic.client_id) == client_id,
                    col(TelegramTopic.message_thread_id) == thread_id,
                )
            )

    # --- pacing --------------------------------------------------------------------------

    async def _pace(self, chat_id: int) -> None:
        wait = self._ready_at.get(chat_id, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _sent(self, chat_id: int) -> None:
        ready = time.monotonic() + self.pacing.interval(chat_id)
        self._ready_at[chat_id] = max(self._ready_at.get(chat_id, 0.0), ready)

    def _block(self, chat_id: int, seconds: float) -> None:
        self._ready_at[chat_id] = max(self._ready_at.get(chat_id, 0.0), time.monotonic() + seconds)

    # --- the queue -----------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, task: asyncio.Task[None], grace: float = 5.0) -> None:
        """End `run()` between two sends (a cancel mid-query could leak a DB connection)."""
        self._stopping = True
        self._wake.set()
        await end_task(task, grace)

    async def drain(self, *, include_waiting: bool = False) -> None:
        """Send everything that is due; with `include_waiting`, also wait out 429s and backoffs
        until the queue is empty (tests, shutdown)."""
        while True:
            next_due = await self._pass()
            if next_due is None:
                return
            delay = next_due - time.monotonic()
            if delay > 0 and not include_waiting:
                return
            if delay > 0:
                await asyncio.sleep(delay)

    async def run(self) -> None:
        """The background worker: drain, then sleep until woken or something is due."""
        while not self._stopping:
            self._wake.clear()
            if not self.gate():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
                continue
            try:
                next_due = await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("telegram send queue pass failed")
                next_due = time.monotonic() + IDLE_POLL
            timeout = IDLE_POLL if next_due is None else max(0.0, next_due - time.monotonic())
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _pass(self) -> float | None:
        """One pass over pending deliveries. Returns when (monotonic) the next pass is due, or
        None when nothing is pending."""
        async with self._lock:
            now = utcnow()
            async with self.db.session() as session:
                rows = list(
                    (
                        await session.exec(
                            select(TelegramDelivery)
                            .where(TelegramDelivery.status == "pending")
                            .order_by(col(TelegramDelivery.id))
                            .limit(BATCH)
                        )
                    ).all()
                )
            if not rows:
                return None
            held: dict[int, float] = {}  # chats skipped in this pass → when they may go
            for row in rows:
                if self._stopping:
                    return None
                chat = row.chat_id
                if chat in held:
                    continue
                due_in = max(
                    (row.next_attempt_at - now).total_seconds(),
                    self._ready_at.get(chat, 0.0) - time.monotonic(),
                )
                if due_in > 0:
                    held[chat] = time.monotonic() + due_in
                    continue
                await self._deliver(row)
                if row.status == "pending":  # postponed (429, backoff): hold its chat
                    held[chat] = time.monotonic() + max(
                        0.0, (row.next_attempt_at - utcnow()).total_seconds()
                    )
            if held:
                return min(held.values())
            # Everything fetched was settled; sends may have queued more (a note): look again.
            return time.monotonic()

    async def _deliver(self, row: TelegramDelivery) -> None:
        try:
            for _ in range(2):  # a second try after re-creating a deleted topic
                try:
                    message_id = await self._send(row)
                except TopicGone:
                    continue
                await self._finish(row, sent_message_id=message_id)
                return
            raise NotSentYet("the topic was deleted again")
        except TelegramRetryAfter as exc:
            self._block(row.chat_id, exc.retry_after)
            await self._postpone(row, float(exc.retry_after), count=False, error=exc.message)
        except TelegramForbiddenError as exc:
            if row.target == "chat":  # the person blocked the bot: nothing will get through
                await self._finish(row, failed=exc.message)
                await self._tell_managers(row, exc.message)
            else:  # the bot lost its rights in the managers' group: an admin can fix that
                await self._retry_later(row, exc)
        except TelegramBadRequest as exc:
            if row.target == "topic" and not any(s in exc.message.lower() for s in _POISON):
                # The managers' group refuses (topics off, no rights, wrong id): an admin fixes
                # the group and the notes go out then.
                log.warning("the managers' group refused a send: %s", exc.message)
                await self._retry_later(row, exc)
            else:
                await self._finish(row, failed=exc.message)
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            # A wrong token or API URL: settings get fixed, the messages should then go out.
            await self._retry_later(row, exc)
        except (TelegramAPIError, NotSentYet, OSError, TimeoutError) as exc:
            await self._retry_later(row, exc)

    async def _tell_managers(self, row: TelegramDelivery, reason: str) -> None:
        """A reply that cannot reach the client: say so in the client's topic."""
        if row.client_id is None or self.managers_chat_id is None:
            return
        async with self.db.session() as session:
            session.add(
                TelegramDelivery(
                    target="topic",
                    chat_id=self.managers_chat_id,
                    client_id=row.client_id,
                    text=undelivered(reason),
                )
            )

    async def _retry_later(self, row: TelegramDelivery, exc: Exception) -> None:
        backoff = min(MAX_BACKOFF, self.pacing.retry_base ** (row.attempts + 1))
        await self._postpone(row, backoff, count=True, error=str(exc))

    async def _send(self, row: TelegramDelivery) -> int:
        chat_id, thread_id = row.chat_id, None
        topic: TelegramTopic | None = None
        if row.target == "topic":
            assert row.client_id is not None
            topic = await self._topic(row.client_id)
            if topic is None:
                raise NotSentYet("no managers' group or no client for the topic")
            chat_id, thread_id = topic.chat_id, topic.message_thread_id
        row.sent_thread_id = thread_id
        try:
            if topic is not None:
                await self._ensure_card(topic)
            await self._pace(chat_id)
            if row.method == "live":
                return await self._send_live(row, chat_id, thread_id)
            if row.method == "copy":
                assert row.from_chat_id is not None and row.from_message_id is not None
                copied = await self.bot.copy_message(
                    chat_id, row.from_chat_id, row.from_message_id, message_thread_id=thread_id
                )
                return copied.message_id
            markup = (
                InlineKeyboardMarkup.model_validate_json(row.reply_markup)
                if row.reply_markup
                else None
            )
            message = await self.bot.send_message(
                chat_id,
                row.text,
                message_thread_id=thread_id,
                parse_mode="HTML",
                reply_markup=markup,
            )
            return message.message_id
        except TelegramBadRequest as exc:
            if thread_id is not None and any(s in exc.message.lower() for s in _THREAD_GONE):
                assert row.client_id is not None
                log.info("topic %s of client %s is gone: re-creating", thread_id, row.client_id)
                await self._forget_topic(row.client_id, thread_id)
                raise TopicGone from None
            raise
        finally:
            self._sent(chat_id)

    async def _send_live(self, row: TelegramDelivery, chat_id: int, thread_id: int | None) -> int:
        """Edit the call's live message to hold every live line so far; send it if none is
        standing in this topic (first line, deleted topic, message gone)."""
        async with self.db.session() as session:
            lines = list(
                (
                    await session.exec(
                        select(TelegramDelivery)
                        # Every line of the call, not only older ids: with several
                        # processes a line can commit after a newer one was already sent.
                        .where(
                            TelegramDelivery.call_id == row.call_id,
                            TelegramDelivery.method == "live",
                        )
                        .order_by(col(TelegramDelivery.id))
                    )
                ).all()
            )
        text = "\n".join(line.text for line in lines)
        if len(text) > MAX_TEXT:  # keep the opening block and the latest lines
            text = lines[0].text + "\n…\n" + text[-(MAX_TEXT - len(lines[0].text) - 3) :]
        standing = next(
            (
                line
                for line in reversed(lines)
                if line.id != row.id
                and line.status == "sent"
                and line.sent_message_id
                and line.sent_thread_id == thread_id
            ),
            None,
        )
        if standing is not None and standing.sent_message_id is not None:
            try:
                await self.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=standing.sent_message_id, parse_mode="HTML"
                )
                return standing.sent_message_id
            except TelegramBadRequest as exc:
                reason = exc.message.lower()
                if "not modified" in reason:
                    return standing.sent_message_id
                if not any(s in reason for s in _MESSAGE_GONE):
                    raise
                log.info("live message of call %s is gone: sending it again", row.call_id)
        message = await self.bot.send_message(
            chat_id, text, message_thread_id=thread_id, parse_mode="HTML"
        )
        return message.message_id

    async def _finish(
        self,
        row: TelegramDelivery,
        *,
        sent_message_id: int | None = None,
        failed: str | None = None,
    ) -> None:
        row.status = "failed" if failed is not None else "sent"
        row.error = failed
        row.sent_message_id = sent_message_id
        row.sent_at = utcnow() if failed is None else None
        row.attempts += 1
        if failed is not None:
            log.warning("telegram delivery %s failed for good: %s", row.id, failed)
        async with self.db.session() as session:
            session.add(row)

    async def _postpone(
        self, row: TelegramDelivery, seconds: float, *, count: bool, error: str
    ) -> None:
        if count:
            row.attempts += 1
        row.error = error
        row.next_attempt_at = utcnow() + timedelta(seconds=seconds)
        if row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
        async with self.db.session() as session:
            session.add(row)
