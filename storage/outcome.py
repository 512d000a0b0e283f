"""The call vocabulary, defined once: what a PBX reports (statuses, events) and what a call's
outcome is (answered, missed, terminal, talk seconds), in Python and as SQL expressions.

Only SQLAlchemy here: storage imports nothing of ours, so the report queries take it from this
module; the domain knows it as `telephony.calls.outcome`.

The rule (issue 24):

- **answered** (a conversation happened) iff the PBX's final status is `Success`. While no final
  status is known yet, an ACCEPTED (or COMPLETED) seen — the `answered` column — counts as
  answered: the live view. ACCEPTED and then a final `Missed` (a voicemail or an IVR picked up)
  is *not* answered: the status wins over the flag.
- **terminal**: the final status arrived, or the call ended.
- **missed**: an inbound, non-internal call that is terminal and not answered (a call still
  ringing is not missed yet).
- **talk seconds**: when answered, the duration less the waiting the PBX reports (MegaFon's
  `duration` counts the ringing too), never below 0; 0 when not answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Integer, String, and_, case, false, func, literal, or_
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeDecorator


class OpenStrEnum(StrEnum):
    """A StrEnum that keeps a value it does not know, as sent, rather than refusing it.

    A PBX adds statuses and events without notice: `CallStatus("Voicemail")` is a member-like
    value (not among the listed members, `known` is False) that compares, hashes, prints and
    stores as the plain string — what the column held before it was typed."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    @property
    def known(self) -> bool:
        return self._value_ in type(self)._value2member_map_


class CallStatus(OpenStrEnum):
    """A call's final outcome (the `history` push; Salebot's `megafon_call_status <Status>`)."""

    SUCCESS = "Success"
    MISSED = "Missed"
    CANCEL = "Cancel"
    BUSY = "Busy"
    NOT_AVAILABLE = "NotAvailable"
    NOT_ALLOWED = "NotAllowed"
    NOT_FOUND = "NotFound"


class CallEventType(OpenStrEnum):
    """What a PBX says happens during a call (`megafon_call_event <EVENT>`)."""

    INCOMING = "INCOMING"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    OUTGOING = "OUTGOING"
    TRANSFERRED = "TRANSFERRED"
    # Ours, not the PBX's: megafon_call() asked the PBX to place the call (no trigger fires).
    REQUESTED = "REQUESTED"


CALL_STATUSES: tuple[str, ...] = tuple(status.value for status in CallStatus)
# The events a PBX sends (what `on: call_event` may name).
CALL_EVENTS: tuple[str, ...] = tuple(
    event.value for event in CallEventType if event is not CallEventType.REQUESTED
)
SUCCESS = CallStatus.SUCCESS


class _OpenEnumString(TypeDecorator[Any]):
    """A VARCHAR(32) read back as its enum (unknown values as sent): no schema change."""

    impl = String(32)
    cache_ok = True
    enum: type[OpenStrEnum] = OpenStrEnum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.enum(value)


class CallStatusString(_OpenEnumString):
    cache_ok = True  # checked per class
    enum = CallStatus


class CallEventString(_OpenEnumString):
    cache_ok = True
    enum = CallEventType


class CallFacts(Protocol):
    """What a call's outcome is decided from: a `Call` row, or a Core row with these columns."""

    @property
    def status(self) -> str | None: ...
    @property
    def answered(self) -> bool: ...
    @property
    def ended(self) -> bool: ...
    @property
    def direction(self) -> str | None: ...
    @property
    def internal(self) -> bool: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def wait(self) -> int | None: ...


@dataclass(frozen=True)
class CallOutcome:
    """A call's outcome by the rule in this module's docstring (`of` in Python, `sql` in SQL)."""

    answered: bool
    missed: bool
    terminal: bool
    talk_seconds: int

    @classmethod
    def of(cls, call: CallFacts) -> CallOutcome:
        answered = call.status == SUCCESS if call.status is not None else bool(call.answered)
        terminal = call.status is not None or bool(call.ended)
        inbound = call.direction == "in" and not call.internal
        talk = max((call.duration or 0) - (call.wait or 0), 0) if answered else 0
        return cls(
            answered=answered,
            missed=inbound and terminal and not answered,
            terminal=terminal,
            talk_seconds=talk,
        )

    @staticmethod
    def sql(calls: FromClause) -> OutcomeColumns:
        """The same rule over a calls table (or an alias of it): two-valued expressions (never
        NULL, so `~answered` is "not answered"), identical on SQLite and PostgreSQL."""
        c = calls.c
        # The final status wins; before it, the ACCEPTED flag (never NULL) decides.
        answered = func.coalesce(c.status == SUCCESS.value, c.answered.is_(True))
        terminal = or_(c.status.is_not(None), c.ended.is_(True))
        inbound = and_(func.coalesce(c.direction == "in", false()), c.internal.is_(False))
        talk = func.coalesce(c.duration, 0) - func.coalesce(c.wait, 0)
        return OutcomeColumns(
            answered=answered,
            terminal=terminal,
            missed=and_(inbound, terminal, ~answered),
            missed_with_status=and_(inbound, c.status.is_not(None), ~answered),
            talk_seconds=case((and_(answered, talk > 0), talk), else_=literal(0, Integer)),
        )


@dataclass(frozen=True)
class OutcomeColumns:
    """`CallOutcome` as SQL expressions over one calls table (`CallOutcome.sql`)."""

    answered: ColumnElement[bool]
    terminal: ColumnElement[bool]
    missed: ColumnElement[bool]
    # `missed` among calls whose final status arrived (terminal by that alone). Reports count
    # calls with a start, which only the final status brings: for them this *is* `missed`, and
    # it reads only columns the report index covers (`ended` is not among them).
    missed_with_status: ColumnElement[bool]
    talk_seconds: ColumnElement[int]


# The inbox's lanes: which stored pushes are applied first. The values are stored
# (`call_events.lane`, a small int); the rule that puts a push in a lane is
# `telephony/calls/lanes.py`. Storage only orders by them and counts them.
class Lane(IntEnum):
    LIVE = 0  # a person waits for it: a call ringing, answered, ended, missed just now
    HISTORY = 1  # the record of what happened: outcomes, ratings, recordings, replays

    @property
    def label(self) -> str:
        """The lane's name in /metrics (`trubka_inbox_backlog{lane="live"}`)."""
        return self.name.lower()
