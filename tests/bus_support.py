"""Redis for the bus tests: the server from ``LIVEBASE_TEST_REDIS_URL`` (database 15 on
127.0.0.1 by default), and a bus on it or in process for tests that run on both.

A Redis bus gets a random key prefix of its own and exactly its keys are deleted afterwards, so
concurrent test runs on one server stay apart. An unreachable Redis skips its variant, except in
CI (``CI=true``), where every variant must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.exceptions
from redis.asyncio import Redis

from livebase.bus import EventBus, InProcessBus, RedisStreamsBus

REDIS_URL = os.environ.get("LIVEBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BUS_KINDS = ["memory", "redis"]


async def redis_or_skip() -> Redis:
    """A client of the test Redis; skips the test (fails it in CI) when it is unreachable."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        await client.aclose()
        reason = f"Redis at {REDIS_URL} is unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; in CI every variant must run")
        pytest.skip(reason)
    return client


def new_prefix() -> str:
    return f"livebase-test:{uuid.uuid4().hex}:"


async def delete_prefix(client: Redis, prefix: str) -> None:
    """Delete the keys under the prefix, a few hundred at a time."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    for start in range(0, len(keys), 500):
        await client.delete(*keys[start : start + 500])


@asynccontextmanager
async def bus_of_kind(kind: str) -> AsyncIterator[EventBus]:
    """An in-process bus (``memory``) or a Redis Streams bus (``redis``) under a prefix of its
    own; use it in a fixture parametrized over :data:`BUS_KINDS`."""
    if kind == "memory":
        async with InProcessBus() as memory:
            yield memory
        return
    client = await redis_or_skip()
    prefix = new_prefix()
    try:
        async with RedisStreamsBus(REDIS_URL, key_prefix=prefix) as on_redis:
            yield on_redis
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
