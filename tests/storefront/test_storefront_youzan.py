"""Youzan adapter against a local fake of the youzanyun gateway (see fake_youzan.py)."""

from __future__ import annotations

import hashlib
import json
import random
from decimal import Decimal
from urllib.parse import quote_plus

import aiohttp
import pytest
from fake_youzan import CLIENT_ID, CLIENT_SECRET, GRANT_ID, FakeYouzan, trade
from storefront_support import FakeClock, Serve, assert_not_leaked, stored_orders

from storefront_adapters import (
    AuthenticationError,
    Credentials,
    Listing,
    ListingError,
    MemoryDeliveryLedger,
    OrderStatus,
    PriceStockUpdate,
    Sku,
    UnknownProductError,
    UnknownSkuError,
    WebhookPayloadError,
    WebhookSignatureError,
    collect_orders,
)
from storefront_adapters.youzan import YouzanAdapter


def push(full_order_info: object, *, msg: str | None = None, secret: str = CLIENT_SECRET) -> bytes:
    """A trade_TradeBuyerPay push with the fields and example values of the message
    reference (client_id, id, kdt_id, kdt_name, mode, msg, msg_id, sendCount, sign, status,
    test, type, version); msg is URL-encoded JSON and sign = MD5(client_id + msg + secret)."""
    if msg is None:
        msg = quote_plus(json.dumps({"full_order_info": full_order_info}, ensure_ascii=False))
    return json.dumps(
        {
            "client_id": CLIENT_ID,
            "id": "E20210604153031018604175",
            "kdt_id": 63077,
            "kdt_name": "有赞的店",
            "mode": 1,
            "msg": msg,
            "msg_id": "a1d466ad-f9db-4a58-b805-f2a4dd65fa56",
            "sendCount": 1,
            "sign": hashlib.md5((CLIENT_ID + msg + secret).encode()).hexdigest(),
            "status": "TRADE_PAID",
            "test": False,
            "type": "trade_TradeBuyerPay",
            "version": 1516245348962,
        },
        ensure_ascii=False,
    ).encode()


ORDER = {
    "order_info": {
        "tid": "E20210604153031018604175",
        "status": "TRADE_PAID",
        "created": "2021-06-04 15:30:31",
        "update_time": "2021-06-04 15:30:40",
        "refund_state": 0,
    },
    "pay_info": {"payment": "59.90", "total_fee": "59.90", "post_fee": "0.00"},
    "buyer_info": {"yz_open_id": "yz-open-abc"},
    "orders": [
        {
            "item_id": 3620,
            "sku_id": 36001,
            "outer_sku_id": "YZ-250",
            "num": 2,
            "payment": "59.90",
            "title": "鱿鱼干",
            "goods_url": "https://shop63077.youzan.com/v2/goods/2fx?lb_session=ls-5&lb_host=h-1",
        }
    ],
}
PUSH = push(ORDER)


def adapter(
    base_url: str, session: aiohttp.ClientSession, clock: FakeClock, *, secret: str = CLIENT_SECRET
) -> YouzanAdapter:
    creds = Credentials(key=CLIENT_ID, secret=secret, account_id=GRANT_ID)
    return YouzanAdapter(creds, session, base_url, clock=clock, rng=random.Random(9))


async def test_token_flow_and_every_page(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    rows = [trade(n, f"2023-11-14 21:0{n}:00") for n in range(1, 5)]
    rows += [
        trade(5, "2023-11-14 21:05:00", status="WAIT_BUYER_PAY"),
        trade(6, "2023-11-14 21:06:00", status="TRADE_CLOSED"),
        trade(7, "2023-11-14 21:07:00", status="TRADE_CLOSED", refund_state=12),
    ]
    fake = FakeYouzan(clock, trades=rows)
    shop = adapter(await serve(fake.app()), http_session, clock)
    shop.page_size = 3
    orders, cursor = await collect_orders(shop, None)
    assert [o.platform_order_id[-2:] for o in orders] == ["01", "02", "03", "04", "06", "07"]
    assert [params["page_no"] for _, params, _ in fake.calls] == [1, 2, 3]
    assert fake.tokens_issued == 1
    first = orders[0]
    assert (first.amount_fen, first.currency, first.status) == (190, "CNY", OrderStatus.PAID)
    assert first.placed_at.isoformat() == "2025-03-01T02:00:00+00:00"  # 10:00 Beijing time
    assert dict(first.tracking) == {"lb_session": "s1"}
    assert orders[4].status is OrderStatus.CANCELLED and orders[5].status is OrderStatus.REFUNDED
    fake.trades.append(trade(8, "2023-11-14 21:20:00"))
    clock.now += 3600
    later, _ = await collect_orders(shop, cursor)
    assert [o.platform_order_id[-2:] for o in later] == ["07", "08"]  # boundary second re-read


async def test_an_invalid_token_is_renewed_and_429_waits(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeYouzan(clock, trades=[trade(1, "2023-11-14 21:00:00")])
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    fake.token = "rotated-elsewhere"
    fake.rate_limited = 1
    page = await shop.pull_orders(None)
    assert len(page.orders) == 1 and fake.tokens_issued == 2
    assert clock.sleeps == [1.0]  # Retry-After: 1


async def test_wrong_client_secret_is_a_clear_authentication_error(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeYouzan(clock)
    shop = adapter(await serve(fake.app()), http_session, clock, secret="yz-wrong-marker")
    with pytest.raises(AuthenticationError, match="client_id或client_secret错误") as info:
        await shop.pull_orders(None)
    assert info.value.code == "4001" and "yz-wrong-marker" not in str(info.value)


async def test_publishes_in_fen_and_updates_in_yuan(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeYouzan(clock)
    shop = adapter(await serve(fake.app()), http_session, clock)
    fake.token = None
    listing = Listing(
        "汕尾鱿鱼干",
        "海边晒制的鱿鱼干",
        (Sku("YZ-250", 1250, 40, label="250g"), Sku("YZ-500", 2399, 20, label="500g")),
        platform_fields={"image_ids": "1001,1002"},
    )
    published = await shop.publish_listing(listing)
    _, params, _ = fake.calls[0]
    assert (params["price"], params["quantity"], params["image_ids"]) == (1250, 60, "1001,1002")
    assert [
        (s["item_no"], s["price"], s["quantity"]) for s in json.loads(params["sku_stocks"])
    ] == [("YZ-250", 1250, 40), ("YZ-500", 2399, 20)]
    await shop.update_price_stock(
        PriceStockUpdate(published.external_product_id, "YZ-500", price_fen=2050, stock=7)
    )
    name, params, raw = fake.calls[-1]
    assert name == "youzan.item.sku.update"
    assert params["price"] == Decimal("20.5") and params["quantity"] == "7"  # yuan, exact
    assert json.loads(raw, parse_float=Decimal)["price"] * 100 == 2050
    with pytest.raises(UnknownProductError, match="商品不存在"):
        await shop.update_price_stock(PriceStockUpdate("999", "YZ-500", stock=1))
    with pytest.raises(UnknownSkuError, match="no SKU 'YZ-999'"):
        await shop.update_price_stock(
            PriceStockUpdate(published.external_product_id, "YZ-999", stock=1)
        )
    with pytest.raises(ListingError, match="image_ids"):
        await shop.publish_listing(Listing("鱼", "d", (Sku("X", 1, 1),)))


def test_parses_a_documented_trade_paid_push(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://open.youzanyun.com", http_session, clock)
    delivery = shop.parse_webhook({}, PUSH)
    assert delivery.delivery_id == "a1d466ad-f9db-4a58-b805-f2a4dd65fa56"
    assert delivery.topic == "trade_TradeBuyerPay"
    (order,) = delivery.orders
    assert (order.platform_order_id, order.status) == ("E20210604153031018604175", OrderStatus.PAID)
    assert (order.amount_fen, order.buyer_ref) == (5990, "yz-open-abc")
    assert order.placed_at.isoformat() == "2021-06-04T07:30:31+00:00"
    assert order.line_items[0].quantity == 2 and order.line_items[0].amount_fen == 5990
    assert dict(order.tracking) == {"lb_session": "ls-5", "lb_host": "h-1"}
    event_sign = hashlib.md5(CLIENT_ID.encode() + PUSH + CLIENT_SECRET.encode()).hexdigest()
    assert shop.parse_webhook({"Event-Sign": event_sign}, PUSH).orders == delivery.orders


def test_rejects_bad_signatures_and_malformed_pushes(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://open.youzanyun.com", http_session, clock)
    with pytest.raises(WebhookSignatureError, match="sign does not match"):
        shop.parse_webhook({}, push(ORDER, secret="other"))
    unsigned = json.loads(PUSH)
    del unsigned["sign"]
    with pytest.raises(WebhookSignatureError, match="missing sign"):
        shop.parse_webhook({}, json.dumps(unsigned).encode())
    with pytest.raises(WebhookSignatureError, match="Event-Sign"):
        shop.parse_webhook({"Event-Sign": "0" * 32}, PUSH)
    with pytest.raises(WebhookSignatureError, match="unreadable body"):
        shop.parse_webhook({}, b"{broken")
    with pytest.raises(WebhookPayloadError, match="not URL-encoded JSON"):
        shop.parse_webhook({}, push(ORDER, msg="%7Bnot-json"))
    bad_amount = {**ORDER, "pay_info": {"payment": "59.905"}}
    with pytest.raises(WebhookPayloadError, match="more than 2 decimal places"):
        shop.parse_webhook({}, push(bad_amount))


async def test_a_replayed_push_is_counted_once(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://open.youzanyun.com", http_session, clock)
    pushes = [({}, PUSH)] * 3
    assert len(await stored_orders(shop, MemoryDeliveryLedger(), pushes)) == 1


async def test_credentials_never_reach_logs(
    serve: Serve,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    fake = FakeYouzan(clock, trades=[trade(1, "2023-11-14 21:00:00")], rate_limited=1)
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    assert_not_leaked(debug_logs, (CLIENT_SECRET, fake.token or "unset"))
