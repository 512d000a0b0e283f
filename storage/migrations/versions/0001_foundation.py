"""foundation

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:23:51.218067
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "managers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pbx_login", sa.String(length=200), nullable=True),
        sa.Column("pbx_ext", sa.String(length=32), nullable=True),
        sa.Column("pbx_telnum", sa.String(length=32), nullable=True),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("call_mode", sa.String(length=16), nullable=False),
        sa.Column("call_provider", sa.String(length=16), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managers")),
        sa.UniqueConstraint("pbx_login", name=op.f("uq_managers_pbx_login")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_managers_telegram_user_id")),
    )
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("responsible_manager_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["responsible_manager_id"],
            ["managers.id"],
            name=op.f("fk_clients_responsible_manager_id_managers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("channel", "external_id", name="uq_clients_channel_external"),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_phone"), ["phone"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("callid", sa.String(length=200), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("last_event", sa.String(length=32), nullable=True),
        sa.Column("manager_user", sa.String(length=200), nullable=True),
        sa.Column("manager_ext", sa.String(length=32), nullable=True),
        sa.Column("manager_telnum", sa.String(length=32), nullable=True),
        sa.Column("group_name", sa.String(length=200), nullable=True),
        sa.Column("diversion", sa.String(length=32), nullable=True),
        sa.Column("started_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("wait", sa.Integer(), nullable=True),
        sa.Column("record_link", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("requested", sa.Boolean(), nullable=False),
        sa.Column("requested_user", sa.String(length=200), nullable=True),
        sa.Column("awaiting_pbx", sa.Boolean(), nullable=False),
        sa.Column("first_time_caller", sa.Boolean(), nullable=True),
        sa.Column("targeted", sa.Boolean(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_calls_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_awaiting_pbx"), ["awaiting_pbx"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_callid"), ["callid"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_phone"), ["phone"], unique=False)

    op.create_table(
        "client_variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_variables_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_variables")),
        sa.UniqueConstraint("client_id", "name", name="uq_client_variables_name"),
    )
    op.create_table(
        "phone_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_phone_index_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_index")),
        sa.UniqueConstraint("phone", "client_id", "variable", name="uq_phone_index_entry"),
    )
    with op.batch_alter_table("phone_index", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_index_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_index_phone"), ["phone"], unique=False)

    op.create_table(
        "call_attributions",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("visit_id", sa.String(length=64), nullable=True),
        sa.Column("tracking_number", sa.String(length=32), nullable=True),
        sa.Column("channel_level", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("utm_source", sa.String(length=300), nullable=True),
        sa.Column("utm_medium", sa.String(length=300), nullable=True),
        sa.Column("utm_campaign", sa.String(length=300), nullable=True),
        sa.Column("utm_content", sa.String(length=300), nullable=True),
        sa.Column("utm_term", sa.String(length=300), nullable=True),
        sa.Column("yclid", sa.String(length=100), nullable=True),
        sa.Column("metrika_client_id", sa.String(length=64), nullable=True),
        sa.Column("roistat_visit", sa.String(length=64), nullable=True),
        sa.Column("ga_client_id", sa.String(length=100), nullable=True),
        sa.Column("landing_url", sa.Text(), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_attributions_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_attributions")),
    )
    with op.batch_alter_table("call_attributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_attributions_visit_id"), ["visit_id"], unique=False
        )

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("provider", "dedup_key", name="uq_call_events_dedup"),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            "ix_call_events_pending",
            ["id"],
            unique=False,
            sqlite_where=sa.text("processed_at IS NULL"),
            postgresql_where=sa.text("processed_at IS NULL"),
        )

    op.create_table(
        "call_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_refs_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_refs")),
        sa.UniqueConstraint("provider", "external_id", name="uq_call_refs_external"),
    )
    with op.batch_alter_table("call_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_refs_call_id"), ["call_id"], unique=False)

    op.create_table(
        "dialog_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_dialog_messages_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_dialog_messages_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialog_messages")),
    )
    with op.batch_alter_table("dialog_messages", schema=None) as batch_op:
        batch_op.create_index("ix_dialog_messages_client_id_id", ["client_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dialog_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_dialog_messages_client_id_id")

    op.drop_table("dialog_messages")
    with op.batch_alter_table("call_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_refs_call_id"))

    op.drop_table("call_refs")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_pending")
        batch_op.drop_index(batch_op.f("ix_call_events_call_id"))

    op.drop_table("call_events")
    with op.batch_alter_table("call_attributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_attributions_visit_id"))

    op.drop_table("call_attributions")
    with op.batch_alter_table("phone_index", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_index_phone"))
        batch_op.drop_index(batch_op.f("ix_phone_index_client_id"))

    op.drop_table("phone_index")
    op.drop_table("client_variables")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_phone"))
        batch_op.drop_index(batch_op.f("ix_calls_created_at"))
        batch_op.drop_index(batch_op.f("ix_calls_client_id"))
        batch_op.drop_index(batch_op.f("ix_calls_callid"))
        batch_op.drop_index(batch_op.f("ix_calls_awaiting_pbx"))

    op.drop_table("calls")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_phone"))

    op.drop_table("clients")
    op.drop_table("managers")
