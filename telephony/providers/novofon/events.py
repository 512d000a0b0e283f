"""Applying Novofon's NOTIFY_* webhooks to the call model, and NOTIFY_START's routing answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import CallEvent, Manager
from telephony.calls.apply import CallPush
from telephony.calls.inbox import CallInbox, PushParser
from telephony.calls.pushes import EventPush, RecordPush
from telephony.clients import find_client_by_phone
from telephony.leads.outbox import Claimed, DeliveryError, OutboxWorker, enqueue
from telephony.providers.novofon import (
    PROVIDER,
    Notification,
    NovofonClient,
    NovofonError,
    dedup_key,
    parse_notification,
)

# The job (a row of the durable outbox) that fetches a NOTIFY_RECORD's link.
RECORDING_JOB = "novofon_record"
# Fields Trubka adds to a stored notification: which of its pushes the row is, and the
# recording link fetched for a NOTIFY_RECORD.
PUSH_INDEX = "_trubka_push"
RECORD_LINK = "_trubka_record_link"


@dataclass
class Accepted:
    """What a webhook did: whether anything new was stored, and the answer to give."""

    new: bool = False
    answer: dict[str, str] = field(default_factory=dict)

    @property
    def duplicate(self) -> bool:
        return not self.new


def stored_pushes(zone: ZoneInfo) -> PushParser:
    """The inbox's parser: a stored row back into the one push it holds."""

    def parse(fields: Mapping[str, str]) -> Sequence[CallPush]:
        raw = {k: v for k, v in fields.items() if k not in (PUSH_INDEX, RECORD_LINK)}
        if RECORD_LINK in fields:
            return [RecordPush(raw.get("pbx_call_id", ""), fields[RECORD_LINK] or None)]
        notification = parse_notification(raw, zone)
        return [notification.pushes[int(fields.get(PUSH_INDEX, "0"))][0]]

    return parse


async def accept_notification(
    inbox: CallInbox,
    db: Database,
    notification: Notification,
    fields: Mapping[str, str],
    *,
    jobs: OutboxWorker | None = None,
    route_to_responsible: bool = False,
) -> Accepted:
    """Store one verified webhook in the inbox (one row per push it means, each with its own
    dedup key, so a callback's NOTIFY_END and NOTIFY_OUT_END share their outcome). Repeated
    webhooks change nothing.

    A NOTIFY_RECORD's link is fetched later by a job of `jobs` (None: no API keys, the
    recording is noted without its link).
    """
    accepted = Accepted()
    if notification.call_id_with_rec is not None:
        accepted.new = await _recording(inbox, db, notification, fields, jobs)
        return accepted
    for index, (push, key) in enumerate(notification.pushes):
        new = await inbox.submit(
            PROVIDER,
            {**fields, PUSH_INDEX: str(index)},
            key,
            command=notification.event,
            event_type=push.type if isinstance(push, EventPush) else None,
            push=push,
        )
        accepted.new = accepted.new or new
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
    inbox: CallInbox,
    db: Database,
    notification: Notification,
    fields: Mapping[str, str],
    jobs: OutboxWorker | None,
) -> bool:
    """NOTIFY_RECORD: noted in the inbox at once; its link is fetched by a queued job (the
    Novofon API is rate-limited and slow: the webhook never waits for it)."""
    pbx_call_id = notification.pbx_call_id
    record_id = notification.call_id_with_rec or ""
    if await _seen(db, dedup_key(pbx_call_id, notification.event, record_id)):
        return False  # the link is in already: a late retry of Novofon's
    if jobs is None:  # no API keys: the recording is noted, its link cannot be asked for
        pending = dedup_key(pbx_call_id, notification.event, record_id + "|pending")
        return await inbox.submit(
            PROVIDER,
            {**fields, RECORD_LINK: ""},
            pending,
            command=notification.event,
            push=RecordPush(pbx_call_id, None),
        )
    async with db.session() as session:  # the job is as durable as a stored push
        job = await enqueue(
            session,
            RECORDING_JOB,
            f"{pbx_call_id}|{record_id}"[:200],
            {"fields": dict(fields)},
            now=jobs.clock.now(),
            policy=jobs.policy,
        )
    jobs.wake()
    return job is not None


class RecordingFetcher:
    """The queued job behind NOTIFY_RECORD: asks Novofon for the recording's link (retried
    with backoff while Novofon says it is not ready) and puts it in the inbox as a push."""

    def __init__(self, api: NovofonClient, inbox: CallInbox) -> None:
        self.api = api
        self.inbox = inbox

    async def deliver(self, item: Claimed) -> str | None:
        fields: dict[str, str] = item.payload["fields"]
        pbx_call_id = fields.get("pbx_call_id", "")
        try:
            link = await self.api.record_link(pbx_call_id)
        except NovofonError as exc:
            raise DeliveryError(exc.message) from None
        key = dedup_key(pbx_call_id, "NOTIFY_RECORD", fields.get("call_id_with_rec", ""))
        await self.inbox.submit(
            PROVIDER,
            {**fields, RECORD_LINK: link or ""},
            key,
            command="NOTIFY_RECORD",
            push=RecordPush(pbx_call_id, link),
        )
        return link
