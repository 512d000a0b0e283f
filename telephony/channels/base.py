"""The one channel interface: send a text or a template, say whether free text may go now, and
the provider-neutral shapes of what comes back (an incoming message, a delivery status).

Every channel (Telegram, WhatsApp Cloud API, SMS.ru) implements `Channel`; its webhook parser
turns the provider's body into `IncomingMessage`s and `DeliveryStatus`es, which the edge hands to
`ChannelInbound` (the domain stores them in the client's one dialog). Sends are rows of the one
queue engine (`storage.queue`): `OutgoingMessage.delivery_id` is the row's stable id, passed to
the provider where it takes one, so a resend after a crash is recognised and not a second SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class ChannelKind(StrEnum):
    """The identities a client can be reached by (a row of `client_channels` each)."""

    TELEGRAM = "telegram"  # address: the Telegram user id
    WHATSAPP = "whatsapp"  # address: the wa_id (the phone's digits, as our phones are)
    SMS = "sms"  # address: the normalized phone (digits, country code first)


class DeliveryState(StrEnum):
    """A sent message's fate, in every channel's words (dialog: `sms_status delivered`, …)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# WhatsApp's customer-service window: free text only this long after the client's last message.
SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class TemplateRef:
    """An approved template (WhatsApp) with its body parameters in order."""

    name: str
    language: str = "ru"
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutgoingMessage:
    """One send: exactly one of `text` and `template`. `delivery_id` is stable across retries."""

    delivery_id: str
    address: str
    text: str | None = None
    template: TemplateRef | None = None


@dataclass(frozen=True)
class SendResult:
    """What the provider answered: its own message id (statuses refer to it), the price if known."""

    provider_message_id: str | None
    cost: float | None = None
    parts: int | None = None
    balance: float | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """A message a client wrote in a channel."""

    kind: ChannelKind
    address: str
    provider_message_id: str
    text: str
    at: datetime
    profile_name: str = ""


@dataclass(frozen=True)
class DeliveryStatus:
    """A provider's word on one sent message (`provider_message_id` as `SendResult` gave it)."""

    kind: ChannelKind
    provider_message_id: str
    state: DeliveryState
    at: datetime
    code: str | None = None
    detail: str = ""


class ChannelError(Exception):
    """A send failed. `permanent`: retrying cannot help (not a WhatsApp user, no money, a closed
    window); otherwise the queue retries, after `retry_after` seconds when the provider said so."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChannelRules:
    """What a channel is: whether the client can answer in it, whether free text needs an open
    window, what a message costs the business."""

    can_reply: bool
    window: timedelta | None = None  # None: free text any time
    costs_money: bool = False
    needs_mobile: bool = False


class Channel(Protocol):
    kind: ChannelKind
    rules: ChannelRules

    def free_text_allowed(self, last_incoming_at: datetime | None, now: datetime) -> bool:
        """May a free-form text go now (else only a template)?"""
        ...

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; raises `ChannelError`. Called with no database session open."""
        ...

    async def close(self) -> None: ...


def within_window(rules: ChannelRules, last_incoming_at: datetime | None, now: datetime) -> bool:
    """The shared `free_text_allowed` rule: no window, or the client wrote within it."""
    if rules.window is None:
        return True
    return last_incoming_at is not None and now - last_incoming_at < rules.window


class ChannelInbound(Protocol):
    """What an edge hands over after parsing a channel's webhook (the domain implements it)."""

    async def messages_received(self, messages: list[IncomingMessage]) -> None: ...

    async def statuses_received(self, statuses: list[DeliveryStatus]) -> None: ...


@dataclass
class ParsedWebhook:
    """A channel webhook's body, parsed: what to hand to `ChannelInbound`."""

    messages: list[IncomingMessage] = field(default_factory=list)
    statuses: list[DeliveryStatus] = field(default_factory=list)
