"""Order webhooks of the four platforms, end to end through the HTTP API, on both databases."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from api_support import World
from orders_support import (
    PLATFORMS,
    SECRETS,
    Stage,
    douyin_order,
    ok,
    shopify,
    stage,
)
from sqlalchemy import func, select
from storefront_support import FakeClock

from analytics.constants import STREAM_ANALYTICS
from analytics.schemas import OrderPaidV1, OrderRefundedV1, from_bus_event
from livebase.api.state import BUS, DB_SESSIONS
from livebase.db.models import Order, OrderLine, Pin, ProductSku, StockState, WebhookReceipt
from storefront_adapters.douyin import DouyinAdapter
from storefront_adapters.youzan import YouzanAdapter

HF = "/api/v1/bases/haifeng"
ACKS = {
    "douyin": json.loads(DouyinAdapter.webhook_ack),
    "youzan": json.loads(YouzanAdapter.webhook_ack),
}


@pytest.fixture
async def douyin_gateway() -> AsyncIterator[tuple[Any, str]]:
    from fake_douyin import FakeDouyin

    fake = FakeDouyin(FakeClock())
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def on_stage(world: World, platform: str, gateway: tuple[Any, str], **kw: Any) -> Stage:
    url = gateway[1] if platform == "douyin" else "https://shop.example.com"
    return await stage(world, platform, api_base_url=url, **kw)


async def orders(world: World) -> list[Order]:
    async with world.api.app[DB_SESSIONS]() as db:
        return list(await db.scalars(select(Order).order_by(Order.id)))


async def stock(world: World, sku_code: str = "SQ-250") -> int:
    async with world.api.app[DB_SESSIONS]() as db:
        return int(await db.scalar(select(ProductSku.stock).where(ProductSku.sku == sku_code)))


async def count(world: World, model: Any) -> int:
    async with world.api.app[DB_SESSIONS]() as db:
        return int(await db.scalar(select(func.count()).select_from(model)))


async def analytics_events(world: World) -> list[Any]:
    bus = world.api.app[BUS]
    await bus.ensure_group(STREAM_ANALYTICS, "orders-test")
    deliveries = await bus.read(STREAM_ANALYTICS, "orders-test", "t", count=1000)
    found = [from_bus_event(d.event) for d in deliveries]
    return [e for e in found if isinstance(e, OrderPaidV1 | OrderRefundedV1)]


@pytest.fixture
def gateway(douyin_gateway: tuple[Any, str]) -> tuple[Any, str]:
    return douyin_gateway


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_an_order_lands_once_credited_to_the_pinned_session(
    world: World, gateway: tuple[Any, str], platform: str
) -> None:
    st = await on_stage(world, platform, gateway)
    sale = st.sale("6900000000000000101", quantity=2)
    if platform == "douyin":
        gateway[0].orders.append(douyin_order(sale))
    from orders_support import BUILDERS

    headers, body = BUILDERS[platform](sale)
    for _ in range(3):  # the platform retries the same delivery
        status, payload = await st.post(headers, body)
        assert status == 200, payload
        assert payload == ACKS.get(platform, ""), payload
    (order,) = await orders(world)
    assert (order.platform, order.platform_order_id) == (platform, sale.order_id)
    assert (order.session_id, order.host_id, order.product_id) == (
        st.session_id,
        st.host_id,
        st.product_id,
    )
    assert order.credited_by == "pin" and order.stock_state is StockState.TAKEN
    assert (order.quantity, order.amount_fen, order.status.value) == (2, 3980, "paid")
    assert order.merchant_id == world.ids["haifeng.merchant"]
    assert await stock(world) == 98
    assert await count(world, OrderLine) == 1
    (event,) = await analytics_events(world)
    assert isinstance(event, OrderPaidV1)
    assert (event.base, event.room, event.session_id) == ("haifeng", "studio-1", st.session_id)
    assert (event.order_id, event.product_id, event.amount_fen) == (
        sale.order_id,
        st.product_id,
        3980,
    )


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_refund_adjusts_the_order_and_reaches_analytics(
    world: World, gateway: tuple[Any, str], platform: str
) -> None:
    st = await on_stage(world, platform, gateway)
    sale = st.sale("6900000000000000202")
    if platform == "douyin":
        gateway[0].orders.append(douyin_order(sale))
    assert (await st.deliver(sale))[0] == 200
    sale.status = "refunded"
    for _ in range(2):
        status, payload = await st.deliver(sale, delivery_id="refund-1")
        assert status == 200, payload
    (order,) = await orders(world)
    assert order.status.value == "refunded" and order.refunded_fen == sale.amount_fen
    assert await stock(world) == 99  # a refund does not restock: the goods may be gone
    kinds = [type(e).__name__ for e in await analytics_events(world)]
    assert kinds == ["OrderPaidV1", "OrderRefundedV1"]


async def test_a_cancellation_gives_the_stock_back(world: World, gateway: Any) -> None:
    st = await on_stage(world, "shopify", gateway)
    sale = st.sale("7001", quantity=3)
    assert (await st.deliver(sale))[0] == 200
    assert await stock(world) == 97
    sale.status = "cancelled"
    assert (await st.deliver(sale))[0] == 200
    (order,) = await orders(world)
    assert order.status.value == "cancelled" and order.stock_state is StockState.RETURNED
    assert await stock(world) == 100
    # A late "paid" delivery after the cancellation changes nothing.
    sale.status = "paid"
    assert (await st.deliver(sale))[0] == 200
    assert (await orders(world))[0].status.value == "cancelled" and await stock(world) == 100


async def test_tracking_parameters_win_over_the_pin(world: World, gateway: Any) -> None:
    st = await on_stage(world, "woocommerce", gateway)
    other = await ok(world, "POST", "/api/v1/bases/haifeng/sessions", {
        "room_id": world.ids["haifeng.room"], "title": "昨晚的场次",
    })  # fmt: skip
    tracking = {"lb_session": f"ls-{other['id']}", "lb_host": str(world.ids["haifeng.other_host"])}
    assert (await st.deliver(st.sale("7101", tracking=tracking)))[0] == 200
    (order,) = await orders(world)
    assert order.credited_by == "tracking"
    assert (order.session_id, order.host_id) == (other["id"], world.ids["haifeng.other_host"])
    assert order.product_id == st.product_id


async def test_tracking_into_another_base_is_ignored(world: World, gateway: Any) -> None:
    st = await on_stage(world, "youzan", gateway)
    luhe = await ok(world, "POST", "/api/v1/bases/luhe/sessions", {
        "room_id": world.ids["luhe.room"], "title": "陆河青梅",
    })  # fmt: skip
    tracking = {"lb_session": str(luhe["id"]), "lb_host": str(world.ids["luhe.host"])}
    assert (await st.deliver(st.sale("7201", tracking=tracking)))[0] == 200
    (order,) = await orders(world)
    assert (order.credited_by, order.session_id, order.host_id) == (
        "pin",
        st.session_id,
        st.host_id,
    )


async def test_an_order_after_the_window_is_stored_without_a_session(
    world: World, gateway: Any
) -> None:
    st = await on_stage(world, "shopify", gateway)
    await ok(
        world, "POST", f"/api/v1/bases/haifeng/sessions/{st.session_id}/pins/{st.pin_id}/unpin"
    )

    async def unpinned_minutes_ago(minutes: float) -> None:
        async with world.api.app[DB_SESSIONS]() as db, db.begin():
            pin = await db.get(Pin, st.pin_id)
            assert pin is not None
            pin.pinned_at = datetime.now(UTC) - timedelta(hours=1)
            pin.unpinned_at = datetime.now(UTC) - timedelta(minutes=minutes)

    await unpinned_minutes_ago(29)
    assert (await st.deliver(st.sale("7301")))[0] == 200
    await unpinned_minutes_ago(31)
    assert (await st.deliver(st.sale("7302")))[0] == 200
    within, after = await orders(world)
    assert (within.session_id, within.credited_by) == (st.session_id, "pin")
    assert (after.session_id, after.host_id, after.credited_by) == (None, None, "")
    assert after.product_id == st.product_id and after.stock_state is StockState.TAKEN
    # Analytics counts per session: only the credited order is news.
    assert [e.order_id for e in await analytics_events(world)] == ["7301"]


async def snapshot(world: World) -> tuple[int, int, int, int]:
    return (
        await count(world, Order),
        await count(world, OrderLine),
        await count(world, WebhookReceipt),
        await stock(world),
    )


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_wrong_or_missing_signature_is_401_and_stores_nothing(
    world: World, gateway: tuple[Any, str], platform: str
) -> None:
    from orders_support import BUILDERS

    st = await on_stage(world, platform, gateway)
    before = await snapshot(world)
    headers, body = BUILDERS[platform](st.sale("6900000000000000301"))
    tampered = body.replace(b"6900000000000000301", b"6900000000000000302")
    assert tampered != body
    unsigned = {
        k: v for k, v in headers.items() if "sign" not in k.lower() and "hmac" not in k.lower()
    }
    cases = [(headers, tampered), (unsigned, body if platform != "youzan" else b"{broken")]
    for h, b in cases:
        status, payload = await st.post(h, b)
        assert status == 401, payload
        assert payload["error"]["code"] == "bad_signature" and payload["error"]["message"]
    assert await snapshot(world) == before


async def test_a_signed_body_that_cannot_be_read_is_400(world: World, gateway: Any) -> None:
    from orders_support import SHOPIFY_SECRET, b64_hmac

    st = await on_stage(world, "shopify", gateway)
    before = await snapshot(world)
    headers, _ = shopify(st.sale("7401"))
    for body in (
        b"{not json",
        b'{"id": 7401, "financial_status": "paid", "line_items": "x"}',
        b"[]",
    ):
        signed = {**headers, "X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, body)}
        status, payload = await st.post(signed, body)
        assert status == 400 and payload["error"]["code"] == "malformed_webhook", payload
    assert await snapshot(world) == before


@pytest.mark.parametrize("what", ["product", "sku"])
async def test_an_unmapped_product_or_sku_is_refused_until_it_is_mapped(
    world: World, gateway: Any, what: str
) -> None:
    st = await on_stage(world, "shopify", gateway)
    sale = st.sale("7501", sku_code="UNKNOWN")
    if what == "product":
        sale.ext_product = "999"
    else:  # a mapping of the whole product, and a SKU code we do not have
        whole = {"external_product_id": st.ext_product, "product_id": st.product_id}
        await ok(world, "PUT", f"{HF}/shops/{st.shop_id}/listings", {"listings": [whole]})
        await ok(world, "PUT", f"/api/v1/bases/haifeng/products/{st.product_id}/skus", {"skus": [
            {"sku": "SQ-250", "price_fen": 1990, "stock": 100},
            {"sku": "SQ-500", "price_fen": 3590, "stock": 100}]})  # fmt: skip
    before = await snapshot(world)
    headers, body = shopify(sale, delivery_id="unmapped-1")
    status, payload = await st.post(headers, body)
    assert status == 422, payload
    assert payload["error"]["code"] == f"unknown_{what}"
    assert payload["error"]["fields"][0]["field"] == "line_items.0"
    assert await snapshot(world) == before
    # Once mapped, the platform's retry of the very same delivery is taken in.
    await ok(world, "PUT", f"/api/v1/bases/haifeng/shops/{st.shop_id}/listings", {"listings": [
        {"external_product_id": sale.ext_product, "external_sku_id": st.ext_sku,
         "product_id": st.product_id, "sku": "SQ-250"}]})  # fmt: skip
    assert (await st.post(headers, body))[0] == 200
    assert [o.platform_order_id for o in await orders(world)] == ["7501"]


async def test_woocommerce_creation_ping_is_answered_and_stores_nothing(
    world: World, gateway: Any
) -> None:
    st = await on_stage(world, "woocommerce", gateway)
    before = await snapshot(world)
    ping = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = await st.post(ping, b"webhook_id=12")
    assert status == 200 and await snapshot(world) == before


async def test_unknown_connection_or_platform_is_404(world: World, gateway: Any) -> None:
    st = await on_stage(world, "shopify", gateway)
    headers, body = shopify(st.sale("7601"))
    for path in (
        f"/webhooks/youzan/{st.shop_id}",
        "/webhooks/shopify/999999",
        "/webhooks/shopify/x",
    ):
        status, payload = await world.api.call("POST", path, None, data=body, headers=headers)
        assert status == 404 and payload["error"]["code"] == "not_found"


async def test_a_disabled_connection_refuses_deliveries(world: World, gateway: Any) -> None:
    st = await on_stage(world, "shopify", gateway)
    await ok(world, "PATCH", f"/api/v1/bases/haifeng/shops/{st.shop_id}", {"enabled": False})
    status, payload = await st.deliver(st.sale("7701"))
    assert status == 409 and payload["error"]["code"] == "shop_disabled"
    assert await count(world, Order) == 0


async def test_douyin_push_for_an_order_the_platform_does_not_list_is_retried(
    world: World, gateway: tuple[Any, str]
) -> None:
    st = await on_stage(world, "douyin", gateway)
    sale = st.sale("6900000000000000909")
    headers, body = __import__("orders_support").douyin_push(sale, "dy-msg-1")
    status, payload = await st.post(headers, body)
    assert status == 502 and payload["error"]["code"] == "platform_error", payload
    assert await snapshot(world) == (0, 0, 0, 100)
    gateway[0].orders.append(douyin_order(sale))
    assert (await st.post(headers, body))[0] == 200
    assert await count(world, Order) == 1


async def test_secrets_never_reach_answers_or_logs(
    world: World, gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    st = await on_stage(world, "shopify", gateway)
    shop_path = f"/api/v1/bases/haifeng/shops/{st.shop_id}"
    answers = [
        await ok(world, "GET", shop_path),
        await ok(world, "GET", "/api/v1/bases/haifeng/shops"),
        await ok(world, "PATCH", shop_path, {"credentials": {"secret": SECRETS[0]}}),
        await ok(world, "GET", shop_path, token=world.tokens["haifeng.merchant"]),
        await st.deliver(st.sale("7801")),
        await st.post({"X-Shopify-Hmac-Sha256": "AAAA"}, b"{}"),
    ]
    shown = repr(answers) + caplog.text
    async with world.api.app[DB_SESSIONS]() as db:
        from livebase.db.models import ShopConnection

        stored = repr(list((await db.execute(select(ShopConnection))).all()))
    for secret in SECRETS:
        assert secret not in shown
        assert secret not in stored  # encrypted at rest
    assert answers[0]["credentials_set"] == ["access_token", "secret"]
