"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from analytics.models import PaidOrder
from livebase.db.engine import create_engine
from livebase.db.migrate import current_revision, upgrade
from livebase.db.models import Model


async def test_upgrade_matches_models_and_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)
        assert await current_revision(engine) is not None

        def diff(conn: Connection) -> list[object]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Model.metadata))

        def tables(conn: Connection) -> set[str]:
            return set(inspect(conn).get_table_names())

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            assert await conn.run_sync(tables) >= {t for t in Model.metadata.tables}
    finally:
        await engine.dispose()


async def test_sqlite_times_written_in_bulk_take_the_orm_form(tmp_path: Path) -> None:
    """a005: times stored as ``isoformat(" ")`` (what bulk inserts wrote on SQLite) become the
    ORM's text; a minute or presence row held in both forms becomes one, sums added."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        await upgrade(engine, "a004")
        old, orm = "2026-11-26 16:00:00+00:00", "2026-11-26 16:00:00.000000"
        async with engine.begin() as conn:
            for scope_id, minute, gmv in ((1, old, 500), (1, orm, 700), (2, old, 90)):
                await conn.execute(
                    text(
                        "INSERT INTO analytics_minutes VALUES"
                        " ('session', :scope_id, :minute, :gmv, 0, 1, 0, 0, 0, 0, 0)"
                    ),
                    {"scope_id": scope_id, "minute": minute, "gmv": gmv},
                )
            for minute in (old, orm, "2026-11-26 16:01:00.250000+00:00"):
                await conn.execute(
                    text("INSERT INTO analytics_presence VALUES (1, :minute, 'player', 'v1')"),
                    {"minute": minute},
                )
            await conn.execute(
                text("INSERT INTO analytics_orders VALUES ('youzan', 'o1', 1, NULL, 700, :m)"),
                {"m": old},
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            minutes = (
                await conn.execute(
                    text("SELECT scope_id, minute, gmv_fen, orders FROM analytics_minutes")
                )
            ).all()
            presence = (await conn.execute(text("SELECT minute FROM analytics_presence"))).all()
            orders = (await conn.execute(text("SELECT minute FROM analytics_orders"))).all()
        assert sorted(map(tuple, minutes)) == [(1, orm, 1200, 2), (2, orm, 90, 1)]
        assert sorted(presence) == [(orm,), ("2026-11-26 16:01:00.250000",)]
        assert orders == [(orm,)]
        async with engine.connect() as conn:
            found = await conn.execute(
                select(PaidOrder.minute).where(
                    PaidOrder.minute >= datetime(2026, 11, 26, 16, tzinfo=UTC)
                )
            )
            assert found.scalars().all() == [datetime(2026, 11, 26, 16, tzinfo=UTC)]
    finally:
        await engine.dispose()
