"""The request and answer models of the access routes (tokens, audit, erasing a client)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from telephony.access.scopes import SCOPES


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(BaseModel):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        examples=["marketing"],
        description="who holds it; shown in the audit log",
    )
    scopes: list[str] = Field(
        min_length=1, description=f"any of {', '.join(SCOPES)}", examples=[["reports:read"]]
    )
    expires: str | None = Field(
        default=None,
        pattern=r"^\d{1,5}[dhw]$",
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
    since: str | None = Field(
        default=None,
        description="ISO date or date-time (UTC when no offset)",
        examples=["2026-12-01"],
    )
    limit: int | None = Field(default=None, ge=1, le=1000)


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
