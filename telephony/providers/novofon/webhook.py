"""Novofon webhooks (`NOTIFY_*`): the `Signature` check and parsing into provider-neutral pushes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from telephony.calls.outcome import CallEventType, CallStatus
from telephony.calls.pushes import MAX_SECONDS, EventPush, HistoryPush, RecordPush, bounded_number
from telephony.phones import Extension, InvalidPhone, parse_party
from telephony.providers.base import InvalidPayload
from telephony.providers.novofon.signing import _hex_hmac_base64

PROVIDER = "novofon"
DEFAULT_URL = "https://api.novofon.com"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# Which fields each event's `Signature` covers, concatenated in this order.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    # Outgoing events are signed with internal + destination, not the caller id (pitfall 3).
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}
EVENTS = tuple(SIGNED_FIELDS)

# disposition → the canonical status MegaFon's calls use, so both providers read the same.
DISPOSITIONS = {
    "answered": CallStatus.SUCCESS,
    "busy": CallStatus.BUSY,
    "cancel": CallStatus.CANCEL,
    "no answer": CallStatus.MISSED,
    "failed": CallStatus.NOT_AVAILABLE,
    "line limit": CallStatus.NOT_AVAILABLE,
    "no money": CallStatus.NOT_ALLOWED,
    "no day limit": CallStatus.NOT_ALLOWED,
    "no limit": CallStatus.NOT_ALLOWED,
    "unallocated number": CallStatus.NOT_FOUND,
}
_MAX_FIELD = 2000
# Fields stored in sized columns: longer values are malformed, not truncated.
_LIMITS = {
    "pbx_call_id": 200,
    "internal": 32,
    "destination": 32,
    "called_did": 32,
    "caller_id": 32,
    "disposition": 64,
    "call_id_with_rec": 200,
}


def webhook_signature(secret: str, fields: Mapping[str, str]) -> str:
    """The `Signature` Novofon sends with an event (KeyError for an event without one)."""
    names = SIGNED_FIELDS[fields.get("event", "").strip().upper()]
    return _hex_hmac_base64(secret, "".join(fields.get(name, "") for name in names))


def verify_webhook(secret: str | None, fields: Mapping[str, str], signature: str | None) -> bool:
    """Constant-time check of the `Signature` header; False without a secret or a signature."""
    if not secret or not signature:
        return False
    if fields.get("event", "").strip().upper() not in SIGNED_FIELDS:
        return False
    expected = webhook_signature(secret, fields)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def disposition_status(disposition: str) -> CallStatus:
    """`no answer` → `Missed`; an unknown disposition keeps its words: `no trunk` → `NoTrunk`."""
    raw = disposition.strip().lower()
    known = DISPOSITIONS.get(raw)
    if known is not None:
        return known
    return CallStatus("".join(word.capitalize() for word in raw.split()) or "Unknown")


def dedup_key(pbx_call_id: str, event: str, extra: str = "") -> str:
    """Novofon repeats events and sends END and OUT_END for one callback: (pbx_call_id, event)."""
    return hashlib.sha256(f"{PROVIDER}|{pbx_call_id}|{event}|{extra}".encode()).hexdigest()


class _Fields:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = fields

    def optional(self, name: str) -> str | None:
        value = self._fields.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > _LIMITS.get(name, _MAX_FIELD):
            raise InvalidPayload(name, "is too long")
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise InvalidPayload(name, "is required")
        return value

    def party(self, name: str) -> str | Extension:
        try:
            return parse_party(self.required(name))
        except InvalidPhone as exc:
            raise InvalidPayload(name, str(exc)) from None

    def seconds(self, name: str) -> int:
        try:
            return bounded_number(self.optional(name) or "0", MAX_SECONDS)
        except ValueError as exc:
            raise InvalidPayload(name, f"{exc} (seconds)") from None

    def start(self, zone: ZoneInfo) -> datetime:
        return parse_call_start(self.required("call_start"), zone)


def parse_call_start(value: str, zone: ZoneInfo) -> datetime:
    """`2024-01-01 12:00:00` in the account's zone (no offset is sent) → an aware UTC datetime."""
    try:
        local = datetime.strptime(value.strip(), TIME_FORMAT)
    except ValueError:
        raise InvalidPayload("call_start", "must look like 2024-01-01 12:00:00") from None
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:  # 0001-01-01 00:00:00 in a zone east of UTC is before year 1
        raise InvalidPayload("call_start", "out of range") from None


NovofonPush = EventPush | HistoryPush | RecordPush


@dataclass(frozen=True)
class Notification:
    """One webhook as the pushes it means, each with its dedup key, applied in order."""

    event: str
    pbx_call_id: str
    pushes: tuple[tuple[NovofonPush, str], ...]
    # NOTIFY_RECORD: the recording's id; its link must be requested through the API.
    call_id_with_rec: str | None = None

    @property
    def phone(self) -> str | Extension | None:
        return next((p.phone for p, _ in self.pushes if not isinstance(p, RecordPush)), None)


def _manager(f: _Fields) -> str:
    return f.optional("internal") or ""


def _direction(pbx_call_id: str, default: Literal["in", "out"]) -> Literal["in", "out"]:
    """`out_…` ids are calls the PBX placed (a callback's NOTIFY_END leg included)."""
    prefix = pbx_call_id[:4].lower()
    return "out" if prefix == "out_" else "in" if prefix.startswith("in_") else default


def _end_party(f: _Fields, event: str) -> str | Extension:
    """The client of an ended call. A callback's NOTIFY_END names the manager's extension as the
    caller and the dialled client as `called_did`."""
    if event == "NOTIFY_OUT_END":
        return f.party("destination")
    caller = f.party("caller_id")
    if isinstance(caller, Extension) and f.optional("called_did"):
        called = f.party("called_did")
        if isinstance(called, str):
            return called
    return caller


def _ended(
    f: _Fields, event: str, direction: Literal["in", "out"], zone: ZoneInfo
) -> tuple[tuple[NovofonPush, str], ...]:
    """NOTIFY_END / NOTIFY_OUT_END: COMPLETED when a person answered, then the outcome."""
    pbx_call_id = f.required("pbx_call_id")
    client = _end_party(f, event)
    direction = _direction(pbx_call_id, direction)
    internal = _manager(f)
    status = disposition_status(f.required("disposition"))
    history = HistoryPush(
        direction=direction,
        user=internal,
        phone=client,
        start=f.start(zone),
        duration=f.seconds("duration"),
        callid=pbx_call_id,
        status=status,
        ext=internal or None,
        telnum=f.optional("caller_id") if event == "NOTIFY_OUT_END" else None,
        diversion=f.optional("called_did") if client != f.optional("called_did") else None,
        # A callback reports both legs (END and OUT_END): one status line per outcome.
        status_line_once=True,
    )
    pushes: list[tuple[NovofonPush, str]] = []
    if status == CallStatus.SUCCESS:
        completed = EventPush(
            type=CallEventType.COMPLETED,
            phone=client,
            user=internal,
            callid=pbx_call_id,
            ext=internal or None,
        )
        # Shared by END and OUT_END: the second COMPLETED of one call is a duplicate.
        pushes.append((completed, dedup_key(pbx_call_id, "COMPLETED")))
    pushes.append((history, dedup_key(pbx_call_id, event)))
    return tuple(pushes)


def parse_notification(fields: Mapping[str, str], zone: ZoneInfo) -> Notification:
    """A verified webhook's fields → a Notification, or InvalidPayload naming the bad field."""
    f = _Fields(fields)
    event = (f.optional("event") or "").upper()
    if event not in SIGNED_FIELDS:
        raise InvalidPayload("event", f"must be one of {', '.join(EVENTS)}")
    pbx_call_id = f.required("pbx_call_id")
    internal = _manager(f)
    pushes: tuple[tuple[NovofonPush, str], ...]
    if event in ("NOTIFY_START", "NOTIFY_INTERNAL"):
        f.start(zone)  # validated: a malformed time is a malformed event
        push = EventPush(
            type=CallEventType.INCOMING,
            phone=f.party("caller_id"),
            user=internal,
            callid=pbx_call_id,
            direction=_direction(pbx_call_id, "in"),
            ext=internal or None,
            diversion=f.optional("called_did"),
        )
        pushes = ((push, dedup_key(pbx_call_id, event, internal)),)
    elif event == "NOTIFY_ANSWER":
        f.start(zone)
        answered_by = internal or f.optional("destination") or ""
        push = EventPush(
            type=CallEventType.ACCEPTED,
            phone=f.party("caller_id"),
            user=answered_by,
            callid=pbx_call_id,
            direction="in",
            ext=answered_by or None,
        )
        pushes = ((push, dedup_key(pbx_call_id, event, answered_by)),)
    elif event == "NOTIFY_OUT_START":
        f.start(zone)
        push = EventPush(
            type=CallEventType.OUTGOING,
            phone=f.party("destination"),
            user=internal,
            callid=pbx_call_id,
            direction="out",
            ext=internal or None,
        )
        pushes = ((push, dedup_key(pbx_call_id, event)),)
    elif event == "NOTIFY_END":
        pushes = _ended(f, event, "in", zone)
    elif event == "NOTIFY_OUT_END":
        pushes = _ended(f, event, "out", zone)
    else:  # NOTIFY_RECORD: the link is filled in once the API gives it
        record_id = f.required("call_id_with_rec")
        return Notification(event, pbx_call_id, (), call_id_with_rec=record_id)
    return Notification(event, pbx_call_id, pushes)
