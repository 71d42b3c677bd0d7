"""pins: an index to find a session's open pin without reading all its pins

Revision ID: 0006
Revises: 0005

Pinning a product ends the session's open pin (``unpinned_at IS NULL``); the index on
``(session_id, pinned_at)`` made that read every pin the session ever had.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pins_session_unpinned", "pins", ["session_id", "unpinned_at"])


def downgrade() -> None:
    op.drop_index("ix_pins_session_unpinned", table_name="pins")
