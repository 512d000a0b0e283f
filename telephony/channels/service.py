"""The domain's one door for messages to and from clients in every channel.

Out (`send`): a scenario's `send_message` / `send_template` and a manager's reply in the
client's topic are routed (telephony.channels.routing), checked (telephony.channels.limits),
then stored in the caller's transaction with their dialog line: Telegram through its send
queue (storage.telegram_queue: the Telegram channel's per-chat budgets live in its scheduler),
SMS and WhatsApp as rows of the channel queue (storage.channel_queue) that the channel sender
(telephony.channels.sender) delivers. A refusal is a dialog line, a note in the topic and a
metric; nothing is refused silently.

In (`ChannelInbound`): incoming messages (deduplicated by the provider's message id) find or
create their client by identity or phone, land in the one dialog and the managers' topic, and
fire the scenarios' `message` trigger; «СТОП» opts the client out. Delivery statuses move the
delivery forward (unknown ids are ignored), write `sms_status delivered`-style dialog lines and
fire the `delivery_status` trigger.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.channel_models import ChannelDelivery
from storage.channel_queue import (
    STATE_ORDER,
    by_provider_id,
    first_time_seen,
    give_back,
    set_state,
    take_counter,
)
from storage.channel_queue import enqueue as enqueue_delivery
from storage.db import Database
from storage.models import Client, DialogMessage
from storage.telegram_queue import Outgoing
from storage.telegram_queue import enqueue as enqueue_telegram
from telephony.calls.apply import append_dialog
from telephony.channels.base import (
    Channel,
    ChannelKind,
    DeliveryState,
    DeliveryStatus,
    IncomingMessage,
)
from telephony.channels.deeplink import TelegramLinks
from telephony.channels.limits import COSTLY, OPT_OUT_VARIABLE, Limits, is_stop_word, opted_out
from telephony.channels.routing import BY_PHONE, Ask, NoRoute, Reach, Route, route
from telephony.chats import record_message
from telephony.clients import (
    add_identity,
    client_by_identity,
    get_variables,
    identities_of,
    identity,
    match_or_create_client,
    set_variables,
    wrote_from,
)
from telephony.events import ClientMessage, FanOut, MessageObserver
from telephony.infra.clock import Clock, SystemClock
from telephony.phones import InvalidPhone, is_mobile, normalize_phone
from telephony.scenarios.actions import TelegramOutlet

log = logging.getLogger("trubka.channels")

NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "telegram": "Telegram"}
MANAGER = "manager"  # `origin` of a manager's reply


def channel_name(kind: str) -> str:
    return NAMES.get(kind, kind)


class ChannelMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.refusals = Counter(
            "trubka_channel_refusals",
            "Messages to clients not sent, by channel (none: no channel could) and reason "
            "(opt_out, client_cap, sms_budget, not_mobile, window_closed, no_channel, …)",
            ["channel", "reason"],
            registry=registry,
        )
        self.sends = Counter(
            "trubka_channel_sends",
            "SMS / WhatsApp sends by channel and outcome (sent, failed, uncertain, retry)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.incoming = Counter(
            "trubka_channel_incoming",
            "Incoming client messages and delivery statuses by channel and kind",
            ["channel", "kind"],
            registry=registry,
        )


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery's new state (the `delivery_status` trigger)."""

    client_id: int
    kind: str
    state: str
    delivery_id: str
    code: str | None = None
    detail: str = ""


class DeliveryObserver(Protocol):
    async def delivery_status(self, update: DeliveryUpdate) -> None: ...


@dataclass(frozen=True)
class Sent:
    """What `send` did: queued to `kind` (due at `due`), or refused (`refusal` says why)."""

    kind: str | None
    refusal: str | None = None
    reason: str | None = None
    due: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass
class ClientChannels:
    """Sending to clients through every channel; the domain's `ChannelInbound`."""

    db: Database
    channels: Mapping[str, Channel]  # SMS / WhatsApp clients by kind (only the configured)
    limits: Limits
    telegram: TelegramOutlet | None = None
    links: TelegramLinks | None = None
    clock: Clock = field(default_factory=SystemClock)
    metrics: ChannelMetrics = field(default_factory=ChannelMetrics)
    # Told about every incoming client message (the scenarios' `message` trigger, a site
    # link's visit code): the app's one message fan-out.
    messages: FanOut[MessageObserver] | None = None
    observers: list[DeliveryObserver] = field(default_factory=list)
    wake_sender: Any = None  # Callable[[], None]: the channel sender's wake

    # --- what is configured -----------------------------------------------------------------

    @property
    def configured(self) -> frozenset[ChannelKind]:
        kinds = {ChannelKind(kind) for kind in self.channels}
        if self.telegram is not None:
            kinds.add(ChannelKind.TELEGRAM)
        return frozenset(kinds)

    @property
    def phone_kinds(self) -> tuple[str, ...]:
        """Configured channels addressed by phone: a new caller is reachable by these."""
        return tuple(kind for kind in BY_PHONE if kind in self.channels)

    def wake(self) -> None:
        if self.wake_sender is not None:
            self.wake_sender()
        if self.telegram is not None:
            self.telegram.wake()

    def telegram_link(self, client_id: int) -> str | None:
        return self.links.link(client_id, self.clock.now()) if self.links else None

    # --- out ----------------------------------------------------------------------------------

    async def send(
        self,
        session: AsyncSession,
        client: Client,
        ask: Ask,
        *,
        origin: str,
        urgent: bool = False,
        transactional: bool = False,
    ) -> Sent:
        """Route, check and queue one message in the caller's transaction; call `wake()` after
        the commit. `origin`: the rule's name, or MANAGER (a reply: transactional, urgent)."""
        assert client.id is not None
        now = self.clock.now()
        variables = await get_variables(session, client.id)
        if not transactional and opted_out(variables):
            return await self._refuse(
                session, client, ask.via, "opt_out", "клиент отказался от сообщений (СТОП)"
            )
        reach = [
            Reach(row.kind, row.address, row.last_incoming_at)
            for row in await identities_of(session, client.id)
        ]
        chosen = route(
            ask,
            reach,
            phone=client.phone,
            mobile=bool(client.phone) and is_mobile(client.phone or ""),
            configured=self.configured,
            now=now,
        )
        if isinstance(chosen, NoRoute):
            return await self._refuse(session, client, ask.via, chosen.reason, chosen.detail)
        due = now
        if chosen.kind in COSTLY and not urgent:
            morning = self.limits.quiet_until(now)
            if morning is not None:
                due = morning
        if chosen.kind in COSTLY:
            refused = await self._budgets(session, client, chosen.kind, due)
            if refused is not None:
                return await self._refuse(session, client, chosen.kind, *refused)
        await self._queue(session, client, chosen, origin=origin, due=due)
        return Sent(chosen.kind, due=due)

    async def _budgets(
        self, session: AsyncSession, client: Client, kind: str, due: datetime
    ) -> tuple[str, str] | None:
        day, limits = self.limits.day(due), self.limits
        sms = kind == ChannelKind.SMS and limits.sms_daily > 0
        if sms and not await take_counter(session, "sms", day, limits.sms_daily):
            return "sms_budget", f"дневной лимит SMS бота ({limits.sms_daily}) исчерпан"
        key = f"client:{client.id}"
        if limits.client_daily > 0 and not await take_counter(
            session, key, day, limits.client_daily
        ):
            if sms:
                await give_back(session, "sms", day)  # this SMS will not go after all
            return "client_cap", f"лимит сообщений клиенту в день ({limits.client_daily}) исчерпан"
        return None

    async def _queue(
        self, session: AsyncSession, client: Client, chosen: Route, *, origin: str, due: datetime
    ) -> None:
        assert client.id is not None
        shown = chosen.text if chosen.text is not None else _template_line(chosen)
        line = await record_message(session, client, shown, "out")
        if chosen.kind == ChannelKind.TELEGRAM:
            assert self.telegram is not None and chosen.text is not None
            enqueue_telegram(
                session,
                Outgoing(
                    target="chat",
                    chat_id=int(chosen.address),
                    client_id=client.id,
                    dialog_message_id=line.id,
                    text=html.escape(chosen.text, quote=False),
                ),
            )
        else:
            # Reached by phone from now on: the Salebot order's "a client of that messenger".
            if await identity(session, chosen.kind, chosen.address) is None:
                await add_identity(session, client, chosen.kind, chosen.address)
            template = None
            if chosen.template is not None:
                template = {
                    "name": chosen.template.name,
                    "language": chosen.template.language,
                    "params": list(chosen.template.params),
                }
            await enqueue_delivery(
                session,
                client_id=client.id,
                kind=chosen.kind,
                address=chosen.address,
                text=chosen.text,
                template=template,
                origin=origin,
                due=due,
            )
        if origin == MANAGER:
            return  # the manager's own message is in the topic already
        note = f"🤖 Сценарий «{html.escape(origin)}» → клиенту ({channel_name(chosen.kind)})"
        if due > self.clock.now():
            local = due.astimezone(self.limits.zone)
            note += f", отложено до {local:%H:%M} (тихие часы)"
        self._topic(session, client.id, None, note + ":\n" + html.escape(shown, quote=False))

    async def _refuse(
        self, session: AsyncSession, client: Client, kind: str | None, reason: str, detail: str
    ) -> Sent:
        self.metrics.refusals.labels(kind or "none", reason).inc()
        what = channel_name(kind) if kind else "Сообщение"
        text = f"{what} не отправлено: {detail}"
        line = await append_dialog(session, client, None, "channel_refused", text)
        assert client.id is not None
        self._topic(session, client.id, line.id, "⚠️ " + html.escape(text, quote=False))
        log.info("channels: client %s: %s (%s)", client.id, reason, kind or "-")
        return Sent(kind, refusal=text, reason=reason)

    def _topic(self, session: AsyncSession, client_id: int, line_id: int | None, text: str) -> None:
        if self.telegram is None or self.telegram.managers_chat_id is None:
            return
        enqueue_telegram(
            session,
            Outgoing(
                target="topic",
                chat_id=self.telegram.managers_chat_id,
                client_id=client_id,
                dialog_message_id=line_id,
                text=text,
            ),
        )

    # --- in -----------------------------------------------------------------------------------

    async def messages_received(self, messages: list[IncomingMessage]) -> None:
        for message in messages:
            self.metrics.incoming.labels(message.kind, "message").inc()
            taken = await self._take_message(message)
            if taken is None:
                continue
            self.wake()
            if self.messages is not None:
                await self._tell(self.messages, taken)

    @staticmethod
    async def _tell(observers: FanOut[MessageObserver], message: ClientMessage) -> None:
        await observers.tell(lambda observer: observer.message_received(message))

    async def _take_message(self, message: IncomingMessage) -> ClientMessage | None:
        kind = str(message.kind)
        async with self.db.session() as session:
            if not await first_time_seen(session, kind, message.provider_message_id):
                return None  # a repeated webhook
            client = await self._client_of(session, kind, message.address, message.profile_name)
            assert client.id is not None
            await wrote_from(session, kind, message.address, message.at)
            line = await record_message(session, client, message.text, "in")
            topic = f"💬 {channel_name(kind)}: " + html.escape(message.text, quote=False)
            self._topic(session, client.id, line.id, topic)
            if is_stop_word(message.text):
                stop = await record_opt_out(session, client)
                self._topic(session, client.id, stop.id, stop.text)
            return ClientMessage(client.id, message.text, kind, line.id)

    async def _client_of(
        self, session: AsyncSession, kind: str, address: str, name: str
    ) -> Client:
        """By identity; else (WhatsApp, SMS: the address is a phone) by phone, the Salebot
        way, given that identity; else a new client."""
        client = await client_by_identity(session, kind, address)
        if client is None:
            try:
                phone = normalize_phone(address)
            except InvalidPhone:
                phone = None
            if phone is not None:
                client, _ = await match_or_create_client(
                    session, phone, reachable_by=self.phone_kinds
                )
            else:
                client = Client(name=name)
                session.add(client)
                await session.flush()
            await add_identity(session, client, kind, address)
        if name and not client.name:
            client.name = name[:300]
            session.add(client)
        return client

    async def statuses_received(self, statuses: list[DeliveryStatus]) -> None:
        for status in statuses:
            self.metrics.incoming.labels(status.kind, "status").inc()
            update = await self._take_status(status)
            if update is not None:
                self.wake()
                await self.notify(update)

    async def _take_status(self, status: DeliveryStatus) -> DeliveryUpdate | None:
        kind, state = str(status.kind), str(status.state)
        async with self.db.session() as session:
            row = await by_provider_id(session, kind, status.provider_message_id)
            if row is None or row.id is None or row.client_id is None:
                log.debug("channels: a %s status for an unknown message; ignored", kind)
                return None
            if STATE_ORDER.get(state, 0) <= STATE_ORDER.get(row.state, 0):
                return None  # a repeat, or late news of an earlier step
            await set_state(session, row.id, state)
            client = await session.get(Client, row.client_id)
            if client is None:
                return None
            await append_dialog(session, client, None, f"{kind}_status", f"{kind}_status {state}")
            if state == DeliveryState.FAILED:
                why = " ".join(part for part in (status.code or "", status.detail) if part)
                self._topic(
                    session,
                    row.client_id,
                    None,
                    f"⚠️ {channel_name(kind)}: сообщение не доставлено"
                    + (f" ({html.escape(why)})" if why else ""),
                )
            return DeliveryUpdate(
                row.client_id, kind, state, row.delivery_id, status.code, status.detail
            )

    async def notify(self, update: DeliveryUpdate) -> None:
        for observer in self.observers:
            try:
                await observer.delivery_status(update)
            except Exception:
                log.exception("delivery observer %r failed", observer)

    # --- what the sender reports ---------------------------------------------------------------

    async def delivery_ended(self, row: ChannelDelivery, state: str, reason: str) -> None:
        """A send the sender gave up on (refused for good, out of attempts, uncertain): a line
        in the dialog, a note in the topic, the trigger."""
        if row.client_id is None:
            return
        async with self.db.session() as session:
            client = await session.get(Client, row.client_id)
            if client is None:
                return
            name = channel_name(row.kind)
            if state == "uncertain":
                text = f"{name}: {reason}"
            else:
                text = f"{name} не отправлено: {reason}"
            line = await append_dialog(session, client, None, f"{row.kind}_status", text)
            self._topic(session, row.client_id, line.id, "⚠️ " + html.escape(text, quote=False))
        self.wake()
        await self.notify(DeliveryUpdate(row.client_id, row.kind, state, row.delivery_id))


OPTED_OUT_NOTE = "🚫 Клиент написал «СТОП»: рассылки и сценарии ему больше не пишут"


async def record_opt_out(session: AsyncSession, client: Client) -> DialogMessage:
    """The client wrote «СТОП» in a channel that can answer: the `opt_out` variable and a line."""
    await set_variables(session, client, {OPT_OUT_VARIABLE: "yes"})
    return await append_dialog(session, client, None, "opt_out", OPTED_OUT_NOTE)


def _template_line(chosen: Route) -> str:
    assert chosen.template is not None
    params = ", ".join(chosen.template.params)
    return f"[шаблон WhatsApp {chosen.template.name}" + (f": {params}]" if params else "]")


def template_json(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None
