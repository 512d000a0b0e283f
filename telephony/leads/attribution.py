"""Where a lead came from: the call-tracking attribution of a call, or a site form's fields.

A call uses its `call_attributions` row when there is one; otherwise the same client's latest
site-form lead (it carried the visitor's cookies) within a window; otherwise nothing, which
Roistat receives as `nocookie`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.among import among_param
from storage.leads_models import Lead
from storage.models import Call, CallAttribution


@dataclass(frozen=True)
class Attribution:
    roistat_visit: str | None = None
    metrika_client_id: str | None = None
    yclid: str | None = None
    user_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    landing_url: str | None = None
    referrer: str | None = None
    source: str | None = None
    tracking_number: str | None = None

    def variables(self) -> dict[str, str | None]:
        """Roistat's variable names."""
        return {
            "visit": self.roistat_visit,
            "metrikaClientId": self.metrika_client_id,
            "yclid": self.yclid,
            "utmSource": self.utm_source,
            "utmMedium": self.utm_medium,
            "utmCampaign": self.utm_campaign,
            "utmContent": self.utm_content,
            "utmTerm": self.utm_term,
            "landingPage": self.landing_url,
            "referrer": self.referrer,
            "source": self.source,
        }

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def from_lead(lead: Lead) -> Attribution:
    return Attribution(
        roistat_visit=lead.roistat_visit,
        metrika_client_id=lead.metrika_client_id,
        yclid=lead.yclid,
        utm_source=lead.utm_source,
        utm_medium=lead.utm_medium,
        utm_campaign=lead.utm_campaign,
        utm_content=lead.utm_content,
        utm_term=lead.utm_term,
        landing_url=lead.landing_url,
        referrer=lead.referrer,
    )


def from_row(row: CallAttribution) -> Attribution:
    return Attribution(
        roistat_visit=row.roistat_visit,
        metrika_client_id=row.metrika_client_id,
        yclid=row.yclid,
        utm_source=row.utm_source,
        utm_medium=row.utm_medium,
        utm_campaign=row.utm_campaign,
        utm_content=row.utm_content,
        utm_term=row.utm_term,
        landing_url=row.landing_url,
        referrer=row.referrer,
        source=row.source,
        tracking_number=row.tracking_number,
    )


# Built once: asked for every decided push of a call without tracking attribution.
_FORM_LEADS = (
    select(Lead)
    .where(
        col(Lead.source) == "form",
        col(Lead.created_at) >= bindparam("since"),
        or_(
            col(Lead.roistat_visit).is_not(None),
            col(Lead.metrika_client_id).is_not(None),
            col(Lead.yclid).is_not(None),
            col(Lead.utm_source).is_not(None),
        ),
    )
    .order_by(col(Lead.id).desc())
)
_LATEST_FORM_LEAD = _FORM_LEADS.where(col(Lead.client_id) == bindparam("client")).limit(1)
_ATTRIBUTIONS_OF = select(CallAttribution).where(
    among_param(col(CallAttribution.call_id), "calls")
)
_FORM_LEADS_OF = _FORM_LEADS.where(among_param(col(Lead.client_id), "clients"))


async def call_attribution(
    session: AsyncSession, call: Call, *, now: datetime, form_days: int
) -> Attribution:
    row = await session.get(CallAttribution, call.id)
    if row is not None:
        return from_row(row)
    if call.client_id is None or form_days <= 0:
        return Attribution()
    params = {"client": call.client_id, "since": now - timedelta(days=form_days)}
    lead = (await session.exec(_LATEST_FORM_LEAD, params=params)).first()
    return from_lead(lead) if lead is not None else Attribution()


async def call_attributions(
    session: AsyncSession, calls: Sequence[Call], *, now: datetime, form_days: int
) -> dict[int, Attribution]:
    """`call_attribution` for several calls: their rows in one query, then the latest form
    lead of the clients of the calls without one in another."""
    ids = [call.id for call in calls if call.id is not None]
    found: dict[int, Attribution] = {}
    if ids:
        rows = await session.exec(_ATTRIBUTIONS_OF, params={"calls": ids})
        found = {row.call_id: from_row(row) for row in rows.all()}
    clients = sorted(
        {call.client_id for call in calls if call.id not in found and call.client_id is not None}
    )
    latest: dict[int, Lead] = {}
    if clients and form_days > 0:
        since = now - timedelta(days=form_days)
        leads = await session.exec(_FORM_LEADS_OF, params={"clients": clients, "since": since})
        for lead in leads.all():  # newest first: the first of each client wins
            if lead.client_id is not None:
                latest.setdefault(lead.client_id, lead)
    for call in calls:
        if call.id is None or call.id in found:
            continue
        form = latest.get(call.client_id) if call.client_id is not None else None
        found[call.id] = from_lead(form) if form is not None else Attribution()
    return found
