"""destination relay state

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="idle")
        )
        batch.add_column(
            sa.Column("last_error", sa.String(length=500), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destinations") as batch:
        batch.drop_column("state_changed_at")
        batch.drop_column("last_error")
        batch.drop_column("state")
