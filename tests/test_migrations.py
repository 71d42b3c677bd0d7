"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

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
