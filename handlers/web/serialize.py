"""How stored rows look in the JSON API: the answer models of handlers/web/api_models.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from handlers.web.api_models import (
    CallAnswer,
    CallDetailAnswer,
    CallEventAnswer,
    CallFlags,
    ClientAnswer,
    DialogMessageAnswer,
)
from storage.models import Call, CallAttribution, CallEvent, DialogMessage
from telephony.calls.outcome import CallOutcome
from telephony.clients import ClientView
from telephony.tracking.confidence import candidates_of, confidence_of


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def client_answer(client: ClientView, variables: dict[str, str]) -> ClientAnswer:
    """`client`: a row of `telephony.clients.client_view_*` (the client and its manager)."""
    return ClientAnswer(
        id=client.id,
        name=client.name,
        phone=client.phone,
        channel=client.channel,
        responsible=client.pbx_login,
        variables=variables,
        created_at=iso(client.created_at),
    )


def _call_fields(call: Call) -> dict[str, Any]:
    outcome = CallOutcome.of(call)
    return {
        "id": call.id,
        "provider": call.provider,
        "callid": call.callid,
        "direction": call.direction,
        "client_id": call.client_id,
        "phone": call.phone,
        "internal": call.internal,
        "status": call.status,
        "answered": outcome.answered,
        "missed": outcome.missed,
        "ended": call.ended,
        "last_event": call.last_event,
        "manager": call.manager_user,
        "manager_ext": call.manager_ext,
        "diversion": call.diversion,
        "group": call.group_name,
        "started_at": iso(call.started_at),
        "duration": call.duration,
        "wait": call.wait,
        "record_link": call.record_link,
        "rating": call.rating,
        "requested": call.requested,
        "created_at": iso(call.created_at),
    }


def call_answer(call: Call) -> CallAnswer:
    return CallAnswer(**_call_fields(call))


def attribution_json(attribution: CallAttribution | None) -> dict[str, Any]:
    if attribution is None:
        return {}
    values = attribution.model_dump(exclude={"call_id"})
    values["created_at"] = iso(attribution.created_at)
    values["confidence"] = confidence_of(attribution).value
    values["candidate_visits"] = candidates_of(attribution)
    return values


def call_detail_answer(
    call: Call, events: list[CallEvent], attribution: CallAttribution | None = None
) -> CallDetailAnswer:
    return CallDetailAnswer(
        **_call_fields(call),
        events=[
            CallEventAnswer(
                command=event.command,
                type=event.event_type,
                received_at=iso(event.received_at),
                fields=json.loads(event.payload),
            )
            for event in events
        ],
        attribution=attribution_json(attribution),
        confidence=confidence_of(attribution),  # "none" when not attributed
        flags=CallFlags(
            first_time_caller=call.first_time_caller,
            targeted=call.targeted,
            suspected_fraud=call.suspected_fraud,
        ),
    )


def message_answer(message: DialogMessage) -> DialogMessageAnswer:
    assert message.id is not None  # a stored row
    return DialogMessageAnswer(
        id=message.id,
        kind=message.kind,
        direction=message.direction,
        text=message.text,
        call_id=message.call_id,
        created_at=iso(message.created_at),
    )
