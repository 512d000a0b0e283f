"""Wiring the channels (issue 20): SMS.ru and WhatsApp clients from the settings, the domain's
`ClientChannels` (routing, limits, inbound), the channel sender loop, deep links, and what the
edges need (`CHANNEL_INBOUND`, the sms balance in /healthz, the scenarios' actions).

Called once from `build_app`, after Telegram and the scenarios (it hands itself to both).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

from aiohttp import web

from bot.scenarios.wiring import SCENARIOS
from bot.settings import Settings
from bot.shell import Shell
from handlers.web import smsru as smsru_routes
from handlers.web import whatsapp as whatsapp_routes
from handlers.web.channel_inbound import CHANNEL_INBOUND
from handlers.web.context import WebCore
from handlers.web.whatsapp import WHATSAPP_WEBHOOK, WhatsAppWebhookConfig
from telephony.channels.base import Channel, ChannelKind
from telephony.channels.deeplink import TelegramLinks
from telephony.channels.limits import Limits, parse_quiet_hours
from telephony.channels.sender import ChannelSender
from telephony.channels.service import ChannelMetrics, ClientChannels
from telephony.channels.smsru import SmsRuChannel, sms_balance_problem
from telephony.channels.whatsapp import WhatsAppChannel
from telephony.events import FanOut, MessageObserver, message_observers
from telephony.infra.clock import SystemClock
from telephony.infra.ratelimit import TokenBuckets
from telephony.scenarios.actions import TelegramOutlet

log = logging.getLogger("trubka.channels")

CHANNELS = web.AppKey("trubka_channels", ClientChannels)
CHANNEL_SENDER = web.AppKey("trubka_channel_sender", ChannelSender)
SENDER_LEASE = "channel-sender"

# Throughput per business number / account (tokens a second, burst) and the pair limit for one
# recipient. WhatsApp: 80 messages/s on the default tier; error 131056 beyond a few messages to
# one person in a few seconds. SMS.ru has no published per-number limit; one SMS to a person
# every few seconds keeps a scenario loop from flooding anyone.
THROUGHPUT = {ChannelKind.WHATSAPP: (80.0, 80.0), ChannelKind.SMS: (10.0, 10.0)}
PAIR = {ChannelKind.WHATSAPP: (1 / 6, 3.0), ChannelKind.SMS: (1 / 10, 2.0)}


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter is not None else None


def smsru_channel(settings: Settings) -> SmsRuChannel | None:
    """SMS through SMS.ru when `TRUBKA_SMSRU_API_ID` is set, else None."""
    if settings.smsru_api_id is None or not settings.smsru_api_id.get_secret_value():
        return None
    return SmsRuChannel(
        settings.smsru_url,
        settings.smsru_api_id.get_secret_value(),
        sender=settings.sms_sender,
        test=settings.smsru_test,
        timeout=settings.smsru_timeout,
    )


def whatsapp_channel(settings: Settings) -> WhatsAppChannel | None:
    """The WhatsApp channel when its token and phone number id are set (serve refuses a half
    configuration before this runs: bot/integrations.py)."""
    if settings.whatsapp_token is None or not settings.whatsapp_phone_number_id:
        return None
    return WhatsAppChannel(
        settings.whatsapp_url,
        settings.whatsapp_token.get_secret_value(),
        settings.whatsapp_phone_number_id,
    )


def whatsapp_webhook_config(settings: Settings) -> WhatsAppWebhookConfig | None:
    """What `/whatsapp_webhook` checks (put it at `handlers.web.whatsapp.WHATSAPP_WEBHOOK`)."""
    secret, verify = settings.whatsapp_app_secret, settings.whatsapp_verify_token
    if secret is None or verify is None:
        return None
    app_secret, verify_token = secret.get_secret_value(), verify.get_secret_value()
    if not app_secret or not verify_token:
        return None
    return WhatsAppWebhookConfig(app_secret=app_secret, verify_token=verify_token)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The SMS.ru and WhatsApp clients whose settings are set (none: Telegram only)."""
    built: dict[str, Channel] = {}
    if (sms := smsru_channel(settings)) is not None:
        built[ChannelKind.SMS] = sms
    if (whatsapp := whatsapp_channel(settings)) is not None:
        built[ChannelKind.WHATSAPP] = whatsapp
    return built


def links(settings: Settings) -> TelegramLinks | None:
    if settings.telegram_bot_username is None:
        return None
    secret = _secret(settings.link_secret)
    token = _secret(settings.telegram_token)
    if secret is None and token is None:
        log.warning("TRUBKA_TELEGRAM_BOT_USERNAME is set but no TRUBKA_LINK_SECRET: no links")
        return None
    key = secret.encode() if secret else hashlib.sha256(f"links:{token}".encode()).digest()
    return TelegramLinks(
        settings.telegram_bot_username, key, ttl=timedelta(days=settings.link_ttl_days)
    )


def setup_channels(
    shell: Shell,
    channels: Mapping[str, Channel] | None = None,
    *,
    messages: FanOut[MessageObserver] | None = None,
) -> ClientChannels:
    """After Telegram and the scenarios (it hands itself to both). `channels`: given by tests
    (else built from the settings); `messages`: the app's message fan-out (the scenarios are in
    it), told about every incoming message."""
    app, settings, db = shell.app, shell.settings, shell.db
    built = dict(channels) if channels is not None else build_channels(settings)
    clock = shell.clock or SystemClock()
    telegram = None
    if settings.telegram_token is not None:
        # Imported only when used: aiogram's types take seconds to load.
        from bot.telegram.wiring import TELEGRAM

        telegram = app.get(TELEGRAM)
    outlet = (
        TelegramOutlet(settings.telegram_managers_chat_id, telegram.sender.wake)
        if telegram is not None
        else None
    )
    engine = app.get(SCENARIOS)
    service = ClientChannels(
        db,
        built,
        Limits(
            zone=settings.zone,
            quiet=parse_quiet_hours(settings.channel_quiet_hours),
            client_daily=settings.channel_client_daily_limit,
            sms_daily=settings.sms_daily_limit,
        ),
        telegram=outlet,
        links=links(settings),
        clock=clock,
        metrics=ChannelMetrics(shell.web.metrics.registry),
        messages=messages
        if messages is not None
        else message_observers([engine] if engine is not None else []),
    )
    app[CHANNELS] = service
    if engine is not None:
        engine.channels = service
        service.observers.append(engine)
    if telegram is not None:
        telegram.context.channels = service
    _register_edges(app, settings, service, shell.role.http)
    if not built:
        return service
    sender = ChannelSender(
        db,
        built,
        service,
        clock=clock,
        throughput={
            kind: TokenBuckets(*THROUGHPUT[ChannelKind(kind)], clock=clock) for kind in built
        },
        pair={kind: TokenBuckets(*PAIR[ChannelKind(kind)], clock=clock) for kind in built},
    )
    service.wake_sender = sender.wake
    app[CHANNEL_SENDER] = sender
    _balance_health(shell.web, built)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sender.worker.run(), name="channel-sender")
        yield
        await sender.worker.stop(10.0, task)
        for channel in built.values():
            await channel.close()

    async def closing(_app: web.Application) -> AsyncIterator[None]:
        yield
        for channel in built.values():
            await channel.close()

    if shell.role.background:
        guard = shell.leadership.guard(SENDER_LEASE)
        sender.gate = guard.held
        guard.on_gain(sender.wake)
        app.cleanup_ctx.append(lifetime)
    else:
        app.cleanup_ctx.append(closing)
    return service


def _register_edges(
    app: web.Application, settings: Settings, service: ClientChannels, http: bool
) -> None:
    """The SMS.ru and WhatsApp webhooks hand what they parse to the domain."""
    app[CHANNEL_INBOUND] = service
    if not http:
        return
    if ChannelKind.SMS in service.channels:
        app.add_routes(smsru_routes.routes)
    if ChannelKind.WHATSAPP in service.channels:
        config = whatsapp_webhook_config(settings)
        if config is not None:
            app[WHATSAPP_WEBHOOK] = config
        else:
            log.warning(
                "WhatsApp sends work, but /whatsapp_webhook needs TRUBKA_WHATSAPP_APP_SECRET and "
                "TRUBKA_WHATSAPP_VERIFY_TOKEN: no replies or statuses arrive"
            )
        app.add_routes(whatsapp_routes.routes)


def _balance_health(core: WebCore, built: Mapping[str, Channel]) -> None:
    """/healthz names the SMS.ru balance when it has run out (checked every few minutes)."""
    sms = built.get(ChannelKind.SMS)
    if not isinstance(sms, SmsRuChannel):
        return
    channel = sms

    async def check() -> str | None:
        return await sms_balance_problem(channel)

    core.health.add("sms", check)
