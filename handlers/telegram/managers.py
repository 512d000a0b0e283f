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
from telephony.access import audit
from telephony.managers import (
    CALL_MODES,
    ProviderNeeded,
    add_manager,
    bind_identity,
    bind_pbx,
    list_managers,
    manager_by_telegram,
    parse_pbx_identity,
    remove_manager,
    set_call_mode,
    set_on_duty,
)
from telephony.providers.megafon import PROVIDER as MEGAFON
from telephony.providers.megafon import PbxError, PbxUser
from telephony.providers.novofon import PROVIDER as NOVOFON
from telephony.providers.novofon import NovofonError

PROVIDER_NAMES = {MEGAFON: "MegaFon", NOVOFON: "Novofon"}

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


def _actor(event: Message | CallbackQuery) -> audit.Actor:
    user = event.from_user
    return audit.telegram_actor(user.id, user.username) if user else audit.Actor("telegram:?")


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
        audit.record(
            session,
            _actor(message),
            "manager.add",
            f"telegram:{target[0]}",
            outcome="ok" if created else "exists",
        )
    await message.answer(texts.manager_added(manager, created))


async def remove_command(
    message: Message, command: CommandObject, tg: TelegramContext, is_admin: bool
) -> None:
    target = await _admin_target(message, command, is_admin, texts.USAGE_DEL)
    if target is None:
        return
    async with tg.db.session() as session:
        removed = await remove_manager(session, target[0])
        audit.record(
            session,
            _actor(message),
            "manager.remove",
            f"telegram:{target[0]}",
            outcome="ok" if removed else "not found",
        )
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


def configured_providers(tg: TelegramContext) -> list[str]:
    dialers = tg.dialers
    found = [MEGAFON] if dialers.megafon is not None or tg.pbx is not None else []
    return found + ([NOVOFON] if dialers.novofon is not None else [])


def provider_keyboard(raw: str, choices: tuple[str, ...]) -> InlineKeyboardMarkup:
    """Ambiguous /pbx input: one button per PBX it could be on."""
    rows = []
    for provider in choices:
        value = f"{provider} {raw}"
        if len(ManagerAction(action="bind", value=value).pack().encode()) > 64:
            continue
        rows.append(
            [
                InlineKeyboardButton(
                    text=f"{PROVIDER_NAMES[provider]}: {raw}",
                    callback_data=ManagerAction(action="bind", value=value).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def _bind(tg: TelegramContext, telegram_id: int, raw: str) -> tuple[str, bool]:
    """Bind `raw` (`megafon andy`, `novofon 100`, `andy`): (answer, whether it is bound)."""
    try:
        identity = parse_pbx_identity(raw, configured_providers(tg))
    except ProviderNeeded:
        raise
    except ValueError as exc:
        return str(exc), False
    async with tg.db.session() as session:
        current = await manager_by_telegram(session, telegram_id)
        if current is None:
            return texts.NOT_A_MANAGER, False
        try:
            bound = await bind_identity(session, current, identity)
        except ValueError as exc:
            return str(exc), False
        audit.record(
            session,
            audit.telegram_actor(telegram_id, None),
            "manager.change",
            f"manager:{bound.id}",
            detail="pbx identity",
        )
        return texts.manager_settings(bound), True


async def pbx_command(
    message: Message, command: CommandObject, tg: TelegramContext, manager: Manager | None
) -> None:
    """Bind by hand: `/pbx megafon andy`, `/pbx novofon 100`; without a PBX when only one is
    configured. A login (letters), an extension (short digits) or a direct number."""
    given = await manager_argument(message, command, manager, texts.USAGE_PBX)
    if given is None:
        return
    manager, raw = given
    try:
        answer, bound = await _bind(tg, manager.telegram_user_id or 0, raw)
    except ProviderNeeded as exc:
        await message.answer(texts.WHICH_PBX, reply_markup=provider_keyboard(exc.raw, exc.choices))
        return
    await message.answer(answer, reply_markup=settings_keyboard() if bound else None)


async def duty_command(message: Message, tg: TelegramContext, manager: Manager | None) -> None:
    """/duty toggles being on duty (private alerts about unknown callers, escalations)."""
    if manager is None or manager.telegram_user_id is None:
        await message.answer(texts.NOT_A_MANAGER)
        return
    async with tg.db.session() as session:
        current = await manager_by_telegram(session, manager.telegram_user_id)
        assert current is not None
        current = await set_on_duty(session, current, not current.on_duty)
        audit.record(
            session,
            _actor(message),
            "manager.change",
            f"manager:{current.id}",
            detail=f"on_duty={current.on_duty}",
        )
        text = texts.manager_settings(current)
    await message.answer(text, reply_markup=settings_keyboard())


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
    # The PBX is asked before the session opens: no network wait holds a connection.
    user = await _pbx_user(tg, callback_data.value) if callback_data.action == "pbx" else None
    text: str | None = None
    problem = ""
    async with tg.db.session() as session:
        current = await manager_by_telegram(session, manager.telegram_user_id)
        assert current is not None
        try:
            if callback_data.action == "mode" and callback_data.value in CALL_MODES:
                mode = callback_data.value
                current = await set_call_mode(session, current, mode)
                audit.record(
                    session,
                    _actor(callback),
                    "manager.mode",
                    f"manager:{current.id}",
                    detail=f"call_mode={mode}",
                )
            elif callback_data.action == "pbx":
                current = await bind_pbx(
                    session,
                    current,
                    login=callback_data.value,
                    ext=user.ext if user else None,
                    telnum=user.telnum if user else None,
                    name=user.name if user else None,
                    provider=MEGAFON,
                )
            elif callback_data.action == "bind":
                identity = parse_pbx_identity(callback_data.value, configured_providers(tg))
                current = await bind_identity(session, current, identity)
            if callback_data.action in ("pbx", "bind"):
                audit.record(
                    session,
                    _actor(callback),
                    "manager.change",
                    f"manager:{current.id}",
                    detail="pbx identity",
                )
            text = texts.manager_settings(current)
        except ValueError as refused:
            problem = str(refused)
    if text is None:
        await callback.answer(problem, show_alert=True)
        return
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
    """Every configured PBX's own user list as buttons, so nobody types a login by hand:
    MegaFon's users (login, extension) and Novofon's extensions."""
    novofon = tg.dialers.novofon
    if tg.pbx is None and novofon is None:
        await callback.answer(texts.PBX_NOT_CONFIGURED, show_alert=True)
        return
    buttons: list[list[InlineKeyboardButton]] = []
    problems: list[str] = []
    label = "MegaFon: " if novofon is not None else ""  # name the PBX when there are two
    if tg.pbx is not None:
        try:
            users = await tg.pbx.users()
        except PbxError as exc:
            problems.append(texts.pbx_refused(exc.message))
            users = []
        buttons += [
            [
                InlineKeyboardButton(
                    text=f"{label}{user.name or user.login} ({user.login}, доб. {user.ext or '—'})",
                    callback_data=ManagerAction(action="pbx", value=user.login).pack(),
                )
            ]
            for user in users
            if len(user.login.encode()) <= _MAX_LOGIN and ":" not in user.login
        ]
    if novofon is not None:
        try:
            extensions = await novofon.extensions()
        except NovofonError as exc:
            problems.append(texts.pbx_refused(exc.message))
            extensions = []
        buttons += [
            [
                InlineKeyboardButton(
                    text=f"Novofon: доб. {ext}",
                    callback_data=ManagerAction(action="bind", value=f"{NOVOFON} {ext}").pack(),
                )
            ]
            for ext in extensions
            if len(ext.encode()) <= _MAX_LOGIN and ":" not in ext
        ]
    if not buttons and problems:
        await callback.answer(problems[0], show_alert=True)
        return
    hints = [texts.NOVOFON_BY_HAND] if novofon is not None else []
    text = "\n".join([texts.PICK_LOGIN, *problems, *hints])
    if isinstance(callback.message, Message):
        await callback.message.answer(
            text, reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
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
    router.message.register(duty_command, Command("duty"))
    router.callback_query.register(settings_tapped, ManagerAction.filter())
    return router
