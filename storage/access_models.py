"""Access: named API tokens (hashed), the reports' login sessions, and the audit log.

Secrets are never stored: a token's and a session's sha256 is (a token has 256 bits of
randomness, so a plain hash is enough and lookups by it stay one index seek).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.base import created_now as _created
from storage.types import UTCDateTime


class ApiToken(SQLModel, table=True):
    """A named token: who holds it is the name; what it may do are its scopes."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(max_length=200)  # comma-separated
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportSession(SQLModel, table=True):
    """A browser logged into /reports. `token_name` is empty for the bootstrap token, whose
    hash is kept so that changing TRUBKA_API_TOKEN ends those sessions."""

    __tablename__ = "report_sessions"

    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(max_length=64, unique=True)
    token_name: str = Field(default="", max_length=64, index=True)
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """One state-changing action: when, who, from where, what, on which object, the outcome.
    The app only ever inserts rows (the retention sweep deletes old ones)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)  # "token:marketing", "telegram:123 @andy", "cli:root"
    address: str = Field(default="", max_length=200)  # an IP, "telegram", "cli"
    action: str = Field(max_length=64)  # "call.place", "manager.remove", "client.forget" …
    object: str = Field(default="", max_length=200)  # "manager:3", "client:17"
    outcome: str = Field(default="ok", max_length=200)
    detail: str = Field(default="", sa_type=Text)
