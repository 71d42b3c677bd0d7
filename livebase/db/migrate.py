"""Run Alembic migrations programmatically over the application's async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the database schema up to ``revision`` (default: the newest of every branch).

    The main line and the analytics branch each have a head; "heads" applies both.
    """

    def _run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The applied revision of each branch, comma-separated (None before the first)."""
    from alembic.runtime.migration import MigrationContext

    def _rev(connection: Connection) -> str | None:
        heads = MigrationContext.configure(connection).get_current_heads()
        return ", ".join(sorted(heads)) or None

    async with engine.connect() as conn:
        return await conn.run_sync(_rev)
