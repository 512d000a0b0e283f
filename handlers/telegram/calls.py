"""Managers calling clients: the 📞 and 🔄 buttons, /call, /client, /calls, /missed."""

from __future__ import annotations

from datetime import datetime, time

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlmodel import col, select

from handlers.telegram import texts
from handlers.telegram.arguments import manager_argument
from handlers.telegram.cards import ClientAction, call_button, render_card
from handlers.telegram.context import TelegramContext
from storage.models import Call, Client, Manager
from storage.queries import recent_calls
from storage.telegram_models import TelegramTopic
from telephony.calls.dialing import CallRequestError, ManagerCannotCall, place_manager_call
from telephony.calls.outcome import CallOutcome
from telephony.clients import find_client_by_phone
from telephony.phones import InvalidPhone, normalize_phone
from telephony.providers.megafon import PbxError

LIST_LIMIT = 15
# The managers' missed list: CallOutcome's missed (an ACCEPTED voicemail included).
MISSED = CallOutcome.sql(Call.__table__).missed  # type: ignore[attr-defined]


async def dial(tg: TelegramContext, manager: Manager, phone: str) -> tuple[str, bool]:
    """Place the manager's call. (text for the manager, whether it is a refusal)."""
    try:
        await place_manager_call(tg.db, tg.dialers, manager, phone, tg.observer)
    except ManagerCannotCall as exc:
        if exc.reason == "app":
            return texts.call_app(normalize_phone(phone)), False
        if exc.reason == "disabled":
            return texts.CALL_DISABLED, True
        return texts.CALL_UNBOUND, True
    except PbxError as exc:
        return texts.pbx_refused(exc.message), True
    except CallRequestError as exc:
        return texts.call_failed(str(exc)), True
    return texts.CALL_STARTED, False


async def call_button_tapped(
    callback: CallbackQuery,
    callback_data: ClientAction,
    tg: TelegramContext,
    manager: Manager | None,
) -> None:
    if manager is None:
        await callback.answer(texts.NOT_A_MANAGER, show_alert=True)
        return
    async with tg.db.session() as session:
        client = await session.get(Client, callback_data.client_id)
    if client is None or not client.phone:
        await callback.answer(texts.NO_PHONE if client else texts.CLIENT_NOT_FOUND, show_alert=True)
        return
    text, refused = await dial(tg, manager, client.phone)
    await callback.answer(text, show_alert=refused)
    if manager.call_mode == "app" and isinstance(callback.message, Message):
        # A number in message text is a link the phone can dial; Telegram allows no tel: buttons.
        await callback.message.answer(text)


async def refresh_tapped(
    callback: CallbackQuery,
    callback_data: ClientAction,
    tg: TelegramContext,
    manager: Manager | None,
    is_admin: bool,
) -> None:
    if manager is None and not is_admin:
        await callback.answer(texts.NOT_A_MANAGER, show_alert=True)
        return
    async with tg.db.session() as session:
        client = await session.get(Client, callback_data.client_id)
        card = await render_card(session, client, tg.zone) if client is not None else None
    if card is None:
        await callback.answer(texts.CLIENT_NOT_FOUND, show_alert=True)
        return
    if isinstance(callback.message, Message):
        text, keyboard = card
        await callback.message.edit_text(text, reply_markup=keyboard, parse_mode="HTML")
    await callback.answer(texts.REFRESHED)


async def call_command(
    message: Message, command: CommandObject, tg: TelegramContext, manager: Manager | None
) -> None:
    given = await manager_argument(message, command, manager, texts.USAGE_CALL)
    if given is None:
        return
    manager, raw = given
    try:
        normalize_phone(raw)
    except InvalidPhone:
        await message.answer(texts.bad_phone(raw))
        return
    text, _ = await dial(tg, manager, raw)
    await message.answer(text)


async def client_command(
    message: Message, command: CommandObject, tg: TelegramContext, manager: Manager | None
) -> None:
    given = await manager_argument(message, command, manager, texts.USAGE_CLIENT)
    if given is None:
        return
    manager, raw = given
    try:
        async with tg.db.session() as session:
            client = await find_client_by_phone(session, raw)
    except InvalidPhone:
        await message.answer(texts.bad_phone(raw))
        return
    if client is None or client.id is None:
        await message.answer(texts.CLIENT_NOT_FOUND)
        return
    if tg.managers_chat_id is None:
        await message.answer(texts.NO_TOPICS)
        return
    thread_id = await tg.topics.ensure_topic(client.id)
    if thread_id is None:
        await message.answer(texts.NO_TOPICS)
        return
    link = texts.topic_link(tg.managers_chat_id, thread_id)
    await message.answer(f"{texts.client_label(client)}: {link}")


async def _topic_client(tg: TelegramContext, message: Message) -> int | None:
    """The client whose topic this message is in, if any."""
    if message.chat.id != tg.managers_chat_id or not message.message_thread_id:
        return None
    async with tg.db.session() as session:
        row = (
            await session.exec(
                select(TelegramTopic).where(
                    TelegramTopic.chat_id == message.chat.id,
                    TelegramTopic.message_thread_id == message.message_thread_id,
                )
            )
        ).first()
    return row.client_id if row is not None else None


async def calls_command(message: Message, tg: TelegramContext, manager: Manager | None) -> None:
    """Recent calls; inside a client's topic, that client's."""
    if manager is None:
        await message.answer(texts.NOT_A_MANAGER)
        return
    client_id = await _topic_client(tg, message)
    async with tg.db.session() as session:
        if client_id is not None:
            calls = list(
                (
                    await session.exec(
                        select(Call)
                        .where(Call.client_id == client_id)
                        .order_by(col(Call.created_at).desc(), col(Call.id).desc())
                        .limit(LIST_LIMIT)
                    )
                ).all()
            )
        else:
            calls = await recent_calls(session, limit=LIST_LIMIT)
    if not calls:
        await message.answer(texts.NO_CALLS)
        return
    await message.answer("\n".join(texts.call_line(call, tg.zone) for call in calls))


async def missed_command(message: Message, tg: TelegramContext, manager: Manager | None) -> None:
    """Today's missed inbound calls, each with a call-back button."""
    if manager is None:
        await message.answer(texts.NOT_A_MANAGER)
        return
    today = tg.clock.now().astimezone(tg.zone).date()
    midnight = datetime.combine(today, time.min, tzinfo=tg.zone)
    async with tg.db.session() as session:
        calls = list(
            (
                await session.exec(
                    select(Call)
                    .where(MISSED, col(Call.created_at) >= midnight)
                    .order_by(col(Call.created_at).desc(), col(Call.id).desc())
                    .limit(LIST_LIMIT)
                )
            ).all()
        )
    if not calls:
        await message.answer(texts.NO_MISSED)
        return
    buttons = [
        [call_button(call.client_id, f"📞 {texts.call_line(call, tg.zone)}"[:60])]
        for call in calls
        if call.client_id is not None
    ]
    lines = ["Пропущенные сегодня:", *(texts.call_line(call, tg.zone) for call in calls)]
    await message.answer(
        "\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
    )


def build_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    router = Router(name="calls")
    router.callback_query.register(call_button_tapped, ClientAction.filter(F.action == "call"))
    router.callback_query.register(refresh_tapped, ClientAction.filter(F.action == "refresh"))
    router.message.register(call_command, Command("call"))
    router.message.register(client_command, Command("client"))
    router.message.register(calls_command, Command("calls"))
    router.message.register(missed_command, Command("missed"))
    return router
