"""What becomes a lead, and the call flags the rules (and Metrika's goals) are built on.

first-time caller: no earlier inbound call from this number (within the window, 0 = ever);
targeted: answered, and the talk (duration minus waiting) lasted at least `targeted_seconds`.
Answered, missed and the talk are CallOutcome's (telephony.calls.outcome), as everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.models import Call
from telephony.calls.outcome import CallOutcome
from telephony.leads.attribution import Attribution
from telephony.leads.config import LeadsConfig


def hold_seconds(call: Call) -> int:
    """Metrika's HoldDuration: the waiting the PBX reports, else all of an unanswered call."""
    if call.wait is not None:
        return call.wait
    return 0 if CallOutcome.of(call).answered else call.duration or 0


def is_targeted(call: Call, config: LeadsConfig) -> bool:
    outcome = CallOutcome.of(call)
    return outcome.answered and outcome.talk_seconds >= config.targeted_seconds


# Built once (every new inbound call asks).
_EARLIER_CALLS = select(func.count()).where(
    col(Call.phone) == bindparam("phone"),
    col(Call.direction) == "in",
    col(Call.internal).is_(False),
    col(Call.id) < bindparam("call"),
)
_EARLIER_CALLS_SINCE = _EARLIER_CALLS.where(col(Call.created_at) >= bindparam("since"))


async def is_first_time(
    session: AsyncSession, call: Call, config: LeadsConfig, *, now: datetime
) -> bool:
    if not call.phone:
        return False
    params: dict[str, object] = {"phone": call.phone, "call": call.id}
    query = _EARLIER_CALLS
    if config.first_time_window_days:
        query = _EARLIER_CALLS_SINCE
        params["since"] = now - timedelta(days=config.first_time_window_days)
    return int((await session.exec(query, params=params)).one()) == 0


# The oldest counting inbound call of each phone (built once: asked for every slice).
_OLDEST_WHERE = (
    among_param(col(Call.phone), "phones"),
    col(Call.direction) == "in",
    col(Call.internal).is_(False),
)
_OLDEST_CALLS = select(Call.phone, func.min(Call.id)).where(*_OLDEST_WHERE).group_by(Call.phone)
_OLDEST_CALLS_SINCE = (
    select(Call.phone, func.min(Call.id))
    .where(*_OLDEST_WHERE, col(Call.created_at) >= bindparam("since"))
    .group_by(Call.phone)
)


async def first_time_many(
    session: AsyncSession, calls: Sequence[Call], config: LeadsConfig, *, now: datetime
) -> dict[int, bool]:
    """`is_first_time` for several calls in one query: the oldest counting inbound call of each
    phone; a call is the first when there is none older than itself."""
    phones = sorted({call.phone for call in calls if call.phone})
    oldest: dict[str, int] = {}
    if phones:
        params: dict[str, object] = {"phones": phones}
        query = _OLDEST_CALLS
        if config.first_time_window_days:
            query = _OLDEST_CALLS_SINCE
            params["since"] = now - timedelta(days=config.first_time_window_days)
        rows = await session.exec(query, params=params)
        oldest = {phone: int(first) for phone, first in rows.all() if phone and first is not None}
    found: dict[int, bool] = {}
    for call in calls:
        assert call.id is not None
        first = oldest.get(call.phone) if call.phone else None
        found[call.id] = bool(call.phone) and (first is None or first >= call.id)
    return found


def rejection(
    call: Call, attribution: Attribution, config: LeadsConfig, *, ended: bool
) -> str | None:
    """Why this call is not a lead, or None when it is one."""
    if not config.calls:
        return "call leads are off"
    if call.direction != "in":
        return "not inbound"
    if call.internal and config.skip_internal:
        return "internal"
    if not call.phone:
        return "no caller number"
    if call.phone in config.skip_numbers:
        return "skipped number"
    if config.tracking_numbers_only:
        dialed = attribution.tracking_number or call.diversion
        if dialed not in config.tracking_numbers and attribution.tracking_number is None:
            return "not a tracking number"
    if config.first_time_only and not call.first_time_caller:
        return "not a first-time caller"
    if ended:
        # Not a conversation (a voicemail that picked up too): the rule's "missed".
        if not config.include_missed and not CallOutcome.of(call).answered:
            return "missed"
        if config.targeted_only and not call.targeted:
            return "not targeted"
    return None
