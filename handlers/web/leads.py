"""`POST /api/v1/leads`: a site form's lead (bearer token, like the rest of /api/v1)."""

from __future__ import annotations

from aiohttp import web

from handlers.web.api_models import FormLeadRequest, LeadAnswer, LeadHeaders
from handlers.web.context import LEAD_FORMS
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from handlers.web.validation import answer, parse_body, parse_headers
from telephony.leads.service import FormLead

routes = web.RouteTableDef()


def form_lead(body: FormLeadRequest, idempotency_key: str | None) -> FormLead:
    """The validated form (aliases already folded into their fields) as the domain's lead."""
    return FormLead(
        phone=body.phone,
        name=body.name,
        email=body.email,
        comment=body.comment,
        is_need_callback=body.is_need_callback,
        roistat_visit=body.roistat_visit,
        metrika_client_id=body.metrika_client_id,
        yclid=body.yclid,
        utm_source=body.utm_source,
        utm_medium=body.utm_medium,
        utm_campaign=body.utm_campaign,
        utm_content=body.utm_content,
        utm_term=body.utm_term,
        landing_url=body.landing_url,
        referrer=body.referrer,
        external_key=idempotency_key,
    )


@routes.post("/api/v1/leads")
@operation(
    "A site form's lead (sent to Roistat like a call's)",
    body=FormLeadRequest,
    headers=LeadHeaders,
    answers={200: LeadAnswer, 201: LeadAnswer, 400: None, 503: None},
    tag="leads",
)
async def post_lead(request: web.Request) -> web.Response:
    ctx = request.app[LEAD_FORMS]
    if ctx.leads is None:
        raise JsonError(503, "Leads are not configured")
    body = await parse_body(request, FormLeadRequest)
    key = parse_headers(request, LeadHeaders).idempotency_key
    created = await ctx.leads.create_form_lead(form_lead(body, key))
    return answer(
        LeadAnswer(lead_id=created.lead_id, client_id=created.client_id),
        201 if created.created else 200,
    )
