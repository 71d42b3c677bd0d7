"""Pulling a shop's orders (POST …/shops/{id}/pull), and credit when a session has ended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from api_support import World
from orders_support import FakeWooCommerce, Stage, ok, stage, wc_order
from sqlalchemy import select

from livebase.api.state import DB_SESSIONS
from livebase.db.models import LiveSession, Order, Pin, ProductSku, ShopConnection

HF = "/api/v1/bases/haifeng"


@pytest.fixture
async def woo() -> AsyncIterator[tuple[FakeWooCommerce, str]]:
    fake = FakeWooCommerce()
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


def sale(number: int, modified: str, **kw: Any) -> dict[str, Any]:
    row = wc_order(number, modified, **kw)
    placed = datetime.now(UTC) + timedelta(seconds=1)
    row["date_created_gmt"] = placed.replace(tzinfo=None).isoformat(timespec="seconds")
    return row


async def shop_on(world: World, url: str) -> Stage:
    st = await stage(world, "woocommerce", api_base_url=url)
    await ok(world, "PUT", f"{HF}/shops/{st.shop_id}/listings", {"listings": [
        {"external_product_id": "93", "product_id": st.product_id}]})  # fmt: skip
    return st


async def db_state(world: World) -> tuple[list[tuple[str, str, int | None]], int, str | None]:
    async with world.api.app[DB_SESSIONS]() as db:
        orders = [
            (o.platform_order_id, o.status.value, o.session_id)
            for o in await db.scalars(select(Order).order_by(Order.id))
        ]
        stock = await db.scalar(select(ProductSku.stock))
        cursor = await db.scalar(select(ShopConnection.pull_cursor))
    return orders, int(stock or 0), cursor


async def test_a_pull_takes_orders_in_once_and_follows_their_changes(
    world: World, woo: tuple[FakeWooCommerce, str]
) -> None:
    fake, url = woo
    st = await shop_on(world, url)
    fake.orders = [sale(1, "2025-03-01T03:00:00"), sale(2, "2025-03-01T03:00:05")]
    pull = f"{HF}/shops/{st.shop_id}/pull"
    got = await ok(world, "POST", pull)
    assert (got["orders"], got["created"], got["stock_accepted"]) == (2, 2, 2)
    orders, stock, cursor = await db_state(world)
    assert orders == [("1", "paid", st.session_id), ("2", "paid", st.session_id)]
    assert stock == 98 and cursor
    again = await ok(world, "POST", pull, token=world.tokens["haifeng.merchant"])
    assert again["created"] == 0 and (await db_state(world))[1] == 98
    fake.orders[0] = sale(1, "2025-03-01T04:00:00", status="refunded")
    assert (await ok(world, "POST", pull))["updated"] == 1
    orders, stock, _ = await db_state(world)
    assert orders[0] == ("1", "refunded", st.session_id) and stock == 98


async def test_a_pull_with_an_unmapped_product_stores_nothing(
    world: World, woo: tuple[FakeWooCommerce, str]
) -> None:
    fake, url = woo
    st = await shop_on(world, url)
    stray = sale(3, "2025-03-01T03:00:00")
    stray["line_items"][0]["product_id"] = 555
    fake.orders = [sale(1, "2025-03-01T03:00:00"), stray]
    status, payload = await world.api.call(
        "POST", f"{HF}/shops/{st.shop_id}/pull", world.tokens["admin"]
    )
    assert status == 422 and payload["error"]["code"] == "unknown_product", payload
    assert payload["error"]["fields"][0]["message"].startswith("platform product 555")
    assert await db_state(world) == ([], 100, None)


async def test_a_platform_that_refuses_our_credentials_is_502(
    world: World, woo: tuple[FakeWooCommerce, str]
) -> None:
    st = await shop_on(world, woo[1])
    await ok(world, "PATCH", f"{HF}/shops/{st.shop_id}", {"credentials": {
        "key": "ck_wrong", "secret": "cs_wrong", "webhook_secret": "x"}})  # fmt: skip
    status, payload = await world.api.call(
        "POST", f"{HF}/shops/{st.shop_id}/pull", world.tokens["admin"]
    )
    assert status == 502 and payload["error"]["code"] == "platform_error", payload
    assert "cs_wrong" not in str(payload)


@pytest.mark.parametrize(("ended_minutes_ago", "credited"), [(29, True), (31, False)])
async def test_a_pin_left_open_ends_with_its_session(
    world: World, ended_minutes_ago: int, credited: bool
) -> None:
    st = await stage(world, "shopify")
    await ok(world, "PATCH", f"{HF}/sessions/{st.session_id}", {"status": "ended"})
    now = datetime.now(UTC)
    async with world.api.app[DB_SESSIONS]() as db, db.begin():
        session, pin = await db.get(LiveSession, st.session_id), await db.get(Pin, st.pin_id)
        assert session is not None and pin is not None and pin.unpinned_at is None
        pin.pinned_at = now - timedelta(hours=2)
        session.ended_at = now - timedelta(minutes=ended_minutes_ago)
    assert (await st.deliver(st.sale("8801")))[0] == 200
    orders, _, _ = await db_state(world)
    assert orders == [("8801", "paid", st.session_id if credited else None)]
