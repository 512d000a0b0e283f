"""Very short calls to tracking numbers from phones that call them often: suspected fraud.

A competitor (or a script) dialling the pool's numbers and hanging up spoils the figures of the
campaign those numbers stand for. Such a call is flagged on the call (`suspected_fraud`, shown in
`GET /api/v1/calls/{id}` flags) once it ended with a known duration; reports count the flag.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Call
from storage.tracking_models import TrackingNumber
from telephony.calls.pipeline import FraudChecked
from telephony.events import CallUpdate
from telephony.phones import InvalidPhone, normalize_phone
from telephony.tracking.config import TrackingConfig


class ShortCallFlagger:
    """The call pipeline's `fraud` step: decides `suspected_fraud` once for every ended call to
    a tracking number."""

    def __init__(self, config: TrackingConfig) -> None:
        self._config = config

    async def committed(self, update_: CallUpdate, result: FraudChecked) -> None:
        """Nothing to do after the commit: the flag is the call's own column."""

    async def decide(self, session: AsyncSession, update_: CallUpdate) -> FraudChecked:
        call = update_.call
        rule = self._config.short_calls
        if (
            not rule.seconds
            or call.id is None
            or not call.ended
            or call.duration is None
            or call.suspected_fraud is not None
            or call.direction != "in"
            or call.internal
            or not call.phone
            or not call.diversion
        ):
            return FraudChecked()
        try:
            dialled = normalize_phone(call.diversion)
        except InvalidPhone:
            return FraudChecked()
        ours = self._config.pool_of_number(dialled) is not None
        if not ours and await session.get(TrackingNumber, dialled) is None:
            return FraudChecked()
        suspected = False
        if call.duration < rule.seconds:
            since = (call.started_at or call.created_at) - timedelta(hours=rule.window_hours)
            recent = select(func.count()).where(
                Call.phone == call.phone,
                Call.direction == "in",
                col(Call.id) <= call.id,
                col(Call.created_at) >= since,
            )
            suspected = int((await session.exec(recent)).one()) >= rule.min_calls
        # Decided once: a repeated push finds the flag set and changes nothing.
        await session.exec(
            update(Call)
            .where(col(Call.id) == call.id, col(Call.suspected_fraud).is_(None))
            .values(suspected_fraud=suspected)
        )
        return FraudChecked(suspected)
