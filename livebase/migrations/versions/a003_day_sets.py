"""analytics: distinct ids per scope and local day, and their counts (the report's reads)

Revision ID: a003
Revises: a002

The day sets of the members already counted are derived here, base by base, the way
``analytics.day_sets`` derives them (kept apart: a migration must not change when that code does).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "a003"
down_revision = "a002"
branch_labels = None
depends_on = None

KEY = ("base_id", "day", "scope", "scope_id", "kind")
COLUMNS = (*KEY, "namespace", "member_id")
PAIRED = {"clicker": "paying_viewer", "paying_viewer": "clicker"}
CHUNK = 5_000


def _key() -> list[sa.Column[object]]:
    return [
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "analytics_day_members",
        *_key(),
        sa.Column("namespace", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "namespace", "member_id", name="pk_analytics_day_members"),
    )
    op.create_table(
        "analytics_day_counts",
        *_key(),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_analytics_day_counts"),
    )
    conn = op.get_bind()
    for (base_id,) in conn.execute(sa.text("SELECT DISTINCT base_id FROM live_sessions")):
        _backfill(conn, base_id)


def _backfill(conn: sa.Connection, base_id: int) -> None:
    members = sa.table(
        "analytics_members",
        sa.column("session_id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("namespace", sa.String()),
        sa.column("member_id", sa.String()),
        sa.column("first_minute", sa.DateTime(timezone=True)),
    )
    sessions = sa.table(
        "live_sessions",
        sa.column("id", sa.Integer()),
        sa.column("base_id", sa.Integer()),
        sa.column("host_id", sa.Integer()),
        sa.column("theme_id", sa.Integer()),
    )
    bases = sa.table("bases", sa.column("id", sa.Integer()), sa.column("timezone", sa.String()))
    zone = ZoneInfo(conn.execute(sa.select(bases.c.timezone).where(bases.c.id == base_id)).one()[0])
    found = conn.execute(
        sa.select(members, sessions.c.host_id, sessions.c.theme_id)
        .join(sessions, sessions.c.id == members.c.session_id)
        .where(sessions.c.base_id == base_id)
    )
    rows: set[tuple[object, ...]] = set()
    for session_id, kind, namespace, member_id, first, host_id, theme_id in found:
        first = first if isinstance(first, datetime) else datetime.fromisoformat(first)
        aware = first.replace(tzinfo=UTC) if first.tzinfo is None else first
        day = aware.astimezone(zone).date()
        for scope, scope_id in (
            ("session", session_id),
            ("host", host_id or 0),
            ("theme", theme_id or 0),
            ("base", base_id),
        ):
            rows.add((base_id, day, scope, scope_id, kind, namespace, member_id))
    paired = {r for r in rows if r[4] in PAIRED}
    rows |= {
        (*r[:4], "click_buyer", *r[5:])
        for r in paired
        if (*r[:4], PAIRED[str(r[4])], *r[5:]) in paired
    }
    ordered = sorted(rows, key=repr)
    typed = {"day": sa.Date()}
    day_members = sa.table("analytics_day_members", *(sa.column(c, typed.get(c)) for c in COLUMNS))
    for start in range(0, len(ordered), CHUNK):
        chunk = [dict(zip(COLUMNS, r, strict=True)) for r in ordered[start : start + CHUNK]]
        conn.execute(day_members.insert(), chunk)
    counts = Counter(r[:5] for r in ordered)
    if counts:
        day_counts = sa.table(
            "analytics_day_counts", *(sa.column(c, typed.get(c)) for c in (*KEY, "members"))
        )
        conn.execute(
            day_counts.insert(),
            [{**dict(zip(KEY, k, strict=True)), "members": n} for k, n in counts.items()],
        )


def downgrade() -> None:
    op.drop_table("analytics_day_counts")
    op.drop_table("analytics_day_members")
