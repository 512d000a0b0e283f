"""The tables. Phones are stored normalized: digits only, country code first (`79004443322`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel, col

import storage.base  # noqa: F401  (the naming convention, before any table)
from storage.base import created_now as _created
from storage.outcome import CallEventString, CallEventType, CallStatus, CallStatusString, Lane
from storage.types import UTCDateTime


class Manager(SQLModel, table=True):
    """A person who talks to clients: a PBX identity, optionally bound to a Telegram account."""

    __tablename__ = "managers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    pbx_login: str | None = Field(default=None, max_length=200, unique=True)
    pbx_ext: str | None = Field(default=None, max_length=32)
    pbx_telnum: str | None = Field(default=None, max_length=32)
    telegram_user_id: int | None = Field(default=None, unique=True, sa_type=BigInteger)
    # Salebot's three ways to call: "disabled", "app" (the phone dials) or "api" (the PBX rings).
    call_mode: str = Field(default="api", max_length=16)
    # Which PBX places this manager's calls in "api" mode: "megafon" or "novofon".
    call_provider: str = Field(default="megafon", max_length=16)
    # On duty: gets private alerts about calls from unknown callers and missed-call escalations.
    on_duty: bool = Field(default=False)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class Client(SQLModel, table=True):
    """A person the business talks to. How they can be reached (Telegram, WhatsApp, SMS) are
    their identities in `client_channels` (storage.channel_models.ClientChannel), any number."""

    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_clients_channel_external"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=300)
    phone: str | None = Field(default=None, max_length=32, index=True)
    # Deprecated (migration 0015 moved them to client_channels): neither read nor written any
    # more; kept so the migration needs no rebuild of this table. A client's channel is
    # telephony.clients.channel_of (the API's and scenarios' `channel`).
    channel: str = Field(default="telephony", max_length=32)
    external_id: str | None = Field(default=None, max_length=64)
    responsible_manager_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("managers.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class ClientVariable(SQLModel, table=True):
    """A Salebot-style client variable (`megafon_call_id`, `utm_source`, set by scenarios)."""

    __tablename__ = "client_variables"
    __table_args__ = (UniqueConstraint("client_id", "name", name="uq_client_variables_name"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column=Column(Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=200)
    value: str = Field(default="", sa_type=Text)
    updated_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class PhoneIndexEntry(SQLModel, table=True):
    """Every normalized phone a client can be found by: its own phone and phone-valued variables.

    `variable` is "" for the client's own phone field, else the variable's name. Matching a caller
    is then one indexed lookup instead of a scan of all variables.
    """

    __tablename__ = "phone_index"
    __table_args__ = (
        UniqueConstraint("phone", "client_id", "variable", name="uq_phone_index_entry"),
    )

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=32, index=True)
    client_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    variable: str = Field(default="", max_length=200)


class Call(SQLModel, table=True):
    """One conversation with a client, merged from all its legs and pushes."""

    __tablename__ = "calls"
    __table_args__ = (
        # Reports read a period's inbound calls: with every column they count (the direction
        # and the internal flag are set when a call is created) they read this index alone,
        # never the rows (a 30-day report on a year of calls: 44 → 26 ms on SQLite).
        Index(
            "ix_calls_started_inbound", "started_at", "direction", "internal", "id", "phone",
            "answered", "status", "first_time_caller", "manager_user", "provider",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(default="megafon", max_length=16)
    # The PBX's call id of the conversation (the first leg seen); other legs live in call_refs.
    callid: str | None = Field(default=None, max_length=200, index=True)
    direction: str | None = Field(default=None, max_length=8)  # "in" / "out"
    client_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("clients.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    phone: str | None = Field(default=None, max_length=32, index=True)
    internal: bool = False
    # The final status from `history` (Success, Missed, …; one a PBX adds is kept as sent, see
    # storage.outcome.OpenStrEnum). None until the PBX sends it. What it means — answered,
    # missed — is decided by storage.outcome.CallOutcome alone.
    status: CallStatus | None = Field(default=None, sa_type=CallStatusString)
    answered: bool = False  # an ACCEPTED was seen (a final status other than Success overrides)
    ended: bool = False
    last_event: CallEventType | None = Field(default=None, sa_type=CallEventString)
    manager_user: str | None = Field(default=None, max_length=200)
    manager_ext: str | None = Field(default=None, max_length=32)
    manager_telnum: str | None = Field(default=None, max_length=32)
    group_name: str | None = Field(default=None, max_length=200)
    diversion: str | None = Field(default=None, max_length=32)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration: int | None = None
    wait: int | None = None
    record_link: str | None = Field(default=None, sa_type=Text)
    rating: int | None = None
    # Started by megafon_call(): waiting for the PBX's pushes to attach to it.
    requested: bool = False
    requested_user: str | None = Field(default=None, max_length=200)
    awaiting_pbx: bool = Field(default=False, index=True)
    # Lead flags, decided once (see the leads rules): None until decided.
    first_time_caller: bool | None = None
    targeted: bool | None = None
    # A very short call to a tracking number from a phone that calls it often (call tracking's
    # `[tracking.short_calls]`): someone spoiling the pool's figures. None until the call ended.
    suspected_fraud: bool | None = None
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


# A caller's next call after a moment (the missed-calls report seeks it for every missed
# call). "out" before "in" on the same second: the call back wins a tie without a sort; with the
# id, PostgreSQL reads the index alone.
Index(
    "ix_calls_phone_started",
    Call.phone,  # type: ignore[arg-type]
    Call.internal,  # type: ignore[arg-type]
    Call.started_at,  # type: ignore[arg-type]
    col(Call.direction).desc(),
    Call.id,  # type: ignore[arg-type]
)


class CallRef(SQLModel, table=True):
    """A provider call id (a leg, a transfer's second_callid, a makecall answer) → its call."""

    __tablename__ = "call_refs"
    __table_args__ = (UniqueConstraint("provider", "external_id", name="uq_call_refs_external"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    external_id: str = Field(max_length=200)
    call_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )


class CallEvent(SQLModel, table=True):
    """A raw push as received: the inbox. `dedup_key` makes a repeated push a no-op.

    A push is stored (and answered) first and applied to its call right after, in order;
    `processed_at` is set once it is applied, `error` when applying it failed.
    """

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("provider", "dedup_key", name="uq_call_events_dedup"),
        # The inbox reads the oldest pending pushes: a partial index in id order makes that a
        # walk of the pending rows only, however large a backlog grows.
        Index(
            "ix_call_events_pending",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        # The claim reads pending pushes live lane first (storage/inbox_claim.py), and then the
        # earlier pending pushes of the calls it took: both walk pending rows only.
        Index(
            "ix_call_events_pending_lane",
            "lane",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index(
            "ix_call_events_pending_call",
            "call_key",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        # Set-aside pushes are few: `trubka inbox` and /metrics find them without a scan.
        Index(
            "ix_call_events_set_aside",
            "id",
            sqlite_where=text("error IS NOT NULL"),
            postgresql_where=text("error IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    dedup_key: str = Field(max_length=64)
    call_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("calls.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    command: str = Field(max_length=32)  # history / event / rating
    event_type: str | None = Field(default=None, max_length=32)
    payload: str = Field(sa_type=Text)  # JSON of the fields, the token removed
    received_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)
    # Set when stored (telephony/calls/lanes.py): the lane (storage/lanes.py `Lane`), and the
    # call the push belongs to (provider and its call id; NULL: the push is its own call).
    lane: int = Field(
        default=int(Lane.HISTORY),
        sa_column=Column(SmallInteger, nullable=False, server_default=text("1")),
    )
    call_key: str | None = Field(default=None, max_length=96)


class DialogMessage(SQLModel, table=True):
    """A line of a client's dialog: a message either way or a call notification."""

    __tablename__ = "dialog_messages"
    __table_args__ = (Index("ix_dialog_messages_client_id_id", "client_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(
        sa_column=Column(Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False)
    )
    call_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True),
    )
    # "call_event", "call_status", "message" …
    kind: str = Field(max_length=32)
    # "in" (from the client), "out" (to the client), "system" (notifications)
    direction: str = Field(default="system", max_length=8)
    text: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime)


class CallAttribution(SQLModel, table=True):
    """Where a call came from: the site visit (call tracking) or the provider's own tracking."""

    __tablename__ = "call_attributions"

    call_id: int = Field(
        sa_column=Column(Integer, ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    )
    # "tracking" (our pool), "novofon" (Novofon's call tracking), "form" …
    method: str = Field(default="tracking", max_length=16)
    visit_id: str | None = Field(default=None, max_length=64, index=True)
    tracking_number: str | None = Field(default=None, max_length=32)
    # True when no visit held the number at call time: only the pool's source is known.
    channel_level: bool = False
    source: str | None = Field(default=None, max_length=200)
    utm_source: str | None = Field(default=None, max_length=300)
    utm_medium: str | None = Field(default=None, max_length=300)
    utm_campaign: str | None = Field(default=None, max_length=300)
    utm_content: str | None = Field(default=None, max_length=300)
    utm_term: str | None = Field(default=None, max_length=300)
    yclid: str | None = Field(default=None, max_length=100)
    metrika_client_id: str | None = Field(default=None, max_length=64)
    roistat_visit: str | None = Field(default=None, max_length=64)
    ga_client_id: str | None = Field(default=None, max_length=100)
    landing_url: str | None = Field(default=None, sa_type=Text)
    referrer: str | None = Field(default=None, sa_type=Text)
    # How sure the match is (telephony.tracking.confidence): exact / probable / channel;
    # None on rows written before it was recorded. `matched_by` says why, `candidate_visits`
    # (JSON list of visit ids, newest first) the visits that held or recently held the number.
    confidence: str | None = Field(default=None, max_length=16)
    matched_by: str | None = Field(default=None, max_length=16)
    candidate_visits: str | None = Field(default=None, sa_type=Text)
    # Reports count a period's attributions from this side (storage/report_queries.py).
    created_at: datetime = Field(default_factory=_created, sa_type=UTCDateTime, index=True)

