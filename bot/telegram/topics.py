"""The managers' group: one forum topic per client, opened by the client's card.

A topic is created when a send needs it (or a handler asks for it), its card is sent before
anything else goes into it, its title and card are redrawn when the client changes (a queued
"card" delivery, the last lane), and a merged-away client's topic is pointed to the survivor's
and closed. A deleted topic is forgotten so the next send creates it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from sqlalchemy import delete
from sqlmodel import col

from bot.telegram.admission import call
from bot.telegram.status import SendStatus
from handlers.telegram.cards import render_card
from handlers.telegram.texts import merged_away, topic_link, topic_title
from storage import telegram_queue as queue
from storage.db import Database
from storage.models import Client
from storage.telegram_models import TelegramDelivery, TelegramTopic
from storage.telegram_queue import CARD, Outgoing
from telephony.infra.clock import Clock

log = logging.getLogger(__name__)

# Refusals saying the topic is gone: create it again.
THREAD_GONE = ("thread not found", "topic_deleted", "topic deleted", "topic_closed")


def thread_gone(exc: TelegramBadRequest) -> bool:
    return any(s in exc.message.lower() for s in THREAD_GONE)


class Topics:
    def __init__(
        self,
        bot: Bot,
        db: Database,
        *,
        managers_chat_id: int | None,
        zone: ZoneInfo,
        status: SendStatus,
        clock: Clock,
        wake: Callable[[], None],
    ) -> None:
        self.bot = bot
        self.db = db
        self.managers_chat_id = managers_chat_id
        self.zone = zone
        self.status = status
        self.clock = clock
        self._wake = wake
        self._lock = asyncio.Lock()
        # The topics of the pass's clients, read once per pass rather than once per send (the
        # pass's own changes kept in it; a claim refreshes each row's client_id, so a merge of
        # two clients meanwhile is seen). Empty between passes: `topic` reads the table.
        self.known: dict[int, TelegramTopic] = {}
        # Clients whose topic and card stand (read each pass): a send there is one call, not
        # three (topic, card, message), so a delivery waits for as many tokens as it needs
        # instead of blocking the pass (and other chats) halfway.
        self.ready: set[int] = set()

    async def load(self, client_ids: set[int]) -> None:
        """Read the standing topics of a pass's clients."""
        self.known = await queue.topics(self.db, client_ids)
        self.ready = {c for c, t in self.known.items() if t.card_message_id is not None}

    def unload(self) -> None:
        self.known = {}

    # --- what handlers ask for (handlers/telegram/context.py `Topics`) --------------------

    async def ensure_topic(self, client_id: int) -> int | None:
        topic = await self.topic(client_id)
        if topic is None:
            return None
        try:
            await self.ensure_card(topic)
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
        self._wake()

    async def retire(self, thread_id: int, client_id: int) -> None:
        """Best effort, like `refresh`: the old topic only loses its pointer if this fails."""
        chat_id = self.managers_chat_id
        current = await self.ensure_topic(client_id)
        if chat_id is None or current is None or current == thread_id:
            return
        try:
            await call(
                self.status,
                lambda: self.bot.send_message(
                    chat_id,
                    merged_away(topic_link(chat_id, current)),
                    message_thread_id=thread_id,
                    disable_notification=True,
                ),
            )
            await call(self.status, lambda: self.bot.close_forum_topic(chat_id, thread_id))
        except TelegramAPIError as exc:
            log.info("retiring topic %s: %s", thread_id, exc)

    # --- what deliveries need -------------------------------------------------------------

    async def redraw(self, row: TelegramDelivery) -> None:
        """Best effort: a failure here leaves the old title or card, nothing else."""
        async with self.db.session() as session:
            topic = await session.get(TelegramTopic, row.client_id)
            client = await session.get(Client, row.client_id)
            if topic is None or client is None:
                return
            text, keyboard = await render_card(session, client, self.zone)
        try:
            await call(
                self.status,
                lambda: self.bot.edit_forum_topic(
                    topic.chat_id, topic.message_thread_id, name=topic_title(client)
                ),
            )
            if topic.card_message_id:
                card_id = topic.card_message_id
                await call(
                    self.status,
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

    async def topic(self, client_id: int) -> TelegramTopic | None:
        """The client's topic, created when missing (its card is sent by `ensure_card`)."""
        if self.managers_chat_id is None:
            return None
        chat_id = self.managers_chat_id
        async with self._lock:
            topic = self.known.get(client_id)
            if topic is not None:
                return topic
            async with self.db.read() as session:
                topic = await session.get(TelegramTopic, client_id)
                client = None if topic is not None else await session.get(Client, client_id)
            if topic is not None or client is None:
                return topic
            created = await call(
                self.status, lambda: self.bot.create_forum_topic(chat_id, topic_title(client))
            )
            topic = TelegramTopic(
                client_id=client_id,
                chat_id=chat_id,
                message_thread_id=created.message_thread_id,
                created_at=self.clock.now(),
            )
            async with self.db.session() as session:
                session.add(topic)
            self.known[client_id] = topic
            return topic

    async def ensure_card(self, topic: TelegramTopic) -> None:
        """The client card opens the topic: sent before anything else goes into it.

        A 429 or a network error propagates, so the delivery waiting behind it is postponed and
        the card is tried again first. A refused card (400) is given up (0) and logged.
        """
        if topic.card_message_id is not None:
            return
        async with self._lock:
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
            message = await call(
                self.status,
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
            if thread_gone(exc):
                raise
            log.warning("card for client %s refused: %s", topic.client_id, exc.message)
            topic.card_message_id = 0
        async with self.db.session() as session:
            session.add(topic)

    async def forget(self, client_id: int, thread_id: int) -> None:
        """The topic was deleted by someone: the next send creates it again."""
        self.ready.discard(client_id)
        known = self.known.get(client_id)
        if known is not None and known.message_thread_id == thread_id:
            del self.known[client_id]
        async with self.db.session() as session:
            await session.exec(
                delete(TelegramTopic).where(
                    col(TelegramTopic.client_id) == client_id,
                    col(TelegramTopic.message_thread_id) == thread_id,
                )
            )
