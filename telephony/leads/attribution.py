"""Where a lead came from: the call-tracking attribution of a call, or a site form's fields.

A call uses its `call_attributions` row when there is one; otherwise the same client's latest
site-form lead (it carried the visitor's cookies) within a window; otherwise nothing, which
Roistat receives as `nocookie`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

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
_LATEST_FORM_LEAD = (
    select(Lead)
    .where(
        col(Lead.client_id) == bindparam("client"),
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
    .limit(1)
)


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
