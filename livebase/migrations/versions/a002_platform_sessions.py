"""analytics: broadcasts as the platforms report them (Douyin Compass, WeChat Channels)

Revision ID: a002
Revises: a001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a002"
down_revision = "a001"
branch_labels = None
depends_on = None

COUNTS = (
    "views",
    "uv",
    "peak_concurrent",
    "viewer_seconds",
    "live_seconds",
    "impressions",
    "clicks",
    "gmv_fen",
    "orders",
    "buyers",
    "refund_fen",
    "interacting_uv",
)


def upgrade() -> None:
    op.create_table(
        "analytics_platform_sessions",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("row_key", sa.String(length=160), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("room_id", sa.Integer(), nullable=True),
        sa.Column("theme_id", sa.Integer(), nullable=True),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS],
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "row_key", name="pk_analytics_platform_sessions"),
    )
    op.create_index(
        "ix_analytics_platform_sessions_base_started",
        "analytics_platform_sessions",
        ["base_id", "started_at"],
    )
    op.create_index(
        "ix_analytics_platform_sessions_session_id",
        "analytics_platform_sessions",
        ["session_id"],
    )


def downgrade() -> None:
    op.drop_table("analytics_platform_sessions")
