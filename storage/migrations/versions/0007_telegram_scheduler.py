"""telegram send scheduler: priority lanes, on-duty managers, who took a missed call

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 02:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("telegram_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("on_duty", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "call_takers",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("taken_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_takers_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["managers.id"],
            name=op.f("fk_call_takers_manager_id_managers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_takers")),
    )


def downgrade() -> None:
    op.drop_table("call_takers")
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.drop_column("on_duty")
    with op.batch_alter_table("telegram_deliveries", schema=None) as batch_op:
        batch_op.drop_column("lane")
