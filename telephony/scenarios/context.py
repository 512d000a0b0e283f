"""What conditions and templates see: the trigger, the client and their variables, the call,
the lead or message, and what happened `since` the trigger (built afresh when a wait ends)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.channel_models import ClientChannel
from storage.models import Call, Client, DialogMessage, Manager
from telephony.calls.dialing import pbx_identity
from telephony.calls.outcome import CallOutcome
from telephony.clients import channel_of, get_variables, identities_of
from telephony.phones import is_mobile
from telephony.scenarios.conditions import SECTIONS

# `since.successful_calls`: the client's calls that were a conversation (CallOutcome's answered).
_ANSWERED = CallOutcome.sql(Call.__table__).answered  # type: ignore[attr-defined]


@dataclass
class Occurrence:
    """One trigger firing: `kind` as in `on:`, `value` what matched (the event type, the status,
    the message text, the lead source, the variable name), `fields` its details."""

    kind: str
    value: str
    client_id: int | None
    call_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "client_id": self.client_id,
            "call_id": self.call_id,
            "fields": self.fields,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Occurrence:
        return cls(
            kind=str(data["kind"]),
            value=str(data["value"]),
            client_id=data.get("client_id"),
            call_id=data.get("call_id"),
            fields=dict(data.get("fields") or {}),
        )


async def marks(session: AsyncSession, client_id: int | None) -> dict[str, int]:
    """Where `since` starts counting: the client's newest call and dialog line now.

    Ids, not times: rows are ordered by id whatever the clocks say."""
    if client_id is None:
        return {"after_call_id": 0, "after_dialog_id": 0}
    last_call = (
        await session.exec(select(func.max(Call.id)).where(Call.client_id == client_id))
    ).one()
    last_line = (
        await session.exec(
            select(func.max(DialogMessage.id)).where(DialogMessage.client_id == client_id)
        )
    ).one()
    return {"after_call_id": int(last_call or 0), "after_dialog_id": int(last_line or 0)}


async def _since(session: AsyncSession, client_id: int, mark: dict[str, int]) -> dict[str, int]:
    calls, answered = (
        await session.exec(
            select(func.count(), func.sum(case((_ANSWERED, 1), else_=0))).where(
                Call.client_id == client_id, col(Call.id) > mark.get("after_call_id", 0)
            )
        )
    ).one()
    messages = (
        await session.exec(
            select(func.count())
            .select_from(DialogMessage)
            .where(
                DialogMessage.client_id == client_id,
                col(DialogMessage.id) > mark.get("after_dialog_id", 0),
                DialogMessage.kind == "message",
                DialogMessage.direction == "in",
            )
        )
    ).one()
    return {
        "calls": int(calls),
        "successful_calls": int(answered or 0),
        "client_messages": int(messages),
    }


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def call_fields(call: Call, zone: ZoneInfo) -> dict[str, Any]:
    outcome = CallOutcome.of(call)
    return {
        "id": call.id,
        "callid": call.callid,
        "provider": call.provider,
        "direction": call.direction,
        "status": call.status,
        "phone": call.phone,
        "user": call.manager_user or call.requested_user,
        "ext": call.manager_ext,
        "telnum": call.manager_telnum,
        # The outcome's words (telephony.calls.outcome): a voicemail that picked up is missed.
        "answered": outcome.answered,
        "missed": outcome.missed,
        "talk_seconds": outcome.talk_seconds,
        "ended": call.ended,
        "last_event": call.last_event,
        "duration": call.duration,
        "wait": call.wait,
        "record_link": call.record_link,
        "requested": call.requested,
        "diversion": call.diversion,
        "group": call.group_name,
        "started_at": _local(call.started_at or call.created_at, zone),
    }


def can_carry(
    identities: Sequence[ClientChannel], phone: str | None, configured: Collection[str]
) -> bool:
    """Whether some configured channel can carry a message to this client now: a Telegram or
    WhatsApp identity, or a phone WhatsApp (a template) or SMS (a mobile number) can reach."""
    kinds = {row.kind for row in identities if row.kind in configured}
    if kinds & {"telegram", "whatsapp"}:
        return True
    if phone and "whatsapp" in configured:
        return True
    return bool(phone) and ("sms" in kinds or "sms" in configured) and is_mobile(phone or "")


async def client_fields(
    session: AsyncSession, client: Client, configured: Collection[str] = ("telegram",)
) -> dict[str, Any]:
    """`channel`: the channel the client last wrote from, else their first identity (WhatsApp,
    Telegram, SMS), else "telephony". `has_messenger`: some configured channel can carry a
    message to them now (`configured`: the bot's channels; Telegram alone by default)."""
    identities = await identities_of(session, client.id) if client.id is not None else []
    responsible = (
        await session.get(Manager, client.responsible_manager_id)
        if client.responsible_manager_id
        else None
    )
    return {
        "id": client.id,
        "name": client.name,
        "phone": client.phone,
        "channel": channel_of(identities),
        "has_messenger": can_carry(identities, client.phone, configured),
        # What megafon_call accepts as `user` for the responsible manager (None: nobody).
        "responsible": pbx_identity(responsible) if responsible is not None else None,
        "responsible_name": responsible.name if responsible is not None else None,
    }


async def build_context(
    session: AsyncSession,
    occurrence: Occurrence,
    *,
    now: datetime,
    zone: ZoneInfo,
    duty_manager: str | None,
    mark: dict[str, int] | None = None,
    configured: Collection[str] = ("telegram",),
    telegram_link: str = "",
) -> dict[str, Any]:
    """`telegram_link`: the client's deep link to the bot ("" without one: templates can say
    `{% if telegram_link %}…{% endif %}`)."""
    client = (
        await session.get(Client, occurrence.client_id, populate_existing=True)
        if occurrence.client_id is not None
        else None
    )
    call = (
        await session.get(Call, occurrence.call_id, populate_existing=True)
        if occurrence.call_id is not None
        else None
    )
    variables = await get_variables(session, client.id) if client and client.id else {}
    context: dict[str, Any] = {
        name: value for name, value in variables.items() if name not in SECTIONS
    }
    kind = occurrence.kind
    context.update(
        {
            "trigger": {"kind": kind, "value": occurrence.value},
            "client": (
                await client_fields(session, client, configured) if client is not None else {}
            ),
            "vars": variables,
            "call": call_fields(call, zone) if call is not None else {},
            "message": occurrence.fields if kind == "message" else {},
            "lead": occurrence.fields if kind == "lead" else {},
            "variable": occurrence.fields if kind == "variable" else {},
            "delivery": occurrence.fields if kind == "delivery_status" else {},
            "telegram_link": telegram_link,
            "since": (
                await _since(session, client.id, mark or {})
                if client is not None and client.id is not None
                else {"calls": 0, "successful_calls": 0, "client_messages": 0}
            ),
            "now": now.astimezone(zone),
            "duty_manager": duty_manager,
        }
    )
    return context
