"""tracking protection: lease holders' addresses, suspected-fraud call flag

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracking_leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("network", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_tracking_leases_address_ends", ["address", "ends_at"])
        batch_op.create_index("ix_tracking_leases_network_ends", ["network", "ends_at"])
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspected_fraud", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("suspected_fraud")
    with op.batch_alter_table("tracking_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_tracking_leases_network_ends")
        batch_op.drop_index("ix_tracking_leases_address_ends")
        batch_op.drop_column("network")
        batch_op.drop_column("address")
