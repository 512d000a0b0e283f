"""Roistat: proxy leads (`leads/add`, `leads/messages/add`) and calls (`project/phone-call`).

The proxy API reads PHP `http_build_query` parameters; we build them byte for byte and send them
as the query of a GET, or as a form body when the query would be too long for a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from storage.db import Database
from storage.leads_models import Lead
from storage.models import Call
from telephony.calls.outcome import CallStatus
from telephony.infra.backoff import pause_after_429
from telephony.infra.http import UpstreamClient, UpstreamError, UpstreamResponse
from telephony.infra.phpquery import http_build_query
from telephony.leads.attribution import Attribution
from telephony.leads.config import RoistatTemplates
from telephony.leads.outbox import Claimed, DeliveryError
from telephony.leads.templates import render

SINK_LEAD, SINK_MESSAGE, SINK_CALL = "roistat", "roistat_message", "roistat_call"
LEADS_ADD = "/api/proxy/1.0/leads/add"
MESSAGES_ADD = "/api/proxy/1.0/leads/messages/add"
PHONE_CALL = "/api/v1/project/phone-call"
# Longer queries go as a POST body (URLs beyond ~8 KB are refused by many servers).
MAX_GET_QUERY = 6000

# A call's final status → Roistat call-tracking status ("ANSWER" iff CallOutcome's answered).
CALL_STATUS: dict[str, str] = {
    CallStatus.SUCCESS: "ANSWER",
    CallStatus.BUSY: "BUSY",
    CallStatus.MISSED: "NOANSWER",
    CallStatus.CANCEL: "CANCEL",
    CallStatus.NOT_AVAILABLE: "CHANUNAVAIL",
    CallStatus.NOT_ALLOWED: "CONGESTION",
    CallStatus.NOT_FOUND: "CONGESTION",
}


def _flag(value: bool) -> str:
    return "1" if value else "0"


def lead_params(
    templates: RoistatTemplates,
    *,
    variables: Mapping[str, str | None],
    attribution: Attribution,
    form: bool,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    is_need_callback: bool | None = None,
) -> dict[str, Any]:
    """The `leads/add` parameters in the order of Roistat's PHP sample, without the key."""
    title = templates.form_title if form else templates.title
    comment = templates.form_comment if form else templates.comment
    params: dict[str, Any] = {
        "roistat": attribution.roistat_visit or "nocookie",
        "title": render(title, variables, limit=1024),
        "comment": render(comment, variables, limit=4096),
        "name": (name or "")[:1024],
        "email": (email or "")[:1024],
        "phone": (phone or "")[:1024],
        "order_creation_method": (
            templates.form_order_creation_method if form else templates.order_creation_method
        ),
    }
    if is_need_callback is not None:
        params["is_need_callback"] = _flag(is_need_callback)
    params["sync"] = _flag(templates.sync)
    params["is_need_check_order_in_processing"] = _flag(templates.is_need_check_order_in_processing)
    params["is_need_check_order_in_processing_append"] = _flag(
        templates.is_need_check_order_in_processing_append
    )
    params["is_skip_sending"] = _flag(templates.is_skip_sending)
    params["fields"] = {k: render(v, variables) for k, v in templates.fields.items()}
    params["client_fields"] = {k: render(v, variables) for k, v in templates.client_fields.items()}
    return params


def phone_call_body(call: Call, attribution: Attribution, *, talk: int) -> dict[str, Any]:
    """The `project/phone-call` JSON for an ended call."""
    moment = call.started_at or call.created_at
    return {
        "callee": call.diversion or "",
        "caller": call.phone or "",
        "date": moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "duration": call.duration or 0,
        "answer_duration": talk,
        "status": CALL_STATUS.get(call.status or "", "NOANSWER"),
        "visit_id": attribution.roistat_visit,
        "marker": attribution.source,
        "order_id": None,
        "save_to_crm": "0",
        "comment": call.record_link or "",
    }


def _success(response: UpstreamResponse, what: str) -> dict[str, Any]:
    """Roistat's answer, or DeliveryError: non-2xx, non-JSON or `status != success`."""
    if not 200 <= response.status < 300:
        raise DeliveryError(
            f"{what}: HTTP {response.status}: {response.text[:200]}",
            retry_after=pause_after_429(response.headers) if response.status == 429 else None,
        )
    body = response.json()
    if not isinstance(body, dict):
        raise DeliveryError(f"{what}: the answer is not JSON: {response.text[:200]}")
    if body.get("status") != "success":
        raise DeliveryError(f"{what}: {body.get('error') or body.get('status') or 'no status'}")
    return body


class RoistatClient:
    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        api_key: str | None = None,
        project: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.http = UpstreamClient(url, timeout=timeout, name="Roistat")
        self.key = key
        self.api_key = api_key
        self.project = project

    async def _proxy(self, path: str, params: Mapping[str, Any]) -> UpstreamResponse:
        query = http_build_query(params)
        try:
            if len(query) <= MAX_GET_QUERY:
                return await self.http.request("GET", path, raw_query=query)
            return await self.http.request(
                "POST",
                path,
                data=query.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except UpstreamError as exc:
            raise DeliveryError(exc.message) from None

    async def add_lead(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """leads/add; the key goes second, as in Roistat's sample."""
        ordered = {"roistat": params.get("roistat", "nocookie"), "key": self.key or ""}
        ordered.update({k: v for k, v in params.items() if k != "roistat"})
        return _success(await self._proxy(LEADS_ADD, ordered), "leads/add")

    async def add_message(self, lead_id: str, title: str, message: str) -> dict[str, Any]:
        params = {"key": self.key or "", "id": lead_id, "title": title, "message": message}
        return _success(await self._proxy(MESSAGES_ADD, params), "leads/messages/add")

    async def add_phone_call(self, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = await self.http.request(
                "POST",
                f"{PHONE_CALL}?project={self.project or ''}",
                json_body=dict(body),
                headers={"Api-key": self.api_key or ""},
            )
        except UpstreamError as exc:
            raise DeliveryError(exc.message) from None
        return _success(response, "project/phone-call")

    async def close(self) -> None:
        await self.http.close()


LEAD_ID_FIELD = "trubka_lead_id"


def stable_lead_id(item: Claimed) -> str:
    """The same for every attempt at one lead: `trubka-<lead id>`."""
    return f"trubka-{item.lead_id}" if item.lead_id is not None else f"trubka-{item.key}"


class RoistatLeadSink:
    """Delivers a lead and keeps the proxy-lead id Roistat answered on the lead."""

    def __init__(self, db: Database, client: RoistatClient) -> None:
        self.db = db
        self.client = client

    async def deliver(self, item: Claimed) -> str | None:
        params = dict(item.payload["params"])
        # A stable id in a deal field: when a delivery is repeated (we crashed after Roistat
        # answered, or it answered after our timeout), Roistat's duplicate check
        # (is_need_check_order_in_processing) finds the deal already there.
        params["fields"] = {**params.get("fields", {}), LEAD_ID_FIELD: stable_lead_id(item)}
        body = await self.client.add_lead(params)
        roistat_id = body.get("id")
        if roistat_id is not None and item.lead_id is not None:
            async with self.db.session() as session:
                await session.exec(
                    update(Lead)
                    .where(col(Lead.id) == item.lead_id)
                    .values(roistat_lead_id=str(roistat_id))
                )
        return json.dumps(body, ensure_ascii=False)[:2000]


class RoistatMessageSink:
    """Appends to a delivered lead; waits (retries) until the lead has its Roistat id."""

    def __init__(self, db: Database, client: RoistatClient) -> None:
        self.db = db
        self.client = client

    async def deliver(self, item: Claimed) -> str | None:
        async with self.db.session() as session:
            lead = await session.get(Lead, item.lead_id) if item.lead_id is not None else None
        if lead is None:
            raise DeliveryError("the lead is gone")
        if lead.roistat_lead_id is None:
            raise DeliveryError("waiting for the lead to reach Roistat (no proxy-lead id yet)")
        payload = item.payload
        body = await self.client.add_message(
            lead.roistat_lead_id, payload.get("title", ""), payload["message"]
        )
        return json.dumps(body, ensure_ascii=False)[:2000]


class RoistatCallSink:
    def __init__(self, client: RoistatClient) -> None:
        self.client = client

    async def deliver(self, item: Claimed) -> str | None:
        body = await self.client.add_phone_call(item.payload["call"])
        return json.dumps(body, ensure_ascii=False)[:2000]
