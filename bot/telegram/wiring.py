"""The bot inside `trubka serve`: long polling by default, a webhook when a URL is set.

Without TRUBKA_TELEGRAM_TOKEN nothing here is built and the rest of Trubka runs as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot import singletons
from bot.roles import Role
from bot.settings import ConfigurationError, Settings, secret
from bot.shell import Shell
from bot.telegram import lazy_types
from bot.telegram.budgets import BudgetRates, Budgets
from bot.telegram.guard import NoOpenSession
from bot.telegram.notifier import AlertRules, TopicNotifier
from bot.telegram.sender import Sender
from bot.telegram.status import SendStatus
from handlers.telegram import alerts, calls, chats, managers, visit_start
from handlers.telegram.context import ManagerMiddleware, TelegramContext
from storage.db import Database
from storage.queue import RetryPolicy
from telephony.calls.dialing import Dialers
from telephony.calls.pipeline import CallPipeline
from telephony.events import FanOut, MessageObserver
from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.infra.health import HealthChecks

log = logging.getLogger("trubka.telegram")

DEFAULT_WEBHOOK_PATH = "/telegram_webhook"
# Polling that cannot start is retried with the engine's backoff: ~1 s, doubling, ≤ a minute.
POLL_RETRY = RetryPolicy(base_delay=2.0, max_delay=60.0)
ALLOWED_UPDATES = ["message", "callback_query"]


def build_dispatcher(context: TelegramContext) -> Dispatcher:
    dispatcher = Dispatcher(tg=context)
    dispatcher.update.outer_middleware(ManagerMiddleware())
    dispatcher.include_routers(
        managers.build_router(),
        calls.build_router(),
        alerts.build_router(),
        chats.build_group_router(),
        visit_start.build_router(),  # `/start v<token>` (site links) before the usual /start
        chats.build_private_router(),
    )
    return dispatcher


@dataclass
class TelegramBot:
    """Everything Telegram in one process: bot, dispatcher, send queue, call notifier."""

    bot: Bot
    dispatcher: Dispatcher
    sender: Sender
    context: TelegramContext
    notifier: TopicNotifier | None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _polling: asyncio.Task[None] | None = None

    @property
    def webhook_path(self) -> str:
        path = urlsplit(self.webhook_url).path if self.webhook_url else ""
        return path or DEFAULT_WEBHOOK_PATH

    def register(
        self,
        app: web.Application,
        role: Role = Role.ALL,
        leadership: singletons.Leadership | None = None,
    ) -> None:
        """HTTP roles take webhook updates; background roles run the sender and polling, each
        only while this process holds its lease (several processes share one bot)."""
        if self.webhook_url and role.http:
            SimpleRequestHandler(
                self.dispatcher, self.bot, secret_token=self.webhook_secret
            ).register(app, path=self.webhook_path)
        if role.background and leadership is not None:
            sending = leadership.guard(singletons.TELEGRAM_SENDER)
            self.sender.gate = sending.held
            sending.on_gain(self._on_sender_lease)
            updates = leadership.guard(singletons.TELEGRAM_UPDATES)
            updates.on_gain(self._on_updates_lease)
            updates.on_loss(self._on_updates_lost)
            app.cleanup_ctx.append(self.lifetime)
        elif role.background:  # one process on its own: nothing to share
            app.cleanup_ctx.append(self._alone)
        else:
            app.cleanup_ctx.append(self._session_lifetime)

    async def _alone(self, app: web.Application) -> AsyncIterator[None]:
        self._on_sender_lease()
        self._on_updates_lease()
        async for _ in self.lifetime(app):
            yield

    async def _session_lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        yield
        await self.bot.session.close()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(work, name=name))

    def _on_sender_lease(self) -> None:
        self.sender.wake()
        if self.notifier is not None:
            self._spawn(self._catch_up(), "telegram-catch-up")

    async def _catch_up(self) -> None:
        assert self.notifier is not None
        try:
            await self.notifier.catch_up()
        except Exception:  # a catch-up problem must not stop the service from starting
            log.exception("catching up on call notes failed")

    def _on_updates_lease(self) -> None:
        if self.webhook_url:
            self._spawn(self._set_webhook(), "telegram-set-webhook")
        elif self._polling is None or self._polling.done():
            self._polling = asyncio.create_task(self._poll(), name="telegram-polling")

    def _on_updates_lost(self) -> None:
        if self._polling is not None and not self._polling.done():
            self._spawn(self._stop_polling(), "telegram-stop-polling")

    async def _set_webhook(self) -> None:
        try:
            await self.bot.set_webhook(
                self.webhook_url or "",
                secret_token=self.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        except Exception:  # Telegram down must not stop the PBX side from starting
            log.exception("setWebhook failed; updates will not arrive until it succeeds")

    async def _stop_polling(self) -> None:
        # Cancelling start_polling() leaves its per-bot task running; the stop signal ends it.
        with contextlib.suppress(RuntimeError, TimeoutError):  # RuntimeError: not started
            await asyncio.wait_for(self.dispatcher.stop_polling(), 5)
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        sender = asyncio.create_task(self.sender.run(), name="telegram-sender")
        yield
        if self._polling is not None and not self._polling.done():
            await self._stop_polling()
        await self.sender.stop(sender)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.bot.session.close()

    async def _poll(self) -> None:
        """Long polling; Telegram unreachable at start (getMe fails) is retried, not fatal,
        after the engine's backoff (`POLL_RETRY`: ~1 s, doubling, at most a minute)."""
        rng = random.Random()
        attempts = 0
        while True:
            delay = POLL_RETRY.delay(attempts + 1, rng)
            try:
                await self.dispatcher.start_polling(
                    self.bot,
                    handle_signals=False,
                    close_bot_session=False,
                    allowed_updates=ALLOWED_UPDATES,
                )
                return  # stopped by stop_polling()
            except asyncio.CancelledError:
                raise
            except TelegramUnauthorizedError:
                self.sender.status.token_refused(True)  # logged once, shown in /healthz
            except Exception as exc:
                log.warning("Telegram polling could not start (%s); retrying in %.0f s", exc, delay)
            attempts += 1
            await asyncio.sleep(delay)  # real time: a skipping test clock would spin here


TELEGRAM = web.AppKey("trubka_telegram", TelegramBot)


def setup_telegram(
    shell: Shell, dialers: Dialers, messages: FanOut[MessageObserver]
) -> TelegramBot | None:
    """The bot (None without TRUBKA_TELEGRAM_TOKEN): the pipeline's `notes` step, the webhook
    route, the send queue and polling. Set up after the calls, so its cleanup (stop polling,
    the send queue) runs before the PBX clients and the database close."""
    telegram = build_telegram(
        shell.settings,
        shell.db,
        shell.pipeline,
        dialers,
        messages=messages,
        health=shell.web.health,
        registry=shell.web.metrics.registry,
        clock=shell.telegram_clock,
    )
    if telegram is not None:
        shell.app[TELEGRAM] = telegram
        telegram.register(shell.app, shell.role, shell.leadership)
    return telegram


def budget_rates(settings: Settings) -> BudgetRates:
    rates = BudgetRates(
        group_per_minute=settings.telegram_group_per_minute,
        group_burst=settings.telegram_group_burst,
        chat_per_second=settings.telegram_chat_per_second,
        chat_burst=settings.telegram_chat_burst,
        global_per_second=settings.telegram_global_per_second,
        time_scale=settings.telegram_time_scale,
    )
    return rates.with_intervals(settings.telegram_group_interval, settings.telegram_chat_interval)


def build_telegram(
    settings: Settings,
    db: Database,
    pipeline: CallPipeline,
    dialers: Dialers,
    *,
    messages: FanOut[MessageObserver] | None = None,
    health: HealthChecks | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
) -> TelegramBot | None:
    token = secret(settings.telegram_token)
    if not token:
        return None
    webhook_secret = secret(settings.telegram_webhook_secret)
    if settings.telegram_webhook_url and not webhook_secret:
        # Without it anyone who guesses the URL could feed us fake updates.
        raise ConfigurationError(
            "TRUBKA_TELEGRAM_WEBHOOK_SECRET: required when TRUBKA_TELEGRAM_WEBHOOK_URL is set"
        )
    if settings.telegram_managers_chat_id is None:
        log.warning("TRUBKA_TELEGRAM_MANAGERS_CHAT_ID is not set: no client topics, no call notes")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(NoOpenSession())
    bot = Bot(token, session=session)
    lazy_types.warm_up()
    status = SendStatus(registry)
    if health is not None:
        health.add("telegram", status.problem)
    sender = Sender(
        bot,
        db,
        managers_chat_id=settings.telegram_managers_chat_id,
        zone=settings.zone,
        budgets=Budgets(budget_rates(settings), clock=clock or SYSTEM_CLOCK),
        status=status,
    )
    context = TelegramContext(
        db=db,
        dialers=dialers,
        observer=pipeline,
        topics=sender,
        zone=settings.zone,
        managers_chat_id=settings.telegram_managers_chat_id,
        admin_ids=frozenset(settings.telegram_admin_ids),
        pbx=dialers.megafon,
        messages=messages,
        clock=sender.clock,
    )
    rules = AlertRules(
        private=settings.telegram_private_alerts,
        escalate_after=timedelta(minutes=settings.telegram_escalate_after),
    )
    notifier = TopicNotifier(
        db, settings.telegram_managers_chat_id, sender.wake, rules, clock=sender.clock
    )
    pipeline.steps.notes = notifier
    return TelegramBot(
        bot=bot,
        dispatcher=build_dispatcher(context),
        sender=sender,
        context=context,
        notifier=notifier,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=webhook_secret,
    )
