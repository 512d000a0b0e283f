"""Admins add and remove managers; a manager binds a PBX identity and a call mode (/me)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from handlers.telegram import texts
from handlers.telegram.arguments import manager_argument
from handlers.telegram.cards import ManagerAction
from handlers.telegram.context import TelegramContext
from storage.models import Manager
from telephony.managers import (
    CALL_MODES,
    add_manager,
    bind_pbx,
    list_managers,
    manager_by_telegram,
    remove_manager,
    set_call_mode,
)
from telephony.megafon import PbxError, PbxUser
from telephony.phones import Extension, InvalidPhone, parse_party

_MAX_LOGIN = 40  # callback_data holds at most 64 bytes


def _target(message: Message, args: str | None) -> tuple[int, str] | None:
    """Whom an admin command is about: the replied-to person, or an id (and a name) given."""
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and not reply.from_user.is_bot:
        return reply.from_user.id, reply.from_user.full_name
    parts = (args or "").split(maxsplit=1)
    if not parts or not parts[0].lstrip("-").isdigit():
        return None
    return int(parts[0]), parts[1].strip() if len(parts) > 1 else ""


async def _admin_target(
    message: Message, command: CommandObject, is_admin: bool, usage: str
) -> tuple[int, str] | None:
    """The target of an admin command; otherwise answer why and return None."""
    if not is_admin:
        await message.answer(texts.ADMINS_ONLY)
        return None
    target = _target(message, command.args)
    if target is None:
        await message.answer(usage)
    return target


async def add_command(
    message: Message, command: CommandObject, tg: TelegramContext, is_admin: bool
) -> None:
    target = await _admin_target(message, command, is_admin, texts.USAGE_ADD)
    if target is None:
        return
    async with tg.db.session() as session:
        manager, created = await add_manager(session, target[0], target[1])
    await message.answer(texts.manager_added(manager, created))


async def remove_command(
    message: Message, command: CommandObject, tg: TelegramContext, is_admin: bool
) -> None:
    target = await _admin_target(message, command, is_admin, texts.USAGE_DEL)
    if target is None:
        return
    async with tg.db.session() as session:
        removed = await remove_manager(session, target[0])
    await message.answer(texts.manager_removed(removed, target[0]))


async def list_command(message: Message, tg: TelegramContext, is_admin: bool) -> None:
    if not is_admin:
        await message.answer(texts.ADMINS_ONLY)
        return
    async with tg.db.session() as session:
        managers = await list_managers(session)
    await message.answer(texts.managers_list(managers))


def settings_keyboard() -> InlineKeyboardMarkup:
    modes = [
        InlineKeyboardButton(
            text=("🚫 " if mode == "disabled" else "📱 " if mode == "app" else "☎️ ")
            + {"disabled": "Выкл", "app": "Приложение", "api": "АТС"}[mode],
            callback_data=ManagerAction(action="mode", value=mode).pack(),
        )
        for mode in CALL_MODES
    ]
    users = InlineKeyboardButton(
        text="👥 Выбрать логин АТС", callback_data=ManagerAction(action="users", value="").pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[modes, [users]])


async def me_command(message: Message, manager: Manager | None) -> None:
    if manager is None:
        await message.answer(texts.NOT_A_MANAGER)
        return
    await message.answer(texts.manager_settings(manager), reply_markup=settings_keyboard())


async def pbx_command(
    message: Message, command: CommandObject, tg: TelegramContext, manager: Manager | None
) -> None:
    """Bind by hand: a login (letters), an extension (short digits) or a direct number."""
    given = await manager_argument(message, command, manager, texts.USAGE_PBX)
    if given is None:
        return
    manager, raw = given
    login: str | None = None
    ext: str | None = None
    telnum: str | None = None
    try:
        party = parse_party(raw)
        if isinstance(party, Extension):
            ext = party.number
        else:
            telnum = party
    except InvalidPhone:
        login = raw
    async with tg.db.session() as session:
        current = await manager_by_telegram(session, manager.telegram_user_id or 0)
        assert current is not None
        try:
            bound = await bind_pbx(session, current, login=login, ext=ext, telnum=telnum)
        except ValueError as exc:
            await message.answer(str(exc))
            return
    await message.answer(texts.manager_settings(bound), reply_markup=settings_keyboard())


async def settings_tapped(
    callback: CallbackQuery,
    callback_data: ManagerAction,
    tg: TelegramContext,
    manager: Manager | None,
) -> None:
    if manager is None or manager.telegram_user_id is None:
        await callback.answer(texts.NOT_A_MANAGER, show_alert=True)
        return
    if callback_data.action == "users":
        await _offer_pbx_users(callback, tg)
        return
    # Asked before the session opens: no network await inside a transaction.
    user = await _pbx_user(tg, callback_data.value) if callback_data.action == "pbx" else None
    async with tg.db.session() as session:
        current = await manager_by_telegram(session, manager.telegram_user_id)
        assert current is not None
        if callback_data.action == "mode" and callback_data.value in CALL_MODES:
            mode = callback_data.value
            current = await set_call_mode(session, current, mode)
        elif callback_data.action == "pbx":
            try:
                current = await bind_pbx(
                    session,
                    current,
                    login=callback_data.value,
                    ext=user.ext if user else None,
                    telnum=user.telnum if user else None,
                    name=user.name if user else None,
                )
            except ValueError as exc:
                await callback.answer(str(exc), show_alert=True)
                return
        text = texts.manager_settings(current)
    if isinstance(callback.message, Message):
        await callback.message.edit_text(text, reply_markup=settings_keyboard())
    await callback.answer("Сохранено")


async def _pbx_user(tg: TelegramContext, login: str) -> PbxUser | None:
    if tg.pbx is None:
        return None
    try:
        users = await tg.pbx.users()
    except PbxError:
        return None
    return next((user for user in users if user.login == login), None)


async def _offer_pbx_users(callback: CallbackQuery, tg: TelegramContext) -> None:
    """The PBX's own user list as buttons, so nobody types a login by hand."""
    if tg.pbx is None:
        await callback.answer(texts.PBX_NOT_CONFIGURED, show_alert=True)
        return
    try:
        users = await tg.pbx.users()
    except PbxError as exc:
        await callback.answer(texts.pbx_refused(exc.message), show_alert=True)
        return
    buttons = [
        [
            InlineKeyboardButton(
                text=f"{user.name or user.login} ({user.login}, доб. {user.ext or '—'})",
                callback_data=ManagerAction(action="pbx", value=user.login).pack(),
            )
        ]
        for user in users
        if len(user.login.encode()) <= _MAX_LOGIN and ":" not in user.login
    ]
    if isinstance(callback.message, Message):
        await callback.message.answer(
            "Выберите ваш логин АТС:", reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
        )
    await callback.answer()


def build_router() -> Router:
    """A fresh router (a router can belong to one dispatcher only)."""
    router = Router(name="managers")
    router.message.register(add_command, Command("addmanager"))
    router.message.register(remove_command, Command("delmanager"))
    router.message.register(list_command, Command("managers"))
    router.message.register(me_command, Command("me", "settings"))
    router.message.register(pbx_command, Command("pbx"))
    router.callback_query.register(settings_tapped, ManagerAction.filter())
    return router
