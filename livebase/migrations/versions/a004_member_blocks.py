"""analytics: session-set members of sealed days, packed per session and kind

Revision ID: a004
Revises: a003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a004"
down_revision = "a003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_member_blocks",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("day", "session_id", "kind", name="pk_analytics_member_blocks"),
    )
    op.create_index(
        "ix_analytics_member_blocks_session_id", "analytics_member_blocks", ["session_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_analytics_member_blocks_session_id", "analytics_member_blocks")
    op.drop_table("analytics_member_blocks")
