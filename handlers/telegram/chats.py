"""Clients in Telegram: private messages go to their topic, managers' topic replies go back."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.telegram import texts
from handlers.telegram.context import TelegramContext
from storage.models import Client, Manager
from storage.telegram_models import TelegramTopic
from storage.telegram_queries import move_client_rows, topic_of
from storage.telegram_queue import Outgoing, enqueue
from storage.types import utcnow
from telephony.calls.apply import append_dialog
from telephony.channels.deeplink import looks_like_link_token
from telephony.channels.limits import is_stop_word
from telephony.channels.routing import Ask
from telephony.channels.service import MANAGER, record_opt_out
from telephony.chats import attach_phone, merge_clients, messenger_client, record_message
from telephony.clients import (
    add_identity,
    channel_of,
    client_by_identity,
    identities_of,
    wrote_from,
)
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


async def start(
    message: Message, tg: TelegramContext, manager: Manager | None, command: CommandObject
) -> None:
    if manager is not None:
        await message.answer(texts.MANAGER_HELP)
        return
    user = message.from_user
    token = (command.args or "").strip()
    if user is not None and tg.channels is not None and looks_like_link_token(token):
        await _linked(message, tg, user, token)
        return
    await message.answer(texts.CLIENT_HELLO, reply_markup=share_phone_keyboard())
    if user is not None and message.text:
        async with tg.db.session() as session:
            client, _ = await messenger_client(session, CHANNEL, str(user.id), user.full_name)
            await wrote_from(session, CHANNEL, str(user.id), utcnow())
        assert client.id is not None
        if tg.messages is not None:
            said = ClientMessage(client.id, message.text, CHANNEL)
            await tg.messages.tell(lambda observer: observer.message_received(said))


async def _linked(message: Message, tg: TelegramContext, user: User, token: str) -> None:
    """`/start <token>` from a link in an SMS or WhatsApp message: this Telegram user is the
    client the token names. An earlier Telegram-only client of this user merges into it."""
    assert tg.channels is not None
    links = tg.channels.links
    client_id = links.client_of(token, utcnow()) if links is not None else None
    old_thread: int | None = None
    async with tg.db.session() as session:
        client = await session.get(Client, client_id) if client_id is not None else None
        if client is not None and client.id is not None:
            address = str(user.id)
            earlier = await client_by_identity(session, CHANNEL, address)
            if earlier is None:
                await add_identity(session, client, CHANNEL, address)
            elif earlier.id != client.id:
                assert earlier.id is not None
                earlier_topic = await topic_of(session, earlier.id)
                old_thread = earlier_topic.message_thread_id if earlier_topic else None
                await move_client_rows(session, earlier.id, client.id)
                await merge_clients(session, survivor=client, absorbed=earlier)
            await wrote_from(session, CHANNEL, address, utcnow())
            if not client.name:
                client.name = user.full_name[:300]
                session.add(client)
            line = await append_dialog(session, client, None, "telegram_linked", texts.LINKED_NOTE)
            _to_topic(session, tg, client.id, line.id, text=texts.LINKED_NOTE)
    if client is None or client.id is None:
        await message.answer(texts.LINK_EXPIRED, reply_markup=share_phone_keyboard())
        return
    tg.topics.wake()
    await message.answer(texts.LINKED)
    await tg.topics.refresh(client.id)
    if old_thread is not None:
        await tg.topics.retire(old_thread, client.id)
    if tg.messages is not None and message.text:
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
        await wrote_from(session, CHANNEL, str(user.id), utcnow())
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
        await wrote_from(session, CHANNEL, str(user.id), utcnow())
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
        if message.text and is_stop_word(message.text):
            stop = await record_opt_out(session, client)
            _to_topic(session, tg, client.id, stop.id, text=stop.text)
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
        if client is None or client.id is None:
            return
        identities = await identities_of(session, client.id)
        telegram = next((row for row in identities if row.kind == CHANNEL), None)
        # Another channel when the client last wrote there (WhatsApp), or has no Telegram.
        routed = tg.channels is not None and (telegram is None or channel_of(identities) != CHANNEL)
        answer: str | None = None
        if routed and tg.channels is not None:
            if not message.text:
                answer = texts.TEXT_ONLY
            else:
                sent = await tg.channels.send(
                    session,
                    client,
                    Ask(text=message.text),
                    origin=MANAGER,
                    urgent=True,
                    transactional=True,
                )
                if sent.refusal is not None:
                    answer = texts.NOT_SENT.format(reason=sent.refusal)
        elif telegram is not None:
            await _reply_queued(session, client, telegram.address, message)
        else:
            answer = texts.CANNOT_REPLY
    if answer is not None:  # answered after the session closes
        await message.reply(answer)
    if tg.channels is not None:
        tg.channels.wake()
    tg.topics.wake()


async def _reply_queued(
    session: AsyncSession, client: Client, chat_id: str, message: Message
) -> None:
    """A manager's reply in the topic: a dialog line and a copy queued to the client."""
    line = await record_message(session, client, _summary(message), "out")
    enqueue(
        session,
        Outgoing(
            target="chat",
            chat_id=int(chat_id),
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
