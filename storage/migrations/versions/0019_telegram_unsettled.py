"""telegram_deliveries: partial indexes of the unsettled rows in id order (the sender's pass)

Revision ID: 0019_telegram_unsettled
Revises: 0018_inbox_lanes
Create Date: 2026-12-04 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_telegram_unsettled"
down_revision: str | Sequence[str] | None = "0018_inbox_lanes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSETTLED = "status IN ('pending', 'running')"  # storage/telegram_models.UNSETTLED_WHERE
_INDEXES = (
    ("ix_telegram_deliveries_unsettled", ["id"]),
    ("ix_telegram_deliveries_unsettled_lane", ["lane", "id"]),
)


def upgrade() -> None:
    for name, columns in _INDEXES:
        op.create_index(
            name,
            "telegram_deliveries",
            columns,
            unique=False,
            sqlite_where=sa.text(_UNSETTLED),
            postgresql_where=sa.text(_UNSETTLED),
        )


def downgrade() -> None:
    for name, _ in reversed(_INDEXES):
        op.drop_index(name, table_name="telegram_deliveries")
