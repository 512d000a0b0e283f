"""Which lane a stored push goes to, and which call it belongs to: the rule, in one place.

Why: after an outage a PBX may replay hours of history (thousands of pushes) while new calls
keep coming. Applied strictly oldest first, a new call's INCOMING would wait behind the whole
replay. So the inbox applies the `live` lane first — what a person is waiting for:

- the ringing, answer and end of a call (INCOMING, OUTGOING — a manager's dial-out ringing —,
  ACCEPTED, COMPLETED);
- a missed-call outcome (a `history` whose status is not Success: Missed, Busy, NotAvailable…)
  of a call that ended within `LIVE_WINDOW` (someone should call back).

Everything else is the `history` lane: Success outcomes, ratings, recordings, other events
(CANCELLED, TRANSFERRED), and any outcome of a call that ended long ago (a replay). When such a
late outcome is stored, its call's pending live pushes move to the history lane too: a finished
call's INCOMING replayed an hour later is no longer live.

Lanes never reorder one call: the claim (storage/inbox_claim.py) applies a call's pushes in the
order they were stored, pulling a live push's earlier pending pushes along with it. The call is
`call_key`: provider and the PBX's call id (the two legs of a transfer are two keys until
applying joins them; see docs/telephony.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.models import Call
from storage.outcome import Lane
from telephony.calls.outcome import CallEventType, CallStatus
from telephony.calls.pushes import EventPush, HistoryPush, RatingPush, RecordPush

# A missed call that ended longer ago than this is history, not a call to return now.
LIVE_WINDOW = timedelta(minutes=15)
_LIVE_EVENTS = frozenset(
    {
        CallEventType.INCOMING,
        CallEventType.OUTGOING,
        CallEventType.ACCEPTED,
        CallEventType.COMPLETED,
    }
)
_KEY_LENGTH = 96  # call_events.call_key

Push = EventPush | HistoryPush | RatingPush | RecordPush


@dataclass(frozen=True)
class Routing:
    """Where a stored push goes: its lane, its call, and whether it ends its call late."""

    lane: Lane
    call_key: str | None
    late_end: bool = False  # a late outcome: the call's pending live pushes become history


def route(provider: str, push: Push | None, now: datetime) -> Routing:
    """The lane and call of a push about to be stored (None: unknown, history, its own call)."""
    if push is None:
        return Routing(Lane.HISTORY, None)
    key = call_key(provider, push.callid)
    if isinstance(push, EventPush):
        return Routing(Lane.LIVE if live_event(push) else Lane.HISTORY, key)
    if isinstance(push, HistoryPush):
        recent = _ended_at(push) >= now - LIVE_WINDOW
        missed = push.status != CallStatus.SUCCESS
        return Routing(Lane.LIVE if recent and missed else Lane.HISTORY, key, late_end=not recent)
    return Routing(Lane.HISTORY, key)


def live_event(push: Push) -> bool:
    """A call's ringing, answer or end: live unless its call's late outcome moved it."""
    return isinstance(push, EventPush) and push.type in _LIVE_EVENTS


def call_key(provider: str, callid: str) -> str | None:
    """`megafon:<callid>`; a call id too long for the column is hashed (still one per call)."""
    if not callid:
        return None
    key = f"{provider}:{callid}"
    if len(key) <= _KEY_LENGTH:
        return key
    return f"{provider}:#{hashlib.sha256(callid.encode()).hexdigest()}"


def _ended_at(push: HistoryPush) -> datetime:
    return push.start + timedelta(seconds=push.duration)


def replayed(call: Call, now: datetime) -> bool:
    """A call that ended longer than LIVE_WINDOW ago (a PBX replaying its history): its lines
    are news for nobody's phone, so they are no alert (telegram notes: bot/telegram/notifier.py)."""
    if not call.ended or call.started_at is None:
        return False
    return call.started_at + timedelta(seconds=call.duration or 0) < now - LIVE_WINDOW
