"""One person's data: export it (everything held, JSON) or erase it (152-FZ requests).

Erasing keeps the rows that reports count (calls, leads, dialog lines, deliveries) and blanks
what identifies the person: the phone becomes an anonymous marker unique to this erasure (so a
report's distinct callers and a caller's next call still count the same), names, e-mails,
comments, variables, dialog texts, recording links, raw pushes, visits' addresses and user
agents are emptied. The client's phone index goes, so the next call from that number starts a
new client. The managers' topic is renamed through the Telegram send queue (its title is drawn
from the erased client: «Клиент #17»). One transaction, with its audit row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from storage.channel_models import ChannelDelivery, ClientChannel
from storage.db import Database
from storage.leads_models import Lead, OutboxItem
from storage.models import (
    Call,
    CallAttribution,
    CallEvent,
    Client,
    ClientVariable,
    DialogMessage,
    PhoneIndexEntry,
)
from storage.scenario_models import ScenarioJob
from storage.telegram_models import TelegramDelivery, TelegramTopic
from storage.telegram_queue import CARD, Outgoing, enqueue
from storage.tracking_models import TrackingLease, TrackingVisit
from storage.widget_models import CallbackRequest, WidgetCounter
from telephony.access.audit import Actor, record

ERASED = "{}"  # what a raw payload (a push, an outbox or scenario payload) becomes
ANONYMOUS = "anon-"  # a forgotten caller's marker in calls.phone: "anon-3f9c…"


def anonymous_phone() -> str:
    return ANONYMOUS + secrets.token_hex(8)


@dataclass
class Forgotten:
    client_ids: list[int]
    erased: dict[str, int] = field(default_factory=dict)


async def _client_ids(
    session: AsyncConnection, phone: str | None, client_id: int | None
) -> list[int]:
    found: set[int] = set()
    if client_id is not None:
        rows = await session.execute(select(col(Client.id)).where(col(Client.id) == client_id))
        found.update(_ids(rows))
    if phone:
        rows = await session.execute(
            select(col(PhoneIndexEntry.client_id)).where(col(PhoneIndexEntry.phone) == phone)
        )
        found.update(_ids(rows))
        rows = await session.execute(select(col(Client.id)).where(col(Client.phone) == phone))
        found.update(_ids(rows))
    return sorted(found)


async def _phones_of(session: AsyncConnection, client_ids: list[int]) -> set[str]:
    rows = await session.execute(
        select(col(PhoneIndexEntry.phone)).where(col(PhoneIndexEntry.client_id).in_(client_ids))
    )
    phones = {str(row[0]) for row in rows}
    rows = await session.execute(select(col(Client.phone)).where(col(Client.id).in_(client_ids)))
    phones.update(str(row[0]) for row in rows if row[0])
    return phones


async def _call_ids(session: AsyncConnection, client_ids: list[int], phones: set[str]) -> list[int]:
    rows = await session.execute(
        select(col(Call.id)).where(
            or_(col(Call.client_id).in_(client_ids), col(Call.phone).in_(sorted(phones)))
        )
    )
    return sorted(_ids(rows))


async def _visit_ids(session: AsyncConnection, call_ids: list[int]) -> list[str]:
    rows = await session.execute(
        select(col(CallAttribution.visit_id)).where(
            col(CallAttribution.call_id).in_(call_ids), col(CallAttribution.visit_id).is_not(None)
        )
    )
    return sorted({str(row[0]) for row in rows})


def _ids(rows: Any) -> list[int]:
    return [int(row[0]) for row in rows]


def _row(found: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in found.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def export_person(
    db: Database, *, phone: str | None, client_id: int | None = None
) -> dict[str, Any]:
    """Everything held on the person with this (normalized) phone, or on this client."""
    async with db.read() as orm:
        session = await orm.connection()
        client_ids = await _client_ids(session, phone, client_id)
        phones = await _phones_of(session, client_ids) | ({phone} if phone else set())
        call_ids = await _call_ids(session, client_ids, phones)
        visit_ids = await _visit_ids(session, call_ids)

        async def rows(query: Any) -> list[dict[str, Any]]:
            return [_row(found) for found in (await session.execute(query)).mappings()]

        return {
            "phone": phone,
            "clients": await rows(select(Client).where(col(Client.id).in_(client_ids))),
            "variables": await rows(
                select(ClientVariable).where(col(ClientVariable.client_id).in_(client_ids))
            ),
            "dialog": await rows(
                select(DialogMessage)
                .where(col(DialogMessage.client_id).in_(client_ids))
                .order_by(col(DialogMessage.id))
            ),
            "calls": await rows(
                select(Call).where(col(Call.id).in_(call_ids)).order_by(col(Call.id))
            ),
            "attributions": await rows(
                select(CallAttribution).where(col(CallAttribution.call_id).in_(call_ids))
            ),
            "visits": await rows(select(TrackingVisit).where(col(TrackingVisit.id).in_(visit_ids))),
            "leads": await rows(
                select(Lead).where(
                    or_(
                        col(Lead.client_id).in_(client_ids),
                        col(Lead.call_id).in_(call_ids),
                        col(Lead.phone).in_(sorted(phones)),
                    )
                )
            ),
        }


async def forget_person(
    db: Database,
    *,
    phone: str | None,
    client_id: int | None = None,
    actor: Actor,
    now: datetime,
) -> Forgotten | None:
    """Erase the person (by normalized phone or client id); None when nothing is held."""
    async with db.session() as orm:
        session = await orm.connection()
        client_ids = await _client_ids(session, phone, client_id)
        phones = await _phones_of(session, client_ids) | ({phone} if phone else set())
        call_ids = await _call_ids(session, client_ids, phones)
        if not client_ids and not call_ids:
            return None
        done = Forgotten(client_ids)
        visit_ids = await _visit_ids(session, call_ids)
        lead_ids = _ids(
            await session.execute(
                select(col(Lead.id)).where(
                    or_(
                        col(Lead.client_id).in_(client_ids),
                        col(Lead.call_id).in_(call_ids),
                        col(Lead.phone).in_(sorted(phones)),
                    )
                )
            )
        )
        marker = anonymous_phone()

        async def change(name: str, statement: Any) -> None:
            result = await session.execute(statement)
            count = getattr(result, "rowcount", 0)  # a CursorResult for UPDATE/DELETE
            done.erased[name] = done.erased.get(name, 0) + int(count or 0)

        await change(
            "calls",
            update(Call)
            .where(col(Call.id).in_(call_ids))
            .values(phone=marker, record_link=None, updated_at=now),
        )
        await change(
            "call_events",
            update(CallEvent).where(col(CallEvent.call_id).in_(call_ids)).values(payload=ERASED),
        )
        await change(
            "call_attributions",
            update(CallAttribution)
            .where(col(CallAttribution.call_id).in_(call_ids))
            .values(landing_url=None, referrer=None),
        )
        await change("tracking_visits", _blank_visits(col(TrackingVisit.id).in_(visit_ids)))
        await change(
            "tracking_leases",
            update(TrackingLease)
            .where(col(TrackingLease.visit_id).in_(visit_ids))
            .values(address=None, network=None),
        )
        await change(
            "dialog_messages",
            update(DialogMessage)
            .where(col(DialogMessage.client_id).in_(client_ids))
            .values(text=""),
        )
        await change(
            "client_variables",
            delete(ClientVariable).where(col(ClientVariable.client_id).in_(client_ids)),
        )
        await change(
            "phone_index",
            delete(PhoneIndexEntry).where(col(PhoneIndexEntry.client_id).in_(client_ids)),
        )
        # The site's callback requests stay counted (reports) under the anonymous marker; the
        # per-phone budget's counter is keyed by the phone itself.
        await change(
            "callback_requests",
            update(CallbackRequest)
            .where(col(CallbackRequest.phone).in_(sorted(phones)))
            .values(phone=marker),
        )
        await change(
            "widget_counters",
            delete(WidgetCounter).where(
                col(WidgetCounter.key).in_([f"phone:{p}" for p in sorted(phones)])
            ),
        )
        await change(
            "client_channels",
            delete(ClientChannel).where(col(ClientChannel.client_id).in_(client_ids)),
        )
        # SMS and WhatsApp sends: the address and text go; one not made yet is not made at all.
        await change(
            "channel_deliveries",
            update(ChannelDelivery)
            .where(col(ChannelDelivery.client_id).in_(client_ids))
            .values(address=marker, text=None, template=None, last_error=None),
        )
        await change(
            "channel_deliveries",
            update(ChannelDelivery)
            .where(
                col(ChannelDelivery.client_id).in_(client_ids),
                col(ChannelDelivery.status) == "pending",
            )
            .values(status="cancelled", last_error="client erased"),
        )
        await change(
            "clients",
            update(Client)
            .where(col(Client.id).in_(client_ids))
            .values(name="", phone=None, external_id=None, updated_at=now),
        )
        await change(
            "leads",
            update(Lead)
            .where(col(Lead.id).in_(lead_ids))
            .values(
                phone=None,
                name=None,
                email=None,
                comment=None,
                landing_url=None,
                referrer=None,
                reported_record_link=None,
            ),
        )
        # A delivery not made yet is not made at all (its payload held the person's data).
        await change(
            "outbox",
            update(OutboxItem)
            .where(
                or_(col(OutboxItem.lead_id).in_(lead_ids), col(OutboxItem.call_id).in_(call_ids))
            )
            .values(payload=ERASED, result=None, last_error="client erased", status="dead"),
        )
        await change(
            "scenario_jobs",
            update(ScenarioJob)
            .where(
                or_(
                    col(ScenarioJob.client_id).in_(client_ids),
                    col(ScenarioJob.call_id).in_(call_ids),
                )
            )
            .values(
                payload=ERASED,
                error="client erased",
                status="cancelled",
                lease_until=None,
                finished_at=now,
            ),
        )
        await change(
            "telegram_deliveries",
            update(TelegramDelivery)
            .where(
                or_(
                    col(TelegramDelivery.client_id).in_(client_ids),
                    col(TelegramDelivery.call_id).in_(call_ids),
                )
            )
            .values(text="", reply_markup=None, error=None),
        )
        await change(
            "telegram_deliveries",
            update(TelegramDelivery)
            .where(
                or_(
                    col(TelegramDelivery.client_id).in_(client_ids),
                    col(TelegramDelivery.call_id).in_(call_ids),
                ),
                col(TelegramDelivery.status) == "pending",
            )
            .values(status="dropped"),
        )
        topics = await session.execute(
            select(col(TelegramTopic.client_id), col(TelegramTopic.chat_id)).where(
                col(TelegramTopic.client_id).in_(client_ids)
            )
        )
        for topic_client, chat_id in topics.all():
            # The sender redraws the title from the erased client («Клиент #17»).
            enqueue(
                orm,
                Outgoing(
                    target="topic",
                    chat_id=chat_id,
                    client_id=topic_client,
                    method="card",
                    lane=CARD,
                ),
            )
        record(
            orm,
            actor,
            "client.forget",
            ",".join(f"client:{i}" for i in client_ids) or f"calls:{len(call_ids)}",
            now=now,
        )
    return done


def _blank_visits(where: Any) -> Any:
    return (
        update(TrackingVisit)
        .where(where)
        .values(ip=None, user_agent=None, landing_url=None, last_url=None, referrer=None)
    )
