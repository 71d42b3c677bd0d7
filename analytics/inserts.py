"""``INSERT … ON CONFLICT`` on SQLite and PostgreSQL alike, for the rollup writers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def table_of(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def insert_for(db: AsyncSession, table: Table) -> Any:
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``)."""
    name = db.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


async def insert_new(
    db: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Insert the rows not there yet; return ``returning`` of those inserted."""
    if not rows:
        return []
    # One statement with many parameter sets: compiled once and cached, sent by SQLAlchemy's
    # "insertmanyvalues" in batches (a fresh multi-row VALUES statement per chunk spent most
    # of a recompute compiling SQL).
    stmt = insert_for(db, table).on_conflict_do_nothing()
    stmt = stmt.returning(*(table.c[c] for c in returning))
    return [tuple(row) for row in await db.execute(stmt, list(rows))]
