"""inbox: lanes (live pushes first) and the call a push belongs to (per-call claims)

Revision ID: 0018_inbox_lanes
Revises: 0017_widgets
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_inbox_lanes"
down_revision: str | Sequence[str] | None = "0017_widgets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "processed_at IS NULL"


def upgrade() -> None:
    # Rows stored before are history (1), each its own call (NULL key): nothing to backfill.
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(
            sa.Column("lane", sa.SmallInteger(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("call_key", sa.String(length=96), nullable=True))
    for name, columns in (
        ("ix_call_events_pending_lane", ["lane", "id"]),
        ("ix_call_events_pending_call", ["call_key", "id"]),
    ):
        op.create_index(
            name,
            "call_events",
            columns,
            unique=False,
            sqlite_where=sa.text(_PENDING),
            postgresql_where=sa.text(_PENDING),
        )


def downgrade() -> None:
    op.drop_index("ix_call_events_pending_call", table_name="call_events")
    op.drop_index("ix_call_events_pending_lane", table_name="call_events")
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("call_key")
        batch.drop_column("lane")
