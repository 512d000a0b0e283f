"""Clients in Telegram: private messages go to their topic, managers' topic replies go back."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import CommandStart
from aiogram.types import (
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.telegram import texts
from handlers.telegram.context import TelegramContext
from storage.models import Client, Manager
from storage.telegram_models import TelegramTopic
from storage.telegram_queries import move_client_rows, topic_of
from storage.telegram_queue import Outgoing, enqueue
from telephony.calls.apply import append_dialog
from telephony.chats import attach_phone, messenger_client, record_message
from telephony.events import ClientMessage
from telephony.phones import InvalidPhone, format_phone

CHANNEL = "telegram"


def _summary(message: Message) -> str:
    """What the dialog keeps of a message: its text, or its kind when it has none."""
    text = message.text or message.caption
    if text:
        return text
    return f"[{message.content_type}]"


def share_phone_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=texts.SHARE_PHONE, request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def start(message: Message, tg: TelegramContext, manager: Manager | None) -> None:
    if manager is not None:
        await message.answer(texts.MANAGER_HELP)
        return
    await message.answer(texts.CLIENT_HELLO, reply_markup=share_phone_keyboard())
    user = message.from_user
    if tg.messages is not None and user is not None and message.text:
        async with tg.db.session() as session:
            client, _ = await messenger_client(session, CHANNEL, str(user.id), user.full_name)
        assert client.id is not None
        said = ClientMessage(client.id, message.text, CHANNEL)
        await tg.messages.tell(lambda observer: observer.message_received(said))


async def contact_shared(message: Message, tg: TelegramContext) -> None:
    user, contact = message.from_user, message.contact
    assert contact is not None
    if user is None or contact.user_id != user.id:
        await message.answer(texts.OWN_CONTACT_ONLY, reply_markup=share_phone_keyboard())
        return
    # Answers go out after the session closes: no network wait holds a connection.
    async with tg.db.session() as session:
        client, _ = await messenger_client(session, CHANNEL, str(user.id), user.full_name)
        assert client.id is not None
        own_topic = await topic_of(session, client.id)
        old_thread = own_topic.message_thread_id if own_topic is not None else None
        shared: Client | None = None
        try:
            shared, merged = await attach_phone(
                session, client, contact.phone_number, before_merge=move_client_rows
            )
        except InvalidPhone:
            merged = None
        if shared is not None:
            await _phone_noted(session, tg, shared, merged is not None)
    if shared is None:
        await message.answer(texts.OWN_CONTACT_ONLY)
        return
    assert shared.id is not None
    tg.topics.wake()
    await message.answer(texts.PHONE_THANKS, reply_markup=ReplyKeyboardRemove())
    await tg.topics.refresh(shared.id)
    if merged is not None and old_thread is not None:
        await tg.topics.retire(old_thread, shared.id)


async def _phone_noted(
    session: AsyncSession, tg: TelegramContext, client: Client, merged: bool
) -> None:
    """The shared phone as a dialog line and a note in the client's topic."""
    assert client.id is not None and client.phone is not None
    note = f"📱 Клиент поделился номером {format_phone(client.phone)}"
    if merged:
        note += " — это наш клиент по телефону, история звонков и переписки объединена"
    line = await append_dialog(session, client, None, "contact", note)
    _to_topic(session, tg, client.id, line.id, text=note)


async def client_wrote(message: Message, tg: TelegramContext, manager: Manager | None) -> None:
    """Anyone else writing privately is a client (managers get their help instead)."""
    user = message.from_user
    if user is None or user.is_bot:
        return
    if manager is not None:
        await message.answer(texts.MANAGER_HELP)
        return
    async with tg.db.session() as session:
        client, _ = await messenger_client(session, CHANNEL, str(user.id), user.full_name)
        line = await record_message(session, client, _summary(message), "in")
        assert client.id is not None
        _to_topic(
            session,
            tg,
            client.id,
            line.id,
            from_chat_id=message.chat.id,
            from_message_id=message.message_id,
        )
    tg.topics.wake()
    if tg.messages is not None:
        said = ClientMessage(client.id, _summary(message), CHANNEL, line.id)
        await tg.messages.tell(lambda observer: observer.message_received(said))


def _to_topic(
    session: AsyncSession,
    tg: TelegramContext,
    client_id: int,
    dialog_id: int | None,
    *,
    text: str = "",
    from_chat_id: int | None = None,
    from_message_id: int | None = None,
) -> None:
    """Queue a send into the client's topic, in the transaction that stored the dialog line."""
    if tg.managers_chat_id is None:
        return
    enqueue(
        session,
        Outgoing(
            target="topic",
            chat_id=tg.managers_chat_id,
            client_id=client_id,
            dialog_message_id=dialog_id,
            method="copy" if from_message_id is not None else "send",
            text=text,
            from_chat_id=from_chat_id,
            from_message_id=from_message_id,
        ),
    )


# Service messages (topic created, pinned …) and commands are not replies to a client.
_REPLY_CONTENT = F.content_type.in_(
    {"text", "photo", "document", "video", "voice", "audio", "sticker", "animation", "video_note"}
)


async def manager_replied(
    message: Message, tg: TelegramContext, manager: Manager | None, is_admin: bool
) -> None:
    if message.chat.id != tg.managers_chat_id or (manager is None and not is_admin):
        return
    if message.from_user is None or message.from_user.is_bot:
        return
    async with tg.db.session() as session:
        topic = (
            await session.exec(
                select(TelegramTopic).where(
                    TelegramTopic.chat_id == message.chat.id,
                    TelegramTopic.message_thread_id == message.message_thread_id,
                )
            )
        ).first()
        client = await session.get(Client, topic.client_id) if topic is not None else None
        if client is None:
            return
        reachable = client.channel == CHANNEL and bool(client.external_id)
        if reachable:
            await _reply_queued(session, client, message)
    if not reachable:  # answered after the session closes
        await message.reply(texts.CANNOT_REPLY)
        return
    tg.topics.wake()


async def _reply_queued(session: AsyncSession, client: Client, message: Message) -> None:
    """A manager's reply in the topic: a dialog line and a copy queued to the client."""
    assert client.external_id is not None
    line = await record_message(session, client, _summary(message), "out")
    enqueue(
        session,
        Outgoing(
            target="chat",
            chat_id=int(client.external_id),
            client_id=client.id,
            dialog_message_id=line.id,
            method="copy",
            from_chat_id=message.chat.id,
            from_message_id=message.message_id,
        ),
    )


def build_private_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    private = Router(name="private chats")
    private.message.filter(F.chat.type == ChatType.PRIVATE)
    private.message.register(start, CommandStart())
    private.message.register(contact_shared, F.contact)
    private.message.register(client_wrote)
    return private


def build_group_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    group = Router(name="managers group")
    group.message.register(
        manager_replied, F.message_thread_id, _REPLY_CONTENT, ~F.text.startswith("/")
    )
    return group
