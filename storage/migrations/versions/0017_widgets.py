"""widgets: callback requests from the site widget and the stored budgets against callback
bombing (per phone a day, per site an hour)

Revision ID: 0017_widgets
Revises: 0016_access
Create Date: 2026-12-04 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0017_widgets"
# The integrator re-chains this after 0015/0016 of other branches.
down_revision: str | Sequence[str] | None = "0016_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.String(length=64), nullable=True),
        sa.Column("site", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dialled_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_callback_requests_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_callback_requests_lead_id_leads"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["tracking_visits.id"],
            name=op.f("fk_callback_requests_visit_id_tracking_visits"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
    )
    op.create_index(
        "ix_callback_requests_phone_requested",
        "callback_requests",
        ["phone", "requested_at"],
        unique=False,
    )
    op.create_index(
        "ix_callback_requests_requested_at", "callback_requests", ["requested_at"], unique=False
    )
    op.create_table(
        "widget_counters",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("window_start", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_widget_counters")),
    )
    op.create_index("ix_widget_counters_window", "widget_counters", ["window_start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_widget_counters_window", table_name="widget_counters")
    op.drop_table("widget_counters")
    op.drop_index("ix_callback_requests_requested_at", table_name="callback_requests")
    op.drop_index("ix_callback_requests_phone_requested", table_name="callback_requests")
    op.drop_table("callback_requests")
