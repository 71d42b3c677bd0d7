"""relay incidents: what broke in a session's relay, kept after the session ends

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_incidents",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_relay_incidents_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destinations.id"],
            name=op.f("fk_relay_incidents_destination_id_destinations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["base_id"],
            ["bases.id"],
            name=op.f("fk_relay_incidents_base_id_bases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "destination_id", name=op.f("pk_relay_incidents")),
    )
    op.create_index(
        op.f("ix_relay_incidents_base_id"), "relay_incidents", ["base_id"], unique=False
    )
    op.create_index(
        op.f("ix_relay_incidents_first_at"), "relay_incidents", ["first_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_relay_incidents_first_at"), table_name="relay_incidents")
    op.drop_index(op.f("ix_relay_incidents_base_id"), table_name="relay_incidents")
    op.drop_table("relay_incidents")
