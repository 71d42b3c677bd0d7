"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, over real connections.

PostgreSQL and Redis come from ``LIVEBASE_TEST_POSTGRES_URL`` and ``LIVEBASE_TEST_REDIS_URL``
(``scripts/services.sh`` sets them). Where one is unreachable its variant is skipped, except
in CI (``CI=true``), where a skipped variant is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_support import Api, World
from sqlalchemy import text

from livebase.api.app import create_app
from livebase.api.state import DB_SESSIONS
from livebase.db.engine import create_engine
from livebase.db.models import Host, Merchant, Role
from livebase.seed import seed_catalogue
from livebase.settings import Settings, load_settings

POSTGRES_URL = os.environ.get(
    "LIVEBASE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/livebase_test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str, why: object) -> None:
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(f"{message} (in CI every variant must run)")
    pytest.skip(message)


async def _postgres(sql: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own per test
    (so concurrent test runs on one server stay apart)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await _postgres(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # connection refused, unknown database, auth …
        unavailable("PostgreSQL", exc)
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}schema={schema}"
    await _postgres(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "LIVEBASE_DATABASE_URL": database_url}
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        async with app[DB_SESSIONS]() as db, db.begin():
            await seed_catalogue(db, settings)
        yield Api(client=client, app=app)


@pytest.fixture
async def world(api: Api) -> World:
    ids: dict[str, int] = {}
    async with api.app[DB_SESSIONS]() as db, db.begin():
        for slug in ("haifeng", "luhe"):
            base = await db.execute(text("SELECT id FROM bases WHERE slug=:s"), {"s": slug})
            base_id = base.scalar_one()
            room_id = (
                (
                    await db.execute(
                        text("SELECT id FROM rooms WHERE base_id=:b ORDER BY id"), {"b": base_id}
                    )
                )
                .scalars()
                .first()
            )
            merchant = Merchant(base_id=base_id, name=f"{slug} merchant")
            host = Host(base_id=base_id, room_id=room_id, display_name=f"{slug} host")
            other_host = Host(base_id=base_id, display_name=f"{slug} other host")
            other_merchant = Merchant(base_id=base_id, name=f"{slug} other merchant")
            db.add_all([merchant, host, other_host, other_merchant])
            await db.flush()
            ids |= {
                f"{slug}.base": base_id,
                f"{slug}.room": room_id or 0,
                f"{slug}.merchant": merchant.id,
                f"{slug}.host": host.id,
                f"{slug}.other_host": other_host.id,
                f"{slug}.other_merchant": other_merchant.id,
            }
    tokens = {"admin": await api.token(Role.ADMIN)}
    for slug in ("haifeng", "luhe"):
        tokens[f"{slug}.manager"] = await api.token(Role.BASE_MANAGER, slug)
        tokens[f"{slug}.merchant"] = await api.token(
            Role.MERCHANT, slug, merchant=ids[f"{slug}.merchant"]
        )
        tokens[f"{slug}.host"] = await api.token(Role.HOST, slug, host=ids[f"{slug}.host"])
    api.ids = ids
    return World(api=api, tokens=tokens, ids=ids)
