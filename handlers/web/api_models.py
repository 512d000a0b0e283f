"""The request and answer models of `/api/v1`: what the OpenAPI description is made of.

Answers are `extra="forbid"`: tests validate the app's real answers against them, so a field
added to an answer without its model fails there, and the published description stays true.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from telephony.tracking.confidence import Confidence


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorAnswer(BaseModel):
    """Every error: a short reason, sometimes with details (`field`, `detail`, `message`)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["Invalid parameters"])
    field: str | None = Field(default=None, description="the request field at fault")
    detail: str | None = None


# --- calls -----------------------------------------------------------------------------------


class MegafonCallRequest(BaseModel):
    client_phone: str | int = Field(
        description="the client's phone in any written form", examples=["8 (900) 444-33-22"]
    )
    user: str | int = Field(description="PBX login, extension or direct number of the manager")


class MegafonCallAnswer(Answer):
    call_id: int
    client_id: int
    phone: str = Field(
        description="normalized: digits, country code first", examples=["79004443322"]
    )
    pbx_callid: str | None


class ManagerCallRequest(BaseModel):
    client_phone: str | int
    manager_id: int


class ManagerCallAnswer(MegafonCallAnswer):
    provider: str = Field(examples=["megafon", "novofon"])


class CallAnswer(Answer):
    id: int
    provider: str
    callid: str | None
    direction: str | None = Field(description="in / out")
    client_id: int | None
    phone: str | None
    internal: bool
    status: str | None = Field(
        description="Success, Missed, Cancel, Busy, NotAvailable, NotAllowed, NotFound"
    )
    answered: bool = Field(
        description="a conversation happened: the final status is Success (before it: someone "
        "picked up); a voicemail that picked up is not"
    )
    missed: bool = Field(description="inbound, not internal, over and not answered")
    ended: bool
    last_event: str | None
    manager: str | None
    manager_ext: str | None
    diversion: str | None
    group: str | None
    started_at: str | None = Field(description="ISO 8601, UTC")
    duration: int | None
    wait: int | None
    record_link: str | None
    rating: int | None
    requested: bool
    created_at: str | None


class CallsQuery(BaseModel):
    phone: str | None = Field(default=None, description="any written form")
    limit: int = Field(default=50, ge=1, le=500)


class CallsAnswer(Answer):
    calls: list[CallAnswer]


class CallEventAnswer(Answer):
    command: str
    type: str | None
    received_at: str | None
    fields: dict[str, Any] = Field(description="the push as the PBX sent it")


class CallFlags(Answer):
    first_time_caller: bool | None
    targeted: bool | None
    suspected_fraud: bool | None = Field(
        default=None,
        description="a very short call to a tracking number from a phone with many calls",
    )


class CallDetailAnswer(CallAnswer):
    confidence: Confidence = Field(
        description="how surely the call is tied to a visit (see attribution.matched_by)"
    )
    events: list[CallEventAnswer]
    attribution: dict[str, Any] = Field(description="the visit the call is attributed to, if any")
    flags: CallFlags


# --- clients ---------------------------------------------------------------------------------


class ClientQuery(BaseModel):
    phone: str = Field(description="any written form", examples=["+7 900 444 33 22"])


class ClientAnswer(Answer):
    id: int
    name: str
    phone: str | None
    channel: str = Field(examples=["telephony", "telegram"])
    responsible: str | None = Field(description="the responsible manager's PBX login")
    variables: dict[str, str]
    created_at: str | None


class DialogQuery(BaseModel):
    after_id: int | None = Field(default=None, ge=1, description="only messages after this id")
    limit: int = Field(default=500, ge=1, le=500)


class DialogMessageAnswer(Answer):
    id: int
    kind: str = Field(examples=["call_event", "call_status", "message"])
    direction: str = Field(examples=["in", "out", "system"])
    text: str
    call_id: int | None
    created_at: str | None


class DialogAnswer(Answer):
    client_id: int
    messages: list[DialogMessageAnswer]


# --- leads -----------------------------------------------------------------------------------


class FormLeadRequest(BaseModel):
    """A site form's lead; `phone` or `email` is required. Header `Idempotency-Key` (1..200
    characters) makes a repeat answer 200 with the same ids."""

    phone: str | int | None = None
    name: str | None = Field(default=None, max_length=1024)
    email: str | None = Field(default=None, max_length=1024)
    comment: str | None = Field(default=None, max_length=4096)
    roistat_visit: str | int | None = None
    roistat: str | int | None = Field(default=None, description="alias of roistat_visit")
    metrika_client_id: str | int | None = None
    yclid: str | int | None = None
    utm_source: str | None = Field(default=None, max_length=300)
    utm_medium: str | None = Field(default=None, max_length=300)
    utm_campaign: str | None = Field(default=None, max_length=300)
    utm_content: str | None = Field(default=None, max_length=300)
    utm_term: str | None = Field(default=None, max_length=300)
    landing_url: str | None = Field(default=None, max_length=4096)
    landing_page: str | None = Field(default=None, description="alias of landing_url")
    referrer: str | None = Field(default=None, max_length=4096)
    is_need_callback: bool | None = None


class LeadAnswer(Answer):
    lead_id: int
    client_id: int
