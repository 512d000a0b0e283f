"""`POST /api/v1/leads`: a site form's lead (bearer token, like the rest of /api/v1)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handlers.web.api_models import FormLeadRequest, LeadAnswer
from handlers.web.bodies import read_json_object
from handlers.web.context import LEAD_FORMS
from handlers.web.errors import JsonError
from handlers.web.openapi import operation
from telephony.leads.service import FormLead
from telephony.phones import InvalidPhone, normalize_phone

routes = web.RouteTableDef()

# field → maximum length (Roistat's limits where it has them)
TEXT_FIELDS = {
    "name": 1024,
    "email": 1024,
    "comment": 4096,
    "roistat_visit": 64,
    "metrika_client_id": 64,
    "yclid": 100,
    "utm_source": 300,
    "utm_medium": 300,
    "utm_campaign": 300,
    "utm_content": 300,
    "utm_term": 300,
    "landing_url": 4096,
    "referrer": 4096,
}
# Roistat's own cookie name is accepted as an alias of roistat_visit.
ALIASES = {"roistat": "roistat_visit", "landing_page": "landing_url"}


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise JsonError(400, "Invalid parameters", field=name, detail="must be a string")
    value = value.strip()
    if len(value) > limit:
        raise JsonError(400, "Invalid parameters", field=name, detail=f"longer than {limit}")
    return value or None


def _flag(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return str(value) == "1"
    raise JsonError(400, "Invalid parameters", field="is_need_callback", detail="must be 0/1")


def parse_form_lead(body: dict[str, Any], idempotency_key: str | None) -> FormLead:
    for alias, name in ALIASES.items():
        if alias in body and name not in body:
            body[name] = body[alias]
    values = {name: _text(body, name, limit) for name, limit in TEXT_FIELDS.items()}
    raw_phone = body.get("phone")
    phone: str | None = None
    if raw_phone not in (None, ""):
        if not isinstance(raw_phone, str | int) or isinstance(raw_phone, bool):
            raise JsonError(400, "Invalid phone", field="phone", detail="must be a string")
        try:
            phone = normalize_phone(str(raw_phone))
        except InvalidPhone as exc:
            raise JsonError(400, "Invalid phone", field="phone", detail=str(exc)) from None
    if phone is None and values["email"] is None:
        raise JsonError(400, "Invalid parameters", detail="phone or email is required")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 200:
        raise JsonError(400, "Invalid parameters", field="Idempotency-Key", detail="1..200 chars")
    return FormLead(
        phone=phone,
        is_need_callback=_flag(body.get("is_need_callback")),
        external_key=idempotency_key,
        **values,
    )


@routes.post("/api/v1/leads")
@operation(
    "A site form's lead (sent to Roistat like a call's)",
    body=FormLeadRequest,
    answers={200: LeadAnswer, 201: LeadAnswer, 400: None, 503: None},
    tag="leads",
)
async def post_lead(request: web.Request) -> web.Response:
    ctx = request.app[LEAD_FORMS]
    if ctx.leads is None:
        raise JsonError(503, "Leads are not configured")
    form = parse_form_lead(await read_json_object(request), request.headers.get("Idempotency-Key"))
    created = await ctx.leads.create_form_lead(form)
    return web.json_response(
        {"lead_id": created.lead_id, "client_id": created.client_id},
        status=201 if created.created else 200,
    )
