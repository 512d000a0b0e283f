"""The call vocabulary, defined once: a call's outcome and the events a PBX reports."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """A call's outcome (the `history` push; Salebot's `megafon_call_status <Status>`)."""

    SUCCESS = "Success"
    MISSED = "Missed"
    CANCEL = "Cancel"
    BUSY = "Busy"
    NOT_AVAILABLE = "NotAvailable"
    NOT_ALLOWED = "NotAllowed"
    NOT_FOUND = "NotFound"


class CallEventType(StrEnum):
    """What a PBX says happens during a call (`megafon_call_event <EVENT>`)."""

    INCOMING = "INCOMING"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    OUTGOING = "OUTGOING"
    TRANSFERRED = "TRANSFERRED"


CALL_STATUSES: tuple[str, ...] = tuple(status.value for status in CallStatus)
CALL_EVENTS: tuple[str, ...] = tuple(event.value for event in CallEventType)
