"""The request and answer models of `/api/v1`: what the handlers validate and serialize with
(handlers/web/validation.py) and what the OpenAPI description is made of.

Request fields carry their real constraints (formats, patterns, ranges, enums), so a request
valid by the published schema is accepted and one invalid by it is refused with a 400 naming
the field. Answers are `extra="forbid"`: a field added to an answer without its model fails
when the answer is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from telephony.phones import InvalidPhone, normalize_phone
from telephony.tracking.confidence import Confidence

# --- the request types -----------------------------------------------------------------------

MAX_BIGINT = 2**63 - 1
# Russian numbers as people write them (`8 (900) 444-33-22`, `+7 900 444 33 22`, `9004443322`):
# every string it matches is a phone the API accepts (tests/test_api_models.py checks that
# with generated strings). Other countries' full international numbers are accepted too.
PHONE_PATTERN = r"^(\+7|7|8)?[ (-]{0,2}[3-79][0-9]{2}[ )-]{0,2}[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}$"
PHONE_TEXT: dict[str, Any] = {
    "type": "string",
    "pattern": PHONE_PATTERN,
    "examples": ["8 (900) 444-33-22"],
}
# A phone sent as a JSON number: the digits PHONE_PATTERN allows, so 10 digits from a 3-7 or 9
# (`9004443322`), or 11 with 7 or 8 first (`79004443322`); other numbers go as text.
PHONE_DIGITS = r"(7|8)?[3-79][0-9]{9}"
PHONE_NUMBERS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": low, "maximum": high}
    for low, high in [
        (3_000_000_000, 7_999_999_999),
        (9_000_000_000, 9_999_999_999),
        (73_000_000_000, 77_999_999_999),
        (79_000_000_000, 79_999_999_999),
        (83_000_000_000, 87_999_999_999),
        (89_000_000_000, 89_999_999_999),
    ]
]
# Text a database can keep (handlers/web/bodies.py refuses the rest): no NUL, no lone surrogate.
STORABLE = r"^[^\u0000\ud800-\udfff]*$"
# A number sent for a text field is taken as its text: bounded, so its text is short.
TEXT_NUMBER = 10**15
# The blanks Python's str.strip() and str.split() take (what the handlers trim), spelled out:
# `\s` is another set in each regex engine (ECMA's has \ufeff and lacks \x1c-\x1f).
BLANKS = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_PATTERN = f"[^{BLANKS}]"  # somewhere a character that is not a blank
NOT_BLANK: dict[str, Any] = {"type": "string", "pattern": NOT_BLANK_PATTERN}
PHONE_HELP = "any written form; stored as digits, country code first"
ROW_ID: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_BIGINT}
DATE_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def integral(value: object) -> object:
    """A JSON number with no fraction (`5.0`) is an integer to JSON Schema: take it as one."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _phone(value: object, kind: str = "invalid_phone") -> str:
    """`kind` is the error type: `invalid_phone` answers "Invalid phone" (clients, leads),
    `phone` "Invalid parameters" (the call requests, as they always did)."""
    value = integral(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError(kind, "must be a string")
    if isinstance(value, int) and not (
        0 < value < 10**11 and re.fullmatch(PHONE_DIGITS, str(value))
    ):
        raise PydanticCustomError(
            kind, "a phone as a JSON number is a Russian one (79004443322); send others as text"
        )
    try:
        return normalize_phone(str(value))
    except InvalidPhone as exc:
        raise PydanticCustomError(kind, "{reason}", {"reason": str(exc)}) from None


def _call_phone(value: object) -> str:
    return _phone(value, "phone")


def _optional_phone(value: object) -> str | None:
    return None if value is None or value == "" else _phone(value)


def _user(value: object) -> str:
    value = integral(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("user", "must be a PBX login, extension or number")
    if isinstance(value, int) and not 0 <= value <= MAX_BIGINT:
        raise PydanticCustomError("user", "must be a PBX login, extension or number")
    text = str(value)
    if len(text) > 200:
        raise PydanticCustomError("user", "longer than 200 characters")
    if not text.strip():
        raise PydanticCustomError("user", "is empty: give a PBX login, extension or direct number")
    return text.strip()


def _row_id(value: object) -> int:
    """Any integer: one past the columns' range is a row that cannot exist (404, not 400)."""
    value = integral(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("row_id", "must be a number")
    return value


def _day(value: object) -> str:
    if isinstance(value, str) and re.fullmatch(DATE_PATTERN, value):
        try:
            date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise PydanticCustomError("date", "must be a date like 2026-12-01 (years 2000 to 2999)")


def wire_int(value: object) -> object:
    """An integer query parameter as its text: the digits `int()` reads, nothing around them
    (no blanks, no `_`, no other scripts' digits), as OpenAPI tools write and read it."""
    if not isinstance(value, str):
        return value
    if value.isascii() and "_" not in value and value == value.strip():
        try:
            return int(value)
        except ValueError:
            pass
    raise PydanticCustomError("int", "must be an integer")


def _flag(value: object) -> bool | None:
    value = integral(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if (type(value) is int and value in (0, 1)) or value in ("0", "1"):
        return str(value) == "1"
    raise PydanticCustomError("flag", "must be 0/1")


@dataclass(frozen=True)
class Text(GroupedMetadata):
    """A free-text field of a site form: a number (up to TEXT_NUMBER either way) is taken as
    its text, blanks are trimmed, an empty value is absent; at most `limit` characters as
    sent (the schema's maxLength)."""

    limit: int

    def _check(self, value: object) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not -TEXT_NUMBER <= value <= TEXT_NUMBER:
                raise PydanticCustomError("text", "a number past {most}", {"most": TEXT_NUMBER})
            value = str(value)
        if not isinstance(value, str):
            raise PydanticCustomError("text", "must be a string")
        if len(value) > self.limit:
            raise PydanticCustomError("text", "longer than {limit}", {"limit": self.limit})
        return value.strip() or None

    def __iter__(self) -> Iterator[Any]:
        yield PlainValidator(self._check)
        yield WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "maxLength": self.limit, "pattern": STORABLE},
                    {"type": "number", "minimum": -TEXT_NUMBER, "maximum": TEXT_NUMBER},
                    {"type": "null"},
                ]
            }
        )


Phone = Annotated[
    str, PlainValidator(_call_phone), WithJsonSchema({"anyOf": [PHONE_TEXT, *PHONE_NUMBERS]})
]
PhoneText = Annotated[str, PlainValidator(_phone), WithJsonSchema(PHONE_TEXT)]
OptionalPhone = Annotated[
    str | None,
    PlainValidator(_optional_phone),
    WithJsonSchema(
        {
            "anyOf": [
                PHONE_TEXT,
                *PHONE_NUMBERS,
                {"type": "string", "maxLength": 0},
                {"type": "null"},
            ]
        }
    ),
]
PbxUser = Annotated[
    str,
    PlainValidator(_user),
    WithJsonSchema(
        {
            "anyOf": [
                {**NOT_BLANK, "maxLength": 200},
                {"type": "integer", "minimum": 0, "maximum": MAX_BIGINT},
            ]
        }
    ),
]
# An integer query parameter (bounds go on the field, or before the validator when optional).
WireInt = Annotated[int, BeforeValidator(wire_int)]
RowId = Annotated[int, PlainValidator(_row_id), WithJsonSchema(ROW_ID)]
Day = Annotated[
    str,
    PlainValidator(_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]
Flag = Annotated[
    bool | None,
    PlainValidator(_flag),
    WithJsonSchema(
        {"anyOf": [{"type": "boolean"}, {"enum": [0, 1, "0", "1", ""]}, {"type": "null"}]}
    ),
]
# Timestamps in answers: ISO 8601, UTC, `Z`.
Timestamp = Annotated[
    str | None,
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]


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
    client_phone: Phone = Field(description="the client's phone, " + PHONE_HELP)
    user: PbxUser = Field(description="PBX login, extension or direct number of the manager")


class MegafonCallAnswer(Answer):
    call_id: int
    client_id: int
    phone: str = Field(
        description="normalized: digits, country code first", examples=["79004443322"]
    )
    pbx_callid: str | None


class ManagerCallRequest(BaseModel):
    client_phone: Phone = Field(description="the client's phone, " + PHONE_HELP)
    manager_id: RowId = Field(description="a manager of GET /api/v1/managers")


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
    started_at: Timestamp = Field(description="ISO 8601, UTC")
    duration: int | None
    wait: int | None
    record_link: str | None
    rating: int | None
    requested: bool
    created_at: Timestamp


class CallsQuery(BaseModel):
    phone: PhoneText | None = Field(default=None, description=PHONE_HELP)
    limit: WireInt = Field(default=50, ge=1, le=500)


class CallsAnswer(Answer):
    calls: list[CallAnswer]


class CallEventAnswer(Answer):
    command: str
    type: str | None
    received_at: Timestamp
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
    phone: PhoneText = Field(description=PHONE_HELP)


class ClientAnswer(Answer):
    id: int
    name: str
    phone: str | None
    channel: str = Field(examples=["telephony", "telegram"])
    responsible: str | None = Field(description="the responsible manager's PBX login")
    variables: dict[str, str]
    created_at: Timestamp


class DialogQuery(BaseModel):
    after_id: Annotated[int, Field(ge=1, le=MAX_BIGINT), BeforeValidator(wire_int)] | None = Field(
        default=None, description="only messages after this id"
    )
    limit: WireInt = Field(default=500, ge=1, le=500)


class DialogMessageAnswer(Answer):
    id: int
    kind: str = Field(examples=["call_event", "call_status", "message"])
    direction: str = Field(examples=["in", "out", "system"])
    text: str
    call_id: int | None
    created_at: Timestamp


class DialogAnswer(Answer):
    client_id: int
    messages: list[DialogMessageAnswer]


# --- leads -----------------------------------------------------------------------------------


class FormLeadRequest(BaseModel):
    """A site form's lead; `phone` or `email` is required. Text fields take numbers as their
    text; blank values count as absent. Header `Idempotency-Key` (1..200 characters) makes a
    repeat answer 200 with the same ids."""

    # A phone or an email that is not blank.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["phone"],
                    "properties": {"phone": {"anyOf": [PHONE_TEXT, *PHONE_NUMBERS]}},
                },
                {
                    "required": ["email"],
                    "properties": {"email": {"anyOf": [NOT_BLANK, {"type": "number"}]}},
                },
            ]
        }
    )

    phone: OptionalPhone = Field(default=None, description=PHONE_HELP)
    name: Annotated[str | None, Text(1024)] = None
    email: Annotated[str | None, Text(1024)] = None
    comment: Annotated[str | None, Text(4096)] = None
    roistat_visit: Annotated[str | None, Text(64)] = None
    roistat: Annotated[str | None, Text(64)] = Field(
        default=None, description="alias of roistat_visit (Roistat's cookie name)"
    )
    metrika_client_id: Annotated[str | None, Text(64)] = None
    yclid: Annotated[str | None, Text(100)] = None
    utm_source: Annotated[str | None, Text(300)] = None
    utm_medium: Annotated[str | None, Text(300)] = None
    utm_campaign: Annotated[str | None, Text(300)] = None
    utm_content: Annotated[str | None, Text(300)] = None
    utm_term: Annotated[str | None, Text(300)] = None
    landing_url: Annotated[str | None, Text(4096)] = None
    landing_page: Annotated[str | None, Text(4096)] = Field(
        default=None, description="alias of landing_url"
    )
    referrer: Annotated[str | None, Text(4096)] = None
    is_need_callback: Flag = None

    @model_validator(mode="after")
    def _aliases_and_contact(self) -> FormLeadRequest:
        if self.roistat_visit is None:
            self.roistat_visit = self.roistat
        if self.landing_url is None:
            self.landing_url = self.landing_page
        if self.phone is None and self.email is None:
            raise PydanticCustomError("contact", "phone or email is required")
        return self


class LeadHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a repeat with the same key answers 200 with the same ids",
    )


class LeadAnswer(Answer):
    lead_id: int
    client_id: int | None = Field(description="null only for a lead stored without a client")


# --- meta ------------------------------------------------------------------------------------


class OpenApiDocument(BaseModel):
    """`GET /api/v1/openapi.json`: an OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str = Field(examples=["3.1.0"])
    info: dict[str, Any]
    paths: dict[str, Any]
