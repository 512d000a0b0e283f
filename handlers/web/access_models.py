"""The request and answer models of the access routes (tokens, audit, erasing a client)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from handlers.web.api_models import DATE_PATTERN, wire_int
from telephony.access.scopes import SCOPES


def _scope(value: object) -> str:
    if isinstance(value, str) and value in SCOPES:
        return value
    raise PydanticCustomError(
        "scope",
        "unknown scope {scope} (known: {known})",
        {"scope": str(value)[:64], "known": ", ".join(SCOPES)},
    )


# One of the scopes (telephony/access/scopes.py), the unknown one named when refused.
Scope = Annotated[
    str, PlainValidator(_scope), WithJsonSchema({"type": "string", "enum": list(SCOPES)})
]

# `since` of the audit API: a date (midnight UTC) or an RFC 3339 date-time with its offset.
DATE_TIME_PATTERN = DATE_PATTERN.removesuffix("$") + (
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _since(value: object) -> datetime:
    if isinstance(value, str) and re.fullmatch(DATE_PATTERN, value):
        try:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        except ValueError:
            pass
    elif isinstance(value, str) and re.fullmatch(DATE_TIME_PATTERN, value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError(
        "since", "a date (2026-12-01) or a date-time with its offset (2026-12-01T09:30:00Z)"
    )


Since = Annotated[
    datetime,
    PlainValidator(_since),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": DATE_PATTERN},
                {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
            ],
            "examples": ["2026-12-01", "2026-12-01T09:30:00+03:00"],
        }
    ),
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(BaseModel):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        examples=["marketing"],
        description="who holds it; shown in the audit log",
    )
    scopes: list[Scope] = Field(min_length=1, examples=[["reports:read"]])
    expires: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,4}[dhw]$",
        examples=["90d"],
        description="lifetime: days, hours or weeks",
    )


class TokenInfoAnswer(_Answer):
    name: str
    scopes: list[str]
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None


class TokenCreatedAnswer(TokenInfoAnswer):
    token: str = Field(description="the secret, shown this once only")


class TokensAnswer(_Answer):
    tokens: list[TokenInfoAnswer]


class AuditQuery(BaseModel):
    since: Since | None = Field(
        default=None, description="a date (from midnight UTC) or a date-time with its offset"
    )
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(wire_int)] | None = None


class AuditEntryAnswer(_Answer):
    id: int | None
    at: str
    actor: str
    address: str
    action: str
    object: str
    outcome: str
    detail: str


class AuditAnswer(_Answer):
    entries: list[AuditEntryAnswer]


class ForgottenAnswer(_Answer):
    client_id: int
    erased: dict[str, int] = Field(description="rows changed per table")
