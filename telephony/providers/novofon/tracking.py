"""Novofon's own call tracking (`CALL_TRACKING`): the visit behind a call, as its attribution.

Novofon does not publish the notification's fields, so they are recognised by name (several
spellings each, case-insensitive); every field, known or not, is kept raw in the call's events.
A call already attributed (our own tracking, an earlier notification) keeps its values: Novofon's
only fill the gaps, so a repeated notification changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from storage.db import Database
from storage.dialects import dialect_of, insert_for
from storage.models import CallAttribution, CallEvent
from storage.queries import insert_or_ignore
from storage.types import utcnow
from telephony.calls.apply import call_of
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.providers.megafon import InvalidPayload
from telephony.providers.novofon import PROVIDER

EVENT = "CALL_TRACKING"
METHOD = "novofon"

# attribution column → the field names Novofon (or a user's proxy) may use for it.
NAMES: dict[str, tuple[str, ...]] = {
    "visit_id": ("visit_id", "visitor_id", "visit", "session_id"),
    "tracking_number": ("called_did", "tracking_number", "did", "number"),
    "source": ("source", "traffic_source", "channel"),
    "utm_source": ("utm_source",),
    "utm_medium": ("utm_medium",),
    "utm_campaign": ("utm_campaign",),
    "utm_content": ("utm_content",),
    "utm_term": ("utm_term",),
    "yclid": ("yclid",),
    "metrika_client_id": (
        "metrika_client_id",
        "ym_client_id",
        "yandex_client_id",
        "client_id_ym",
        "ym_uid",
        "clientid",
        "client_id",
    ),
    "ga_client_id": ("ga_client_id", "google_client_id", "ga_cid", "cid"),
    "roistat_visit": ("roistat_visit", "roistat"),
    "landing_url": ("landing_url", "page_url", "url", "landing", "page"),
    "referrer": ("referrer", "referer"),
}
CALL_ID_NAMES = ("pbx_call_id", "call_id", "pbx_callid")
PHONE_NAMES = ("caller_id", "caller", "phone", "clid", "from")
_MAX_RAW_FIELDS = 200


def flatten(body: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A JSON body, nested or not, as flat fields: {"utm": {"source": "y"}} → utm_source=y."""
    flat: dict[str, str] = {}
    for key, value in body.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        elif isinstance(value, list):
            flat[name] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            flat[name] = "1" if value else "0"
        elif value is not None:
            flat[name] = str(value)
    return flat


def _lookup(fields: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {key.lower(): value for key, value in fields.items()}
    for name in names:
        value = (lowered.get(name) or "").strip()
        if value:
            return value
    return None


def attribution_values(fields: Mapping[str, str]) -> dict[str, str]:
    """The attribution columns a notification carries, cut to the columns' sizes."""
    values: dict[str, str] = {}
    columns = CallAttribution.__table__.c  # type: ignore[attr-defined]
    for column, names in NAMES.items():
        value = _lookup(fields, names)
        if value is None:
            continue
        if column == "tracking_number":
            party = _party(value)
            value = party if isinstance(party, str) else value
        length = getattr(columns[column].type, "length", None)
        values[column] = value[:length] if length else value
    return values


def _party(value: str | None) -> str | Extension | None:
    if value is None:
        return None
    try:
        return parse_party(value)
    except InvalidPhone:
        return None


@dataclass(frozen=True)
class Merged:
    call_id: int
    duplicate: bool
    attribution: dict[str, str]  # the values this notification brought


async def merge_call_tracking(db: Database, fields: Mapping[str, str]) -> Merged:
    """Attach a CALL_TRACKING notification to its call (created if Novofon's events are late)."""
    if len(fields) > _MAX_RAW_FIELDS:
        raise InvalidPayload("body", "has too many fields")
    pbx_call_id = _lookup(fields, CALL_ID_NAMES)
    if pbx_call_id is None or len(pbx_call_id) > 200:
        raise InvalidPayload("pbx_call_id", "is required")
    values = attribution_values(fields)
    canonical = json.dumps(dict(sorted(fields.items())), ensure_ascii=False)
    key = hashlib.sha256(f"{EVENT}|{canonical}".encode()).hexdigest()
    async with db.session() as session:
        event_id = await insert_or_ignore(
            session,
            CallEvent,
            {
                "provider": PROVIDER,
                "dedup_key": key,
                "command": "call_tracking",
                "event_type": EVENT,
                "payload": canonical,
                "received_at": utcnow(),
                "processed_at": utcnow(),  # applied right here, not by the inbox
            },
        )
        call = await call_of(session, PROVIDER, pbx_call_id, _party(_lookup(fields, PHONE_NAMES)))
        assert call.id is not None
        if event_id is None:
            return Merged(call.id, True, values)
        stored = await session.get(CallEvent, event_id)
        assert stored is not None
        stored.call_id = call.id
        session.add(stored)
        session.add(call)
        await session.flush()
        insert = insert_for(dialect_of(session))
        table = CallAttribution.__table__  # type: ignore[attr-defined]
        await session.exec(
            insert(table)
            .values(call_id=call.id, method=METHOD, created_at=utcnow())
            .on_conflict_do_nothing()
        )
        attribution = (
            await session.exec(
                select(CallAttribution)
                .where(CallAttribution.call_id == call.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        for column, value in values.items():
            if not getattr(attribution, column):  # first writer wins: retries change nothing
                setattr(attribution, column, value)
        session.add(attribution)
        return Merged(call.id, False, values)
