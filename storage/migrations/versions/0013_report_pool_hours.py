"""reports: hourly rollup of the tracking pools (closed hours) and its watermark; the calls'
time index also covers direction and the internal flag

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_pool_hours",
        sa.Column("pool", sa.String(length=100), nullable=False),
        sa.Column("hour", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("peak_live", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("overloaded_visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pool", "hour", name=op.f("pk_report_pool_hours")),
    )
    op.create_index("ix_report_pool_hours_hour", "report_pool_hours", ["hour"], unique=False)
    op.create_table(
        "report_rollups",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("done_until", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_rollups")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calls_started_inbound", ["started_at", "direction", "internal", "id"], unique=False
        )
        batch_op.drop_index("ix_calls_started_at")


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_started_at", ["started_at"], unique=False)
        batch_op.drop_index("ix_calls_started_inbound")
    op.drop_table("report_rollups")
    op.drop_index("ix_report_pool_hours_hour", table_name="report_pool_hours")
    op.drop_table("report_pool_hours")
