"""The client card at the top of a topic, and the buttons that act on a client."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.telegram.texts import CHANNELS, call_line, client_label, manager_html
from storage.channel_models import ClientChannel
from storage.models import Call, CallAttribution, Client, Manager
from telephony.clients import channel_of, get_variables, identities_of
from telephony.phones import format_phone

LAST_CALLS = 5
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


class ClientAction(CallbackData, prefix="c"):
    """Buttons on a client: "call" (📞) or "refresh" (🔄). Well under the 64-byte limit."""

    action: str
    client_id: int


class ManagerAction(CallbackData, prefix="m"):
    """A manager's own settings: "mode" (value = disabled/app/api), "pbx" (value = a login)."""

    action: str
    value: str


class CallAction(CallbackData, prefix="t"):
    """A button on a call: "take" («Беру», a manager takes a missed call)."""

    action: str
    call_id: int


def take_button(call_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text="✋ Беру", callback_data=CallAction(action="take", call_id=call_id).pack()
    )


def call_button(client_id: int, text: str = "📞 Позвонить") -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=ClientAction(action="call", client_id=client_id).pack()
    )


def card_keyboard(client_id: int) -> InlineKeyboardMarkup:
    refresh = InlineKeyboardButton(
        text="🔄 Обновить",
        callback_data=ClientAction(action="refresh", client_id=client_id).pack(),
    )
    return InlineKeyboardMarkup(inline_keyboard=[[call_button(client_id), refresh]])


# Built once: asked for every ringing call's alert.
_LATEST_ATTRIBUTION = (
    select(CallAttribution)
    .join(Call, col(Call.id) == col(CallAttribution.call_id))
    .where(col(Call.client_id) == bindparam("client"))
    .order_by(col(Call.id).desc())
    .limit(1)
)


async def client_source(session: AsyncSession, client: Client) -> str | None:
    """Where the client came from: the latest call's attribution, else UTM variables."""
    found = await session.exec(_LATEST_ATTRIBUTION, params={"client": client.id})
    attribution = found.first()
    values: dict[str, str] = {}
    if attribution is not None:
        if attribution.source:
            values["source"] = attribution.source
        for name in _UTM:
            value = getattr(attribution, name)
            if value:
                values[name] = value
    else:
        assert client.id is not None
        variables = await get_variables(session, client.id)
        for name in ("source", *_UTM):
            if variables.get(name):
                values[name] = variables[name]
    if not values:
        return None
    return ", ".join(f"{name}={value}" for name, value in values.items())


def channels_line(identities: Sequence[ClientChannel]) -> str:
    """`WhatsApp, SMS` — the client's channels, the one they last wrote from first."""
    if not identities:
        return CHANNELS["telephony"]
    first = channel_of(identities)
    kinds = [first, *sorted({row.kind for row in identities} - {first})]
    return ", ".join(CHANNELS.get(kind, kind) for kind in kinds)


async def render_card(
    session: AsyncSession, client: Client, zone: ZoneInfo
) -> tuple[str, InlineKeyboardMarkup]:
    assert client.id is not None
    responsible = (
        await session.get(Manager, client.responsible_manager_id)
        if client.responsible_manager_id is not None
        else None
    )
    lines = [
        f"👤 <b>{escape(client.name or client_label(client))}</b>",
        f"Телефон: {format_phone(client.phone) if client.phone else '—'}",
        f"Канал: {escape(channels_line(await identities_of(session, client.id)))}",
        f"Ответственный: {manager_html(responsible)}",
    ]
    source = await client_source(session, client)
    if source:
        lines.append(f"Источник: {escape(source)}")
    calls = (
        await session.exec(
            select(Call)
            .where(Call.client_id == client.id)
            .order_by(col(Call.created_at).desc(), col(Call.id).desc())
            .limit(LAST_CALLS)
        )
    ).all()
    if calls:
        lines.append("")
        lines.append("Последние звонки:")
        lines.extend(escape(call_line(call, zone)) for call in calls)
    return "\n".join(lines), card_keyboard(client.id)
