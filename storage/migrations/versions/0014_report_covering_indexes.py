"""reports: the calls' time index covers every column a report counts; a caller's calls are
indexed with the internal flag, direction and id (the missed-calls report seeks each missed
caller's next call); attributions are indexed by creation (reports count a period's
attributions from their side); leads by creation with their source

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out (not imported from the models): a migration describes the schema of its day.
REPORTED = [
    "started_at", "direction", "internal", "id", "phone", "answered", "status",
    "first_time_caller", "manager_user", "provider",
]


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_started_inbound")
        batch_op.create_index("ix_calls_started_inbound", REPORTED, unique=False)
        batch_op.drop_index("ix_calls_phone_started_at")
        batch_op.create_index(
            "ix_calls_phone_started",
            ["phone", "internal", "started_at", sa.text("direction DESC"), "id"],
            unique=False,
        )
    op.create_index(
        "ix_call_attributions_created_at", "call_attributions", ["created_at"], unique=False
    )
    op.drop_index("ix_leads_created_at", table_name="leads")
    op.create_index("ix_leads_created_source", "leads", ["created_at", "source"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_leads_created_source", table_name="leads")
    op.create_index("ix_leads_created_at", "leads", ["created_at"], unique=False)
    op.drop_index("ix_call_attributions_created_at", table_name="call_attributions")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_phone_started")
        batch_op.create_index("ix_calls_phone_started_at", ["phone", "started_at"], unique=False)
        batch_op.drop_index("ix_calls_started_inbound")
        batch_op.create_index(
            "ix_calls_started_inbound", ["started_at", "direction", "internal", "id"], unique=False
        )
