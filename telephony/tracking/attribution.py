"""Which visit a call came from: the lease that held the dialled number when the call started.

Applies to any provider that reports the dialled number (MegaFon `diversion`, Novofon
`called_did`). A call is attributed once; the first push that carries the number decides.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.attribution_queries import leases_at
from storage.models import Call, CallAttribution, Client
from storage.tracking_models import TrackingNumber, TrackingVisit
from storage.tracking_queries import insert_ignore
from storage.types import utcnow
from telephony.calls.pipeline import Attributed
from telephony.clients import set_variables
from telephony.events import CallUpdate
from telephony.phones import InvalidPhone, normalize_phone
from telephony.tracking.confidence import judge, returning_caller
from telephony.tracking.config import TrackingConfig
from telephony.tracking.visitors import UTM_TAGS

METHOD = "tracking"
# Client variables about the visit of the last tracked call (cleared when unknown).
VISIT_VARIABLES = (
    *UTM_TAGS,
    "yclid",
    "metrika_client_id",
    "roistat_visit",
    "landing_url",
    "tracking_visit_id",
)


async def attribute_call(
    session: AsyncSession, config: TrackingConfig, call: Call, dialled: str, at: datetime
) -> CallAttribution | None:
    """Attribute a call to the number it came in on. None when the number is not ours or the
    call was attributed already."""
    assert call.id is not None
    try:
        number = normalize_phone(dialled)
    except InvalidPhone:
        return None
    pool = config.pool_of_number(number)
    known = await session.get(TrackingNumber, number)
    if pool is None and known is None:
        return None  # the default number or any other line: not call tracking
    if await session.get(CallAttribution, call.id) is not None:
        return None
    static = pool is not None and number == pool.static_number
    # The newest lease still counting wins; how sure that is goes with it (confidence.py).
    judgement = judge([] if static else await leases_at(session, number, at), at, static=static)
    judgement = await returning_caller(session, call.phone, call.id, at, judgement)
    visit = None
    if judgement.visit_id is not None:
        visit = await session.get(TrackingVisit, judgement.visit_id)
    if visit is not None:
        source = visit.source
    elif pool is not None:
        source = pool.label
    else:
        assert known is not None
        source = known.pool  # a number since removed from trubka.toml
    values = _values(call.id, number, source, visit)
    values.update(judgement.columns())
    if not await insert_ignore(session, CallAttribution, values):
        return None  # a concurrent push of the same call got here first
    attribution = CallAttribution.model_validate(values)
    if call.client_id is not None:
        client = await session.get(Client, call.client_id)
        if client is not None:
            await set_variables(session, client, client_variables(attribution))
    return attribution


def _values(
    call_id: int, number: str, source: str | None, visit: TrackingVisit | None
) -> dict[str, object]:
    values: dict[str, object] = {
        "call_id": call_id,
        "method": METHOD,
        "tracking_number": number,
        "channel_level": visit is None,
        "source": source,
        "created_at": utcnow(),
    }
    if visit is not None:
        values.update(
            visit_id=visit.id,
            utm_source=visit.utm_source,
            utm_medium=visit.utm_medium,
            utm_campaign=visit.utm_campaign,
            utm_content=visit.utm_content,
            utm_term=visit.utm_term,
            yclid=visit.yclid,
            metrika_client_id=visit.metrika_client_id,
            roistat_visit=visit.roistat_visit,
            ga_client_id=visit.ga_client_id,
            landing_url=visit.landing_url,
            referrer=visit.referrer,
        )
    return values


def client_variables(attribution: CallAttribution) -> dict[str, str | None]:
    """`utm_source` … of the visit, and `tracking_source`. (Not the tracking number: a value that
    looks like a phone would make the client findable by our own line.)"""
    values: dict[str, str | None] = {name: None for name in VISIT_VARIABLES}
    if not attribution.channel_level:
        values.update({name: getattr(attribution, name) or None for name in VISIT_VARIABLES[:-1]})
        values["tracking_visit_id"] = attribution.visit_id
    values["tracking_source"] = attribution.source
    return values


class TrackingAttributor:
    """The call pipeline's `tracking` step: attributes an inbound call when it first shows the
    number it came in on."""

    def __init__(self, config: TrackingConfig) -> None:
        self._config = config

    async def decide(self, session: AsyncSession, update: CallUpdate) -> Attributed:
        call = update.call
        if call.id is None or not call.diversion or call.internal or call.direction == "out":
            return Attributed()
        at = call.started_at or call.created_at
        attribution = await attribute_call(session, self._config, call, call.diversion, at)
        return Attributed(attribution is not None)

    async def committed(self, update: CallUpdate, result: Attributed) -> None:
        """Nothing to do after the commit: the attribution is the call's own columns."""
