"""analytics: times written in bulk on SQLite stored as the ORM stores them

Rows the recompute of a day wrote in bulk on SQLite held their times as
``2026-11-26 16:00:00+00:00`` where the ORM writes ``2026-11-26 16:00:00.000000``. SQLite
compares the texts, so such a row at a bound (``minute >= '… 16:00:00.000000'``) fell on the
wrong side of it: the first minute of a local day was read as the last of the day before.
This rewrites those times in the ORM's form. A minute a recompute wrote and the live consumer
then wrote again, in the other form, becomes one row holding what the two held; a presence
row likewise. PostgreSQL stores times as times: nothing to do there.

Revision ID: a005
Revises: a004
"""

from __future__ import annotations

from alembic import op

revision = "a005"
down_revision = "a004"
branch_labels = None
depends_on = None

#: (table, time column) of every table the recompute writes in bulk.
TIMES = (
    ("analytics_minutes", "minute"),
    ("analytics_presence", "minute"),
    ("analytics_orders", "minute"),
    ("analytics_refunds", "minute"),
    ("analytics_members", "first_minute"),
    ("analytics_processed_events", "occurred_at"),
)
SUMS = ("gmv_fen", "refund_fen", "orders", "views", "viewer_seconds", "viewers", "impressions",
        "clicks")  # fmt: skip
#: The written form of a time: ``isoformat(" ")``, with or without microseconds.
OLD = "'%+00:00'"


def _fixed(column: str) -> str:
    """The ORM's text of an old-form time ``column``."""
    return (
        f"CASE WHEN length({column}) = 25 THEN substr({column}, 1, 19) || '.000000'"
        f" ELSE substr({column}, 1, length({column}) - 6) END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in TIMES:
        # A row whose new text is already another row's key is left for the merge below.
        op.execute(
            f"UPDATE OR IGNORE {table} SET {column} = {_fixed(column)}"  # noqa: S608
            f" WHERE {column} LIKE {OLD}"
        )
    added = ", ".join(f"{s} = m.{s} + o.{s}" for s in SUMS)
    op.execute(
        f"UPDATE analytics_minutes AS m SET {added} FROM analytics_minutes AS o"  # noqa: S608
        f" WHERE o.minute LIKE {OLD} AND o.scope = m.scope"
        f" AND o.scope_id = m.scope_id AND m.minute = {_fixed('o.minute')}"
    )
    for table, column in TIMES:
        op.execute(f"DELETE FROM {table} WHERE {column} LIKE {OLD}")  # noqa: S608


def downgrade() -> None:
    """Nothing to undo: the ORM's form is what every reader expects."""
