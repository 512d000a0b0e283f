"""queue claim tokens: scenario jobs are claimed like every other queue (lease + token)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scenario_jobs") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scenario_jobs") as batch:
        batch.drop_column("claim_token")
