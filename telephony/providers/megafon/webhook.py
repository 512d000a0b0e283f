"""MegaFon's pushes (`cmd=history|event|contact|rating`): fields read, checked and parsed."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from telephony.calls.outcome import CALL_EVENTS, CALL_STATUSES, CallEventType, CallStatus
from telephony.calls.pushes import (
    MAX_RATING,
    MAX_SECONDS,
    ContactQuery,
    EventPush,
    HistoryPush,
    RatingPush,
    bounded_number,
)
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.providers.base import InvalidPayload

PROVIDER = "megafon"

# Canonical statuses, keyed by their lower-case form: tenants differ in casing (missed / Missed).
STATUSES = {name.lower(): name for name in CALL_STATUSES}
EVENT_TYPES = CALL_EVENTS
_EVENT_TYPE = re.compile(r"^[A-Z_]{1,32}$")
_MAX_FIELD = 2000


Push = EventPush | HistoryPush | ContactQuery | RatingPush


def canonical_status(raw: str) -> CallStatus:
    """`missed` → `Missed`. An unknown status is kept as sent rather than lost (CallStatus is
    open to values it does not list)."""
    return CallStatus(STATUSES.get(raw.strip().lower(), raw.strip()))


def dedup_key(fields: Mapping[str, str]) -> str:
    """Identical pushes (the token aside) share a key: the PBX repeating itself changes nothing."""
    canonical = json.dumps(
        {k: v for k, v in sorted(fields.items()) if k != "crm_token"}, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_call_push(fields: Mapping[str, str]) -> list[EventPush | HistoryPush | RatingPush]:
    """A stored push back from its fields (the inbox's parser for MegaFon)."""
    push = parse_push(fields)
    if isinstance(push, ContactQuery):
        raise InvalidPayload("cmd", "contact is answered at once, never stored")
    return [push]


class _Fields:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = fields

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise InvalidPayload(name, "is required")
        return value

    def optional(self, name: str) -> str | None:
        value = self._fields.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > _MAX_FIELD:
            raise InvalidPayload(name, "is too long")
        return value or None

    def present(self, name: str) -> str:
        """Required to be sent, but may be empty (a missed call's `user` sometimes is)."""
        if name not in self._fields:
            raise InvalidPayload(name, "is required")
        return self.optional(name) or ""

    def party(self, name: str) -> str | Extension:
        try:
            return parse_party(self.required(name))
        except InvalidPhone as exc:
            raise InvalidPayload(name, str(exc)) from None

    def integer(self, name: str, *, required: bool, maximum: int) -> int | None:
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        if value.startswith("-") and value[1:].isdecimal():
            raise InvalidPayload(name, "must not be negative")
        try:
            return bounded_number(value, maximum)
        except ValueError as exc:
            raise InvalidPayload(name, str(exc)) from None

    def direction(self, name: str, *, required: bool) -> Literal["in", "out"] | None:
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered == "in":
            return "in"
        if lowered == "out":
            return "out"
        raise InvalidPayload(name, "must be in or out")


def parse_start(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidPayload("start", "must look like 20170703T121110Z") from None


def parse_push(fields: Mapping[str, str]) -> Push:
    """Turn a webhook's fields into a typed push, or raise InvalidPayload naming the field."""
    f = _Fields(fields)
    command = (f.optional("cmd") or "").lower()
    if command == "history":
        return HistoryPush(
            direction=f.direction("type", required=True) or "in",
            user=f.present("user"),
            phone=f.party("phone"),
            start=parse_start(f.required("start")),
            duration=f.integer("duration", required=True, maximum=MAX_SECONDS) or 0,
            callid=f.required("callid"),
            status=canonical_status(f.required("status")),
            ext=f.optional("ext"),
            telnum=f.optional("telnum"),
            diversion=f.optional("diversion"),
            group_name=f.optional("groupRealName"),
            link=f.optional("link"),
            wait=f.integer("wait", required=False, maximum=MAX_SECONDS),
            rating=f.integer("rating", required=False, maximum=MAX_RATING),
        )
    if command == "event":
        event_type = f.required("type").upper()
        if not _EVENT_TYPE.match(event_type):
            raise InvalidPayload("type", "is not an event type")
        return EventPush(
            type=CallEventType(event_type),
            phone=f.party("phone"),
            user=f.present("user"),
            callid=f.required("callid"),
            direction=f.direction("direction", required=False),
            ext=f.optional("ext"),
            telnum=f.optional("telnum"),
            diversion=f.optional("diversion"),
            group_name=f.optional("groupRealName"),
            second_callid=f.optional("second_callid"),
        )
    if command == "contact":
        return ContactQuery(
            phone=f.party("phone"),
            callid=f.optional("callid"),
            diversion=f.optional("diversion"),
        )
    if command == "rating":
        return RatingPush(
            callid=f.required("callid"),
            phone=f.party("phone"),
            rating=f.integer("rating", required=True, maximum=MAX_RATING) or 0,
            user=f.optional("user"),
            ext=f.optional("ext"),
        )
    raise InvalidPayload("cmd", "must be history, event, contact or rating")
