"""The call vocabulary, defined once: a call's outcome and the events a PBX reports.

Defined in `storage.outcome` (the report queries need its SQL form, and storage imports nothing
of ours); this is the domain's name for it. The rule — answered, missed, terminal, talk
seconds — is in that module's docstring.
"""

from __future__ import annotations

from storage.outcome import (
    CALL_EVENTS,
    CALL_STATUSES,
    SUCCESS,
    CallEventType,
    CallFacts,
    CallOutcome,
    CallStatus,
    OpenStrEnum,
    OutcomeColumns,
)

__all__ = [
    "CALL_EVENTS",
    "CALL_STATUSES",
    "SUCCESS",
    "CallEventType",
    "CallFacts",
    "CallOutcome",
    "CallStatus",
    "OpenStrEnum",
    "OutcomeColumns",
]
