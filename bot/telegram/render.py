"""Call notifications as readable Russian text (HTML) for the client's topic.

Every text carries the PBX's own word (`INCOMING`, `ACCEPTED`, `Success` …) so managers and
scripts searching the topic find it, plus the manager, the duration and the recording URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from html import escape

from aiogram.types import InlineKeyboardMarkup

from handlers.telegram.cards import call_button, take_button
from handlers.telegram.texts import (
    STATUS_WORDS,
    client_label,
    duration,
    manager_html,
)
from storage.models import Call, Client, Manager
from telephony.calls.outcome import CallOutcome
from telephony.phones import format_phone

EVENT_HEADINGS = {
    "INCOMING": "📲 <b>Входящий звонок</b>",
    "OUTGOING": "📤 <b>Исходящий звонок</b>",
    "ACCEPTED": "✅ <b>Ответили на звонок</b>",
    "COMPLETED": "☎️ <b>Разговор окончен</b>",
    "CANCELLED": "↩️ <b>Вызов снят</b>",
    "TRANSFERRED": "🔀 <b>Звонок переведён</b>",
}


@dataclass
class Notification:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass
class People:
    """Who is involved: the call's manager (by PBX login) and the client's responsible one."""

    call_manager: Manager | None
    responsible: Manager | None


def _manager_line(call: Call, people: People) -> str:
    if people.call_manager is not None:
        who = manager_html(people.call_manager)
    else:
        who = escape(call.manager_user or call.requested_user or "—")
    if call.manager_ext:
        who += f", доб. {escape(call.manager_ext)}"
    return f"Менеджер: {who}"


def is_missed(call: Call) -> bool:
    return CallOutcome.of(call).missed


def render_event(event: str, call: Call, client: Client | None, people: People) -> Notification:
    """A line of the call's live message: a block for the call's start, one line afterwards."""
    heading = EVENT_HEADINGS.get(event, "ℹ️ <b>Событие звонка</b>")
    if event not in ("INCOMING", "OUTGOING"):
        who = ""
        if call.manager_user or people.call_manager:
            who = " — " + _manager_line(call, people).removeprefix("Менеджер: ")
        return Notification(f"{heading} · {escape(event)}{who}")
    lines = [f"{heading} · {escape(event)}", f"Клиент: {escape(client_label(client, call.phone))}"]
    if call.manager_user or people.call_manager:
        lines.append(_manager_line(call, people))
    if event == "INCOMING":
        if call.diversion:
            lines.append(f"На номер: {escape(call.diversion)}")
        lines.append(f"Ответственный: {manager_html(people.responsible)}")
    return Notification("\n".join(lines))


def render_status(call: Call, client: Client | None, people: People) -> Notification:
    status = call.status or "—"
    word = STATUS_WORDS.get(status, "")
    direction = "входящий" if call.direction == "in" else "исходящий"
    if is_missed(call):
        heading = f"❗️ <b>Пропущенный звонок</b> · {escape(status)}"
    else:
        heading = f"🏁 <b>Итог звонка</b> · {escape(status)}"
    lines = [
        heading + (f" ({word})" if word else ""),
        f"Клиент: {escape(client_label(client, call.phone))}, {direction}",
        _manager_line(call, people),
        f"Длительность: {duration(call.duration)}",
    ]
    if call.wait:
        lines.append(f"Ожидание: {duration(call.wait)}")
    if call.record_link:
        lines.append(f"Запись: {escape(call.record_link)}")
    keyboard = None
    if is_missed(call):
        lines.append(f"Ответственный: {manager_html(people.responsible)}")
        if call.client_id is not None:
            keyboard = InlineKeyboardMarkup(
                inline_keyboard=[[call_button(call.client_id, "📞 Перезвонить")]]
            )
    return Notification("\n".join(lines), keyboard)


def render_requested(call: Call, people: People) -> Notification:
    who = (
        manager_html(people.call_manager)
        if people.call_manager
        else escape(call.requested_user or "—")
    )
    return Notification(f"📞 {who} звонит клиенту через АТС · REQUESTED")


def undelivered(reason: str) -> str:
    return f"⚠️ Сообщение не доставлено клиенту: {escape(reason)}"


def _client_lines(call: Call, client: Client, source: str | None) -> list[str]:
    lines = [f"Клиент: {escape(client.name or client_label(client, call.phone))}"]
    if call.phone or client.phone:
        lines.append(f"Телефон: {format_phone(call.phone or client.phone or '')}")
    if source:
        lines.append(f"Источник: {escape(source)}")
    return lines


def render_ringing(call: Call, client: Client, source: str | None) -> Notification:
    """A private alert: a call is ringing now (name, phone, source, 📞)."""
    lines = ["📲 <b>Звонит клиент</b> · INCOMING", *_client_lines(call, client, source)]
    keyboard = None
    if client.id is not None:
        keyboard = InlineKeyboardMarkup(inline_keyboard=[[call_button(client.id)]])
    return Notification("\n".join(lines), keyboard)


def render_escalation(call: Call, client: Client, people: People, after: timedelta) -> Notification:
    """A private alert: a missed call nobody took within `after`, with «Беру»."""
    minutes = max(1, int(after.total_seconds() // 60))
    lines = [
        f"⏰ <b>Пропущенный звонок ждёт {minutes} мин</b> · Missed",
        *_client_lines(call, client, None),
        f"Ответственный: {manager_html(people.responsible)}",
    ]
    buttons = []
    if call.id is not None:
        buttons.append([take_button(call.id)])
    if client.id is not None:
        buttons.append([call_button(client.id, "📞 Перезвонить")])
    return Notification("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons))
