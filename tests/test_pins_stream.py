"""Pins reach the viewers of a room's player over server-sent events within a second."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from api_support import World
from orders_support import ok

from livebase.settings import Settings, load_settings

HF = "/api/v1/bases/haifeng"
REDIS_URL = os.environ.get("LIVEBASE_TEST_REDIS_URL", "")


@pytest.fixture(params=["in-process-bus", "redis-bus"])
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    """The shared settings, on each bus: viewers are fed from the bus either way."""
    env = {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "LIVEBASE_DATABASE_URL": database_url}
    if request.param == "redis-bus":
        if not REDIS_URL:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("LIVEBASE_TEST_REDIS_URL is not set (in CI every variant must run)")
            pytest.skip("LIVEBASE_TEST_REDIS_URL is not set")
        env["LIVEBASE_REDIS_URL"] = REDIS_URL
    return load_settings(env)


async def next_event(resp: aiohttp.ClientResponse, within: float = 1.0) -> Any:
    """The data of the next ``pin`` event (comments and retry hints skipped)."""
    async with asyncio.timeout(within):
        event, data = None, None
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif line == "" and event == "pin":
                return json.loads(data or "null")


async def live_session(world: World) -> tuple[str, int]:
    ids = world.ids
    product = await ok(world, "POST", f"{HF}/products", {
        "merchant_id": ids["haifeng.merchant"], "title_zh": "莲花山茶", "title_en": "Lianhua tea",
        "price_fen": 6800, "stock": 20, "images": ["https://img.example.com/tea.jpg"],
    })  # fmt: skip
    session = await ok(world, "POST", f"{HF}/sessions", {
        "room_id": ids["haifeng.room"], "host_id": ids["haifeng.host"], "title": "茶",
    })  # fmt: skip
    sp = f"{HF}/sessions/{session['id']}"
    await ok(world, "PUT", sp + "/lineup", {"product_ids": [product["id"]]})
    await ok(world, "PATCH", sp, {"status": "live"})
    return sp, product["id"]


async def test_a_pin_reaches_every_viewer_within_a_second(world: World) -> None:
    sp, product_id = await live_session(world)
    client = world.api.client
    viewers = [await client.get("/live/haifeng/studio-1/pins") for _ in range(20)]
    for resp in viewers:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        assert await next_event(resp) is None  # nothing pinned yet
    start = time.perf_counter()
    pin = await ok(
        world, "POST", sp + "/pins", {"product_id": product_id}, token=world.tokens["haifeng.host"]
    )
    cards = await asyncio.gather(*(next_event(resp) for resp in viewers))
    assert time.perf_counter() - start < 1.0
    for card in cards:
        assert card["pin_id"] == pin["id"]
        assert card["product"] == {
            "id": product_id, "title_zh": "莲花山茶", "title_en": "Lianhua tea",
            "price_fen": 6800, "currency": "CNY", "image": "https://img.example.com/tea.jpg",
            "gi": None,
        }  # fmt: skip
    # A viewer arriving now gets the current pin first.
    late = await client.get("/live/haifeng/studio-1/pins")
    assert (await next_event(late))["pin_id"] == pin["id"]
    await ok(world, "POST", f"{sp}/pins/{pin['id']}/unpin")
    assert [await next_event(r) for r in (*viewers, late)] == [None] * 21
    for resp in (*viewers, late):
        resp.close()


async def test_ending_the_session_clears_the_pin_and_other_rooms_hear_nothing(
    world: World,
) -> None:
    sp, product_id = await live_session(world)
    client = world.api.client
    here = await client.get("/live/haifeng/studio-1/pins")
    elsewhere = await client.get("/live/haifeng/studio-2/pins")
    assert await next_event(here) is None and await next_event(elsewhere) is None
    await ok(world, "POST", sp + "/pins", {"product_id": product_id})
    assert (await next_event(here))["product"]["id"] == product_id
    await ok(world, "PATCH", sp, {"status": "ended"})
    assert await next_event(here) is None
    try:
        await next_event(elsewhere, within=0.3)
        raise AssertionError("another room's viewer heard of this pin")
    except TimeoutError:
        pass
    here.close()
    elsewhere.close()


async def test_an_unknown_room_is_404_in_the_error_envelope(world: World) -> None:
    for path in ("/live/haifeng/nowhere/pins", "/live/nobase/studio-1/pins"):
        status, payload = await world.api.call("GET", path, None)
        assert status == 404 and payload["error"]["code"] == "not_found"
