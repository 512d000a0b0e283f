"""reports: attribution confidence, indexes for report queries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attributions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confidence", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("matched_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("candidate_visits", sa.Text(), nullable=True))
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_calls_phone_started_at", ["phone", "started_at"], unique=False)
    with op.batch_alter_table("tracking_leases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tracking_leases_started_at", ["started_at", "ends_at", "pool"], unique=False
        )
    with op.batch_alter_table("tracking_visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tracking_visits_created_pool", ["created_at", "pool", "id"], unique=False
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_created_at", ["created_at", "sink", "status", "attempts"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_created_at")
    with op.batch_alter_table("tracking_visits", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_visits_created_pool")
    with op.batch_alter_table("tracking_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_leases_started_at")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_phone_started_at")
        batch_op.drop_index("ix_calls_started_at")
    with op.batch_alter_table("call_attributions", schema=None) as batch_op:
        batch_op.drop_column("candidate_visits")
        batch_op.drop_column("matched_by")
        batch_op.drop_column("confidence")
