"""The client card at the top of a topic, and the buttons that act on a client."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import bindparam, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.telegram.texts import CHANNELS, call_line, client_label, manager_html
from storage.among import among_param
from storage.channel_models import ClientChannel
from storage.models import Call, CallAttribution, Client, ClientVariable, Manager
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
    if attribution is None:
        assert client.id is not None
        return _source(None, await get_variables(session, client.id))
    return _source(attribution, {})


# The latest attributed call of each client: `client_sources` reads them in one query.
_LATEST_CALLS = (
    select(col(Call.client_id), func.max(col(Call.id)))
    .join(CallAttribution, col(CallAttribution.call_id) == col(Call.id))
    .where(among_param(col(Call.client_id), "clients"))
    .group_by(col(Call.client_id))
)
_ATTRIBUTIONS_OF = select(CallAttribution).where(
    among_param(col(CallAttribution.call_id), "calls")
)
_VARIABLES_OF = select(
    col(ClientVariable.client_id), col(ClientVariable.name), col(ClientVariable.value)
).where(
    among_param(col(ClientVariable.client_id), "clients")
)


async def client_sources(session: AsyncSession, client_ids: Sequence[int]) -> dict[int, str | None]:
    """`client_source` of several clients: three queries in all, not two per client."""
    ids = sorted(set(client_ids))
    if not ids:
        return {}
    found_calls = await session.exec(_LATEST_CALLS, params={"clients": ids})
    latest: dict[int, int] = {
        client: call
        for client, call in found_calls.all()
        if client is not None and call is not None
    }
    attributions: dict[int, CallAttribution] = {}
    if latest:
        rows = await session.exec(_ATTRIBUTIONS_OF, params={"calls": list(latest.values())})
        by_call = {row.call_id: row for row in rows.all() if row.call_id is not None}
        attributions = {
            client: by_call[call] for client, call in latest.items() if call in by_call
        }
    variables: dict[int, dict[str, str]] = {}
    rest = [client for client in ids if client not in attributions]
    if rest:
        found_variables = await session.exec(_VARIABLES_OF, params={"clients": rest})
        for client, name, value in found_variables.all():
            variables.setdefault(client, {})[name] = value
    return {
        client: _source(attributions.get(client), variables.get(client, {})) for client in ids
    }


def _source(attribution: CallAttribution | None, variables: dict[str, str]) -> str | None:
    values: dict[str, str] = {}
    if attribution is not None:
        if attribution.source:
            values["source"] = attribution.source
        for name in _UTM:
            value = getattr(attribution, name)
            if value:
                values[name] = value
    else:
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
