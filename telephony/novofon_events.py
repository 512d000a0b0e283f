"""Applying Novofon's NOTIFY_* webhooks to the call model, and NOTIFY_START's routing answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import CallEvent, Manager
from telephony.calls import record_push
from telephony.clients import find_client_by_phone
from telephony.notify import CallObserver, CallUpdate
from telephony.novofon import PROVIDER, Notification, NovofonClient, NovofonError, dedup_key
from telephony.pushes import RecordPush


class RecordingUnavailable(Exception):
    """NOTIFY_RECORD arrived but Novofon would not give the link yet: ask it to send it again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Accepted:
    """What a webhook did: the call changes (empty for a duplicate) and the answer to give."""

    updates: list[CallUpdate] = field(default_factory=list)
    answer: dict[str, str] = field(default_factory=dict)

    @property
    def duplicate(self) -> bool:
        return not self.updates


async def accept_notification(
    db: Database,
    notification: Notification,
    fields: Mapping[str, str],
    observer: CallObserver,
    *,
    api: NovofonClient | None = None,
    route_to_responsible: bool = False,
) -> Accepted:
    """Store and apply one verified webhook. Repeated webhooks change nothing.

    Raises RecordingUnavailable when a NOTIFY_RECORD's link cannot be fetched yet (the event is
    kept; Novofon's retry brings the link).
    """
    accepted = Accepted()
    if notification.call_id_with_rec is not None:
        update = await _recording(db, notification, fields, observer, api)
        if update is not None:
            accepted.updates.append(update)
        return accepted
    for push, key in notification.pushes:
        update = await record_push(db, push, fields, key, observer, provider=PROVIDER)
        if update is not None:
            accepted.updates.append(update)
    if notification.event == "NOTIFY_START" and isinstance(notification.phone, str):
        async with db.session() as session:
            accepted.answer = await start_answer(
                session, notification.phone, route_to_responsible=route_to_responsible
            )
    return accepted


async def start_answer(
    session: AsyncSession, phone: str, *, route_to_responsible: bool
) -> dict[str, str]:
    """NOTIFY_START's answer: the known client's name, and their manager's extension to ring."""
    client = await find_client_by_phone(session, phone)
    if client is None:
        return {}
    answer: dict[str, str] = {}
    if client.name:
        answer["caller_name"] = client.name
    if route_to_responsible and client.responsible_manager_id is not None:
        manager = await session.get(Manager, client.responsible_manager_id)
        # Only a Novofon extension can be dialled by Novofon.
        if manager is not None and manager.call_provider == PROVIDER and manager.pbx_ext:
            answer["redirect"] = manager.pbx_ext
    return answer


async def _seen(db: Database, key: str) -> bool:
    async with db.session() as session:
        found = await session.exec(
            select(CallEvent.id).where(CallEvent.provider == PROVIDER, CallEvent.dedup_key == key)
        )
        return found.first() is not None


async def _recording(
    db: Database,
    notification: Notification,
    fields: Mapping[str, str],
    observer: CallObserver,
    api: NovofonClient | None,
) -> CallUpdate | None:
    pbx_call_id = notification.pbx_call_id
    record_id = notification.call_id_with_rec or ""
    key = dedup_key(pbx_call_id, notification.event, record_id)
    if await _seen(db, key):  # a retry: do not spend the request quota on it again
        return None
    pending = dedup_key(pbx_call_id, notification.event, record_id + "|pending")
    if api is None:  # no API keys: the recording is noted, its link cannot be asked for
        return await record_push(
            db, RecordPush(pbx_call_id, None), fields, pending, observer, provider=PROVIDER
        )
    try:
        link = await api.record_link(pbx_call_id)
    except NovofonError as exc:
        await record_push(
            db, RecordPush(pbx_call_id, None), fields, pending, observer, provider=PROVIDER
        )
        raise RecordingUnavailable(exc.message) from None
    return await record_push(
        db, RecordPush(pbx_call_id, link), fields, key, observer, provider=PROVIDER
    )
