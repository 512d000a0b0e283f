"""Russian texts the bot shows, and small formatting helpers shared with the notifier."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from storage.models import Call, Client, Manager
from telephony.calls.outcome import CallOutcome, CallStatus
from telephony.phones import format_phone

STATUS_WORDS: dict[str, str] = {
    CallStatus.SUCCESS: "разговор состоялся",
    CallStatus.MISSED: "пропущен",
    CallStatus.CANCEL: "отменён",
    CallStatus.BUSY: "занято",
    CallStatus.NOT_AVAILABLE: "абонент недоступен",
    CallStatus.NOT_ALLOWED: "звонок запрещён",
    CallStatus.NOT_FOUND: "номер не найден",
}
PBX_NAMES = {"megafon": "MegaFon", "novofon": "Novofon"}
CHANNELS = {"telephony": "телефон", "telegram": "Telegram", "whatsapp": "WhatsApp", "sms": "SMS"}
MODES = {
    "disabled": "звонки отключены",
    "app": "через приложение (номер текстом)",
    "api": "через АТС (АТС звонит вам, затем клиенту)",
}

NOT_A_MANAGER = (
    "Извините, эта команда только для менеджеров. "
    "Попросите администратора добавить вас: /addmanager в ответ на ваше сообщение."
)
ADMINS_ONLY = "Извините, добавлять и удалять менеджеров могут только администраторы."
CALL_STARTED = "АТС звонит вам, затем клиенту"
CALL_DISABLED = "Звонки отключены в ваших настройках. Включите режим звонков: /me"
CALL_UNBOUND = "К вам не привязан логин АТС. Выберите его: /me"
NO_PHONE = "У клиента нет номера телефона."
CLIENT_NOT_FOUND = "Клиент не найден."
NO_TOPICS = "Группа менеджеров не настроена (TRUBKA_TELEGRAM_MANAGERS_CHAT_ID)."
REFRESHED = "Карточка обновлена"
LINKED = "Готово! Продолжим здесь: менеджер видит всю нашу переписку."
LINK_EXPIRED = "Ссылка устарела или неверна. Просто напишите нам здесь — менеджер ответит."
LINKED_NOTE = (
    "🔗 Клиент перешёл в Telegram по ссылке и продолжает переписку здесь — это тот же клиент"
)
TEXT_ONLY = "В SMS и WhatsApp уходит только текст: напишите ответ текстом."
NOT_SENT = "Ответ не отправлен: {reason}"
CANNOT_REPLY = "Этот клиент не пишет в Telegram: ответ до него не дойдёт. Позвоните ему кнопкой 📞."
CLIENT_HELLO = (
    "Здравствуйте! Напишите ваш вопрос — менеджер ответит здесь. "
    "Чтобы мы узнали вас при звонке, поделитесь номером кнопкой ниже."
)
SHARE_PHONE = "📱 Поделиться номером"
PHONE_THANKS = "Спасибо! Номер сохранён."
OWN_CONTACT_ONLY = "Пожалуйста, поделитесь своим номером кнопкой «📱 Поделиться номером»."
MANAGER_HELP = (
    "Команды менеджера:\n"
    "/call <телефон> — позвонить клиенту\n"
    "/client <телефон> — тема клиента\n"
    "/calls — последние звонки\n"
    "/missed — пропущенные сегодня\n"
    "/me — мой логин АТС и режим звонков"
)
USAGE_CALL = "Укажите телефон: /call +7 900 444-33-22"
USAGE_CLIENT = "Укажите телефон: /client +7 900 444-33-22"
USAGE_ADD = (
    "Ответьте командой /addmanager на сообщение человека или укажите его id: /addmanager 123456 Имя"
)
USAGE_DEL = (
    "Ответьте командой /delmanager на сообщение менеджера или укажите его id: /delmanager 123456"
)
USAGE_PBX = (
    "Укажите АТС и логин, внутренний номер или прямой номер: /pbx megafon andy, /pbx novofon 100"
)
WHICH_PBX = "В какой АТС этот номер? Выберите:"
PICK_LOGIN = "Выберите ваш логин АТС:"
NOVOFON_BY_HAND = "Novofon: отправьте /pbx novofon <внутренний номер>"
NO_CALLS = "Звонков пока нет."
NO_MISSED = "Сегодня пропущенных звонков нет 🎉"
PBX_NOT_CONFIGURED = (
    "АТС не настроена: список пользователей недоступен. Привяжите вручную: /pbx логин"
)


def call_app(phone: str) -> str:
    return f"Наберите с телефона: {format_phone(phone)}"


def pbx_refused(message: str) -> str:
    return f"АТС отказала: {message}"[:190]


def call_failed(message: str) -> str:
    return f"Не удалось позвонить: {message}"[:190]


def bad_phone(raw: str) -> str:
    return f"Не похоже на телефон: {raw}"


def manager_added(manager: Manager, created: bool) -> str:
    who = manager_name(manager)
    return f"Менеджер добавлен: {who}" if created else f"{who} уже менеджер"


def manager_removed(removed: bool, telegram_id: int) -> str:
    return f"Менеджер {telegram_id} удалён" if removed else f"{telegram_id} не менеджер"


def manager_name(manager: Manager | None) -> str:
    if manager is None:
        return "—"
    login = manager.pbx_login
    if manager.name and login and manager.name != login:
        return f"{manager.name} ({login})"
    return manager.name or login or manager.pbx_ext or str(manager.telegram_user_id or "—")


def manager_html(manager: Manager | None) -> str:
    """The manager's name; a mention (they get notified) when they use Telegram."""
    name = escape(manager_name(manager))
    if manager is not None and manager.telegram_user_id:
        return f'<a href="tg://user?id={manager.telegram_user_id}">{name}</a>'
    return name


def manager_settings(manager: Manager) -> str:
    identity = manager.pbx_login or manager.pbx_ext or manager.pbx_telnum or "не привязан"
    return (
        f"Менеджер: {manager_name(manager)}\n"
        f"Логин АТС: {identity}\n"
        f"АТС: {PBX_NAMES.get(manager.call_provider, manager.call_provider)}\n"
        f"Режим звонков: {MODES.get(manager.call_mode, manager.call_mode)}\n"
        f"Дежурный: {'да' if manager.on_duty else 'нет'} (/duty)"
    )


def managers_list(managers: list[Manager]) -> str:
    if not managers:
        return "Менеджеров пока нет. Добавьте: /addmanager"
    lines = ["Менеджеры:"]
    for m in managers:
        identity = m.pbx_login or m.pbx_ext or m.pbx_telnum or "АТС не привязана"
        lines.append(f"• {manager_name(m)} — id {m.telegram_user_id}, {identity}, {m.call_mode}")
    return "\n".join(lines)


def duration(seconds: int | None) -> str:
    if not seconds:
        return "0 с"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} мин {rest} с" if minutes else f"{rest} с"


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%d.%m %H:%M") if moment else "—"


def client_label(client: Client | None, phone: str | None = None) -> str:
    number = (client.phone if client else None) or phone
    parts = [client.name] if client and client.name else []
    if number:
        parts.append(format_phone(number))
    return " · ".join(parts) or (f"Клиент #{client.id}" if client else "—")


def topic_title(client: Client) -> str:
    return client_label(client)[:128]


def _progress(call: Call) -> str:
    """A call without its outcome yet, in words (the PBX's event codes are not for people)."""
    outcome = CallOutcome.of(call)
    if outcome.terminal:
        return "завершён"
    if outcome.answered:
        return "идёт разговор"
    return "звонит" if call.last_event else "…"


def call_line(call: Call, zone: ZoneInfo) -> str:
    """One call in a list: when, direction, number, status, manager, duration."""
    arrow = "⬅️" if call.direction == "in" else "➡️"
    status = call.status or _progress(call)
    number = format_phone(call.phone) if call.phone and not call.internal else (call.phone or "—")
    who = call.manager_user or call.requested_user or "—"
    moment = when(call.started_at or call.created_at, zone)
    return f"{arrow} {moment} {number} {status}, {who}, {duration(call.duration)}"


def topic_link(chat_id: int, thread_id: int) -> str:
    """`-1001234567890` → `https://t.me/c/1234567890/<thread>` (opens the topic for members)."""
    internal = str(chat_id).removeprefix("-100")
    return f"https://t.me/c/{internal}/{thread_id}"


def merged_away(link: str) -> str:
    return (
        "🔗 Клиент поделился номером: это наш клиент по телефону. "
        f"Переписка продолжается здесь: {link}"
    )


def call_taken(manager: Manager) -> str:
    """In the client's topic: who took the missed call."""
    return f"✋ Пропущенный звонок взял(а): {escape(manager_name(manager))}"


def already_taken(manager: Manager | None) -> str:
    return f"Звонок уже взял(а): {manager_name(manager)}" if manager else "Звонок уже взяли"


TAKEN = "Звонок ваш ✋"
