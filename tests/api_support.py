"""The API under test, with helpers: shared by the fixtures in conftest.py and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import text

from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role


@dataclass
class Api:
    """A running API on a real socket, with the sample bases seeded and helpers for tokens."""

    client: TestClient[Any, Any]
    app: Any
    ids: dict[str, int] = field(default_factory=dict)

    async def token(
        self,
        role: Role,
        base: str | None = None,
        *,
        merchant: int | None = None,
        host: int | None = None,
    ) -> str:
        async with self.app[DB_SESSIONS]() as db, db.begin():
            base_id = None
            if base is not None:
                base_id = await db.scalar(text("SELECT id FROM bases WHERE slug=:s"), {"s": base})
            issued = await issue_token(
                db, role, base_id=base_id, merchant_id=merchant, host_id=host
            )
            return issued.token

    async def call(
        self, method: str, path: str, token: str | None, json: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = await self.client.request(method, path, json=json, headers=headers, **kw)
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


@dataclass
class World:
    """Two bases with a merchant and a host each, and tokens for every role."""

    api: Api
    tokens: dict[str, str]
    ids: dict[str, int]
