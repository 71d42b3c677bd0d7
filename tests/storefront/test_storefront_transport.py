"""The shared retry helper: Retry-After, exponential backoff with jitter, bounded attempts."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from storefront_support import FakeClock, Serve

from storefront_adapters.errors import PlatformError, ThrottledError
from storefront_adapters.transport import HttpClient, RetryPolicy, parse_retry_after


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after(" 0 ", now) == 0.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.2)
    rng = random.Random(1)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        for _ in range(50):
            assert nominal * 0.8 <= policy.backoff(attempt, rng) <= nominal * 1.2


def scripted(statuses: list[tuple[int, dict[str, str]]]) -> tuple[web.Application, list[str]]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.method)
        status, headers = statuses[min(len(seen), len(statuses)) - 1]
        return web.json_response({"n": len(seen)}, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/x", handler)
    return app, seen


async def test_5xx_is_retried_for_idempotent_requests_only(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    app, seen = scripted([(503, {}), (502, {}), (200, {})])
    base = await serve(app)
    client = HttpClient(
        "demo", http_session, clock=clock, policy=RetryPolicy(base_delay=1.0, jitter=0.0)
    )
    response = await client.request("GET", f"{base}/x")
    assert response.status == 200 and seen == ["GET"] * 3
    assert clock.sleeps == [1.0, 2.0]
    seen.clear()
    app2, seen2 = scripted([(503, {}), (200, {})])
    base2 = await serve(app2)
    response = await client.request("POST", f"{base2}/x", idempotent=False)
    assert response.status == 503 and seen2 == ["POST"]  # a create is never sent twice


async def test_attempts_are_bounded(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    app, seen = scripted([(429, {"Retry-After": "3"})])
    base = await serve(app)
    client = HttpClient("demo", http_session, clock=clock, policy=RetryPolicy(max_attempts=4))
    with pytest.raises(ThrottledError, match="still throttled after 4 attempt") as info:
        await client.request("POST", f"{base}/x", idempotent=False)
    assert len(seen) == 4 and clock.sleeps == [3.0, 3.0, 3.0]
    assert info.value.status == 429 and info.value.retry_after == 3.0


async def test_a_long_retry_after_is_handed_back_not_slept(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    app, seen = scripted([(429, {"Retry-After": "3600"})])
    client = HttpClient("demo", http_session, clock=clock, policy=RetryPolicy(max_retry_after=60))
    with pytest.raises(ThrottledError) as info:
        await client.request("GET", f"{await serve(app)}/x")
    assert info.value.retry_after == 3600.0 and clock.sleeps == [] and len(seen) == 1


async def test_network_errors_are_retried_then_reported(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    client = HttpClient(
        "demo",
        http_session,
        clock=clock,
        policy=RetryPolicy(max_attempts=3, base_delay=0.1, jitter=0.0),
    )
    url = "http://127.0.0.1:9/x"  # discard port: nothing listens
    with pytest.raises(PlatformError, match=re.escape("GET http://127.0.0.1:9/x failed")) as info:
        await client.request("GET", url + "?access_token=never-logged")
    assert info.value.code == "network" and client.attempts == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    assert "never-logged" not in str(info.value)
    with pytest.raises(PlatformError):
        await client.request("POST", url, idempotent=False)
    assert client.attempts == 4
