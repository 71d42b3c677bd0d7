"""``INSERT … ON CONFLICT`` on SQLite and PostgreSQL alike, for the rollup writers, and bulk
inserts of pyarrow tables for the recompute of a day.

Bulk rows go to the database as plain tuples through the driver's ``executemany``:
SQLAlchemy's per-row parameter handling would cost more than computing them. Times are
converted once per distinct value by the column type's own bind processor, so they are stored
as the ORM stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any, Final, cast

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

#: Rows per ``executemany`` call of :func:`bulk_insert`.
CHUNK: Final = 50_000


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


def bind_processor(column: Any, dialect: Any) -> Any:
    """What SQLAlchemy makes of a value of ``column`` for the driver, on ``dialect``: the
    dialect's own type included (SQLite's text of a time), so that rows inserted in bulk
    compare, in SQL, as the ORM's rows do."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def times_for(values: pa.ChunkedArray, process: Any) -> list[Any]:
    """Driver values of a time column (``process``: its :func:`bind_processor`), converted
    once per distinct time. Through numpy: pyarrow's ``to_pylist`` of zoned times costs
    several times more."""
    distinct = pc.unique(values).drop_null()
    naive = pc.cast(distinct, pa.timestamp("us")).to_numpy(zero_copy_only=False)
    converted = [process(v.replace(tzinfo=UTC)) for v in naive.astype(object)]
    return [None if i is None else converted[i] for i in pc.index_in(values, distinct).to_pylist()]


async def bulk_insert(
    db: AsyncSession, model: type[Any], rows: pa.Table, *, skip_existing: bool = False
) -> None:
    """Insert ``rows`` (columns named as ``model``'s) as plain tuples, in key order."""
    if rows.num_rows == 0:
        return
    table = cast(Table, model.__table__)
    conn = await db.connection()
    dialect = conn.dialect
    names = rows.column_names
    if dialect.paramstyle == "numeric_dollar":
        marks = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    else:
        marks = ", ".join("?" * len(names))
    into = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(names)})"
    # Names from our own table metadata; the values go as parameters.
    sql = f"INSERT INTO {into} VALUES ({marks})"  # noqa: S608
    if skip_existing:
        sql += " ON CONFLICT DO NOTHING"
    processors = {n: bind_processor(table.c[n], dialect) for n in names}
    # In key order: B-tree pages fill one after another instead of all at random.
    rows = rows.sort_by([(c.name, "ascending") for c in table.primary_key.columns])
    for first in range(0, rows.num_rows, CHUNK):
        chunk = rows.slice(first, CHUNK)
        columns = [
            times_for(chunk[n], processors[n])
            if pa.types.is_timestamp(chunk[n].type) and processors[n] is not None
            else chunk[n].to_pylist()
            for n in names
        ]
        await conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
