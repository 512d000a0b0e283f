"""leads: leads, the delivery outbox, Metrika uploadings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 19:20:36.746626
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metrika_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uploading_id", sa.String(length=64), nullable=False),
        sa.Column("client_id_type", sa.String(length=16), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrika_uploads")),
    )
    with op.batch_alter_table("metrika_uploads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metrika_uploads_uploading_id"), ["uploading_id"], unique=False
        )

    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("external_key", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=1024), nullable=True),
        sa.Column("email", sa.String(length=1024), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("is_need_callback", sa.Boolean(), nullable=True),
        sa.Column("roistat_visit", sa.String(length=64), nullable=True),
        sa.Column("metrika_client_id", sa.String(length=64), nullable=True),
        sa.Column("yclid", sa.String(length=100), nullable=True),
        sa.Column("utm_source", sa.String(length=300), nullable=True),
        sa.Column("utm_medium", sa.String(length=300), nullable=True),
        sa.Column("utm_campaign", sa.String(length=300), nullable=True),
        sa.Column("utm_content", sa.String(length=300), nullable=True),
        sa.Column("utm_term", sa.String(length=300), nullable=True),
        sa.Column("landing_url", sa.Text(), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("roistat_lead_id", sa.String(length=64), nullable=True),
        sa.Column("reported_status", sa.String(length=32), nullable=True),
        sa.Column("reported_record_link", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_leads_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_leads_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("call_id", name="uq_leads_call_id"),
        sa.UniqueConstraint("external_key", name="uq_leads_external_key"),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leads_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_leads_created_at"), ["created_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sink", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("give_up_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_outbox_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_outbox_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("sink", "key", name="uq_outbox_sink_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_created_at"))
        batch_op.drop_index(batch_op.f("ix_leads_client_id"))

    op.drop_table("leads")
    with op.batch_alter_table("metrika_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metrika_uploads_uploading_id"))

    op.drop_table("metrika_uploads")
