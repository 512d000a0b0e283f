"""Provider-neutral call pushes: every PBX's webhooks are parsed into these, then applied
by telephony.calls.apply the same way (MegaFon's vocabulary: INCOMING, ACCEPTED, … and history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from telephony.calls.outcome import CallEventType, CallStatus
from telephony.phones import Extension

# Bounds a push's numbers must lie within. A number outside them is a broken PBX: the push is
# answered 400 naming the field and nothing is stored, so no stored push can fail on its size.
MAX_SECONDS = 7 * 24 * 3600  # a call (or a wait) longer than a week is not a call
MAX_RATING = 100  # IVR ratings are 1..5 or 1..10
_DIGITS = frozenset("0123456789")


def bounded_number(value: str, maximum: int) -> int:
    """A whole number of ASCII digits within 0..maximum; ValueError says what is wrong.

    Only ASCII digits: `str.isdigit()` and `int()` also take "²" or "٣", which no PBX sends.
    """
    if not value or not _DIGITS.issuperset(value):
        raise ValueError("must be a whole number")
    if len(value) > len(str(maximum)) or int(value) > maximum:
        raise ValueError(f"must be at most {maximum}")
    return int(value)


@dataclass(frozen=True)
class EventPush:
    type: CallEventType
    phone: str | Extension  # the client's normalized phone, or an extension for internal calls
    user: str
    callid: str
    direction: Literal["in", "out"] | None = None
    ext: str | None = None
    telnum: str | None = None
    diversion: str | None = None
    group_name: str | None = None
    second_callid: str | None = None


@dataclass(frozen=True)
class HistoryPush:
    direction: Literal["in", "out"]
    user: str
    phone: str | Extension
    start: datetime
    duration: int
    callid: str
    status: CallStatus
    ext: str | None = None
    telnum: str | None = None
    diversion: str | None = None
    group_name: str | None = None
    link: str | None = None
    wait: int | None = None
    rating: int | None = None
    # Novofon reports one callback twice (NOTIFY_END and NOTIFY_OUT_END): a later history with
    # the outcome the call already has then adds no second status line to the dialog.
    status_line_once: bool = False


@dataclass(frozen=True)
class ContactQuery:
    phone: str | Extension
    callid: str | None = None
    diversion: str | None = None


@dataclass(frozen=True)
class RatingPush:
    callid: str
    phone: str | Extension
    rating: int
    user: str | None = None
    ext: str | None = None


@dataclass(frozen=True)
class RecordPush:
    """A call's recording became available (Novofon's NOTIFY_RECORD, its link fetched)."""

    callid: str
    link: str | None
    phone: str | Extension | None = None  # unknown: the call is found by its id
