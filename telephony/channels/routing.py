"""Which channel a message to a client takes: one pure function (`route`), table-tested.

The order (README "Routing"):
1. `via` given (a scenario's `send_message: {via: sms}`): that channel or nothing;
2. the channel the client last wrote from, when it can carry this message now;
3. WhatsApp, when it may send now (free text inside the 24 h window, or a template);
4. SMS, when the phone is mobile (and the message has a text: a template alone cannot go);
5. Telegram, when the client has a Telegram identity;
else nothing, with the reason. Budgets, opt-out and quiet hours are checked after routing, on
the channel chosen (telephony.channels.limits).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from telephony.channels.base import SERVICE_WINDOW, ChannelKind, TemplateRef

TELEGRAM, WHATSAPP, SMS = ChannelKind.TELEGRAM, ChannelKind.WHATSAPP, ChannelKind.SMS
# Addressed by phone: a client with a phone can be reached there without having written.
BY_PHONE = (WHATSAPP, SMS)


@dataclass(frozen=True)
class Reach:
    """One identity of the client (a row of client_channels)."""

    kind: str
    address: str
    last_incoming_at: datetime | None = None


@dataclass(frozen=True)
class Ask:
    """What is to be sent: a text, a template, or a template with a text for channels without
    templates (SMS, Telegram). `via` forces a channel."""

    text: str | None = None
    template: TemplateRef | None = None
    via: ChannelKind | None = None


@dataclass(frozen=True)
class Route:
    kind: ChannelKind
    address: str
    text: str | None  # exactly one of text and template is set
    template: TemplateRef | None = None


@dataclass(frozen=True)
class NoRoute:
    reason: str  # a metric label: no_channel, window_closed, not_mobile, not_configured
    detail: str  # Russian, for the dialog


def _address(kind: ChannelKind, reach: Sequence[Reach], phone: str | None) -> str | None:
    for row in reach:
        if row.kind == kind:
            return row.address
    return phone if kind in BY_PHONE else None


def _last_incoming(kind: ChannelKind, reach: Sequence[Reach]) -> datetime | None:
    times = [r.last_incoming_at for r in reach if r.kind == kind and r.last_incoming_at]
    return max(times) if times else None


def _carry(
    kind: ChannelKind,
    ask: Ask,
    reach: Sequence[Reach],
    phone: str | None,
    mobile: bool,
    now: datetime,
) -> Route | NoRoute:
    """Whether `kind` can carry `ask` to this client now, and how."""
    address = _address(kind, reach, phone)
    if address is None:
        return NoRoute("no_channel", f"у клиента нет адреса в канале {kind}")
    if kind == WHATSAPP:
        last = _last_incoming(kind, reach)
        if ask.text is not None and last is not None and now - last < SERVICE_WINDOW:
            return Route(kind, address, ask.text)
        if ask.template is not None:
            return Route(kind, address, None, ask.template)
        return NoRoute(
            "window_closed",
            "WhatsApp: клиент не писал 24 часа, свободный текст нельзя (нужен шаблон)",
        )
    if ask.text is None:
        return NoRoute("no_text", f"шаблон WhatsApp нельзя отправить через {kind} без текста")
    if kind == SMS and not mobile:
        return NoRoute("not_mobile", "номер не мобильный, SMS на него не отправить")
    return Route(kind, address, ask.text)


def route(
    ask: Ask,
    reach: Sequence[Reach],
    *,
    phone: str | None,
    mobile: bool,
    configured: Collection[ChannelKind],
    now: datetime,
) -> Route | NoRoute:
    """The channel for `ask` (module docstring). `reach`: the client's identities; `phone`:
    their own phone (WhatsApp and SMS reach it without an identity); `mobile`: that phone is a
    mobile number; `configured`: the channels this bot has."""
    if ask.via is not None:
        if ask.via not in configured:
            return NoRoute("not_configured", f"канал {ask.via} не подключён")
        return _carry(ask.via, ask, reach, phone, mobile, now)
    wrote = [r for r in reach if r.last_incoming_at is not None and r.kind in configured]
    if wrote:
        last = max(wrote, key=lambda r: r.last_incoming_at or now)
        chosen = _carry(ChannelKind(last.kind), ask, reach, phone, mobile, now)
        if isinstance(chosen, Route):
            return chosen
    refusals: list[NoRoute] = []
    for kind in (WHATSAPP, SMS, TELEGRAM):
        if kind not in configured:
            continue
        if kind == TELEGRAM and not any(r.kind == TELEGRAM for r in reach):
            continue
        chosen = _carry(kind, ask, reach, phone, mobile, now)
        if isinstance(chosen, Route):
            return chosen
        if chosen.reason != "no_channel":
            refusals.append(chosen)
    if refusals:
        # The last one tried says why the fallback failed too (SMS: not a mobile number).
        return NoRoute(refusals[-1].reason, "; ".join(r.detail for r in refusals))
    return NoRoute("no_channel", "клиенту нечем написать: нет ни мессенджера, ни телефона")
