"""analytics rollups: per-minute sums, id sets, and the processed-event ledger

Revision ID: a001
Revises: 0002

A branch of its own ("analytics"), so that it applies beside the main line's revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a001"
down_revision = "0002"
branch_labels = ("analytics",)
depends_on = None

SUMS = ("gmv_fen", "refund_fen", "orders", "views", "viewer_seconds", "viewers", "impressions")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "analytics_minutes",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        _time("minute"),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in (*SUMS, "clicks")],
        sa.PrimaryKeyConstraint("scope", "scope_id", "minute", name="pk_analytics_minutes"),
    )
    op.create_index("ix_analytics_minutes_minute", "analytics_minutes", ["minute"])
    op.create_table(
        "analytics_processed_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        _time("occurred_at"),
        sa.PrimaryKeyConstraint("event_id", name="pk_analytics_processed_events"),
    )
    op.create_index(
        "ix_analytics_processed_events_occurred_at", "analytics_processed_events", ["occurred_at"]
    )
    op.create_table(
        "analytics_presence",
        sa.Column("session_id", sa.Integer(), nullable=False),
        _time("minute"),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("viewer_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(
            "session_id", "minute", "source", "viewer_id", name="pk_analytics_presence"
        ),
    )
    op.create_index("ix_analytics_presence_minute", "analytics_presence", ["minute"])
    op.create_table(
        "analytics_members",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        _time("first_minute"),
        sa.PrimaryKeyConstraint(
            "session_id", "kind", "namespace", "member_id", name="pk_analytics_members"
        ),
    )
    op.create_index("ix_analytics_members_first_minute", "analytics_members", ["first_minute"])
    op.create_table(
        "analytics_orders",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _time("minute"),
        sa.PrimaryKeyConstraint("platform", "order_id", name="pk_analytics_orders"),
    )
    op.create_index("ix_analytics_orders_minute", "analytics_orders", ["minute"])
    op.create_table(
        "analytics_refunds",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _time("minute"),
        sa.PrimaryKeyConstraint("platform", "refund_id", name="pk_analytics_refunds"),
    )
    op.create_index("ix_analytics_refunds_minute", "analytics_refunds", ["minute"])
    op.create_table(
        "analytics_sessions",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        _time("started_at", True),
        _time("ended_at", True),
        _time("first_event_at", True),
        _time("last_event_at", True),
        sa.PrimaryKeyConstraint("session_id", name="pk_analytics_sessions"),
    )


def downgrade() -> None:
    for table in (
        "analytics_sessions",
        "analytics_refunds",
        "analytics_orders",
        "analytics_members",
        "analytics_presence",
        "analytics_processed_events",
        "analytics_minutes",
    ):
        op.drop_table(table)
