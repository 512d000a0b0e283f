"""telegram

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:38:03.989908
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "telegram_topics",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_thread_id", sa.Integer(), nullable=False),
        sa.Column("card_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_telegram_topics_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_telegram_topics")),
    )
    with op.batch_alter_table("telegram_topics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telegram_topics_message_thread_id"), ["message_thread_id"], unique=False
        )

    op.create_table(
        "telegram_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=8), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("dialog_message_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_markup", sa.Text(), nullable=True),
        sa.Column("from_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("from_message_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_message_id", sa.Integer(), nullable=True),
        sa.Column("sent_thread_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_telegram_deliveries_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_telegram_deliveries_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dialog_message_id"],
            ["dialog_messages.id"],
            name=op.f("fk_telegram_deliveries_dialog_message_id_dialog_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_deliveries")),
    )
    with op.batch_alter_table("telegram_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telegram_deliveries_dialog_message_id"),
            ["dialog_message_id"],
            unique=False,
        )
        batch_op.create_index("ix_telegram_deliveries_status_id", ["status", "id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("telegram_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_telegram_deliveries_status_id")
        batch_op.drop_index(batch_op.f("ix_telegram_deliveries_dialog_message_id"))

    op.drop_table("telegram_deliveries")
    with op.batch_alter_table("telegram_topics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telegram_topics_message_thread_id"))

    op.drop_table("telegram_topics")
