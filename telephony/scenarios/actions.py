"""What a scenario's actions do outside the engine: Telegram sends, PBX calls, leads."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Client
from storage.telegram_queue import Outgoing, enqueue
from telephony.calls.apply import append_dialog
from telephony.chats import record_message
from telephony.clients import identities_of

log = logging.getLogger(__name__)

TELEGRAM = "telegram"


class ActionFailed(Exception):
    """An action could not be done (the PBX refused, no such client); the message says why."""


@dataclass
class TelegramOutlet:
    """The Telegram send queue: rows stored in the caller's transaction, then `wake()`."""

    managers_chat_id: int | None
    wake: Callable[[], None]


async def telegram_chat(session: AsyncSession, client: Client) -> str | None:
    """The client's Telegram user id (their private chat with the bot), None without one."""
    if client.id is None:
        return None
    found = [row for row in await identities_of(session, client.id) if row.kind == TELEGRAM]
    return found[-1].address if found else None


async def queue_client_message(
    session: AsyncSession,
    outlet: TelegramOutlet,
    client: Client,
    chat: str,
    text: str,
    rule: str,
) -> None:
    """The same path as a manager's reply: the dialog line first, then the queued send.
    Managers see in the client's topic what the bot sent. (Without SMS / WhatsApp channels
    configured; with them, telephony.channels.service routes every message.)"""
    assert client.id is not None
    line = await record_message(session, client, text, "out")
    enqueue(
        session,
        Outgoing(
            target="chat",
            chat_id=int(chat),
            client_id=client.id,
            dialog_message_id=line.id,
            text=html.escape(text, quote=False),
        ),
    )
    if outlet.managers_chat_id is not None:
        enqueue(
            session,
            Outgoing(
                target="topic",
                chat_id=outlet.managers_chat_id,
                client_id=client.id,
                text=f"🤖 Сценарий «{html.escape(rule)}» → клиенту:\n"
                + html.escape(text, quote=False),
            ),
        )


async def queue_topic_note(
    session: AsyncSession, outlet: TelegramOutlet | None, client: Client, text: str
) -> None:
    """A note into the client's topic, kept in their dialog too."""
    assert client.id is not None
    line = await append_dialog(session, client, None, "note", text)
    if outlet is None or outlet.managers_chat_id is None:
        log.warning("notify_managers: no Telegram managers' group; the note is in the dialog only")
        return
    enqueue(
        session,
        Outgoing(
            target="topic",
            chat_id=outlet.managers_chat_id,
            client_id=client.id,
            dialog_message_id=line.id,
            text=html.escape(text, quote=False),
        ),
    )
