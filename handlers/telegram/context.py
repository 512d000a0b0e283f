"""What the Telegram handlers need from the shell, injected into every handler as `tg`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from storage.db import Database
from storage.models import Manager
from telephony.calls.dialing import Dialers
from telephony.channels.service import ClientChannels
from telephony.events import CallObserver, FanOut, MessageObserver
from telephony.infra.clock import SYSTEM_CLOCK, Clock
from telephony.managers import manager_by_telegram
from telephony.providers.megafon import MegafonClient


class Topics(Protocol):
    """The shell's side of the managers' group: topics and the send queue."""

    async def ensure_topic(self, client_id: int) -> int | None:
        """The client's topic thread id, created when missing; None without a managers' group."""
        ...

    async def refresh(self, client_id: int) -> None:
        """The client changed (phone, merge): rename their topic and redraw the card."""
        ...

    async def retire(self, thread_id: int, client_id: int) -> None:
        """A merged-away client's topic: point it to the client's topic and close it."""
        ...

    def wake(self) -> None:
        """New deliveries were stored: send them."""
        ...


@dataclass
class TelegramContext:
    db: Database
    dialers: Dialers
    observer: CallObserver
    topics: Topics
    zone: ZoneInfo
    managers_chat_id: int | None = None
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    pbx: MegafonClient | None = None
    # Told about every client message after it is stored (the scenarios' `message` trigger).
    messages: FanOut[MessageObserver] | None = None
    # SMS / WhatsApp and the deep links (bot.channels.setup_channels); None: Telegram only.
    channels: ClientChannels | None = None
    clock: Clock = SYSTEM_CLOCK  # "today" of /missed

    def is_admin(self, user: User | None) -> bool:
        return user is not None and user.id in self.admin_ids


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ManagerMiddleware(BaseMiddleware):
    """Puts `manager` (the sender's Manager row or None) and `is_admin` into every handler."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg: TelegramContext = data["tg"]
        user: User | None = data.get("event_from_user")
        manager: Manager | None = None
        if user is not None:
            async with tg.db.session() as session:
                manager = await manager_by_telegram(session, user.id)
        data["manager"] = manager
        data["is_admin"] = tg.is_admin(user)
        return await handler(event, data)
