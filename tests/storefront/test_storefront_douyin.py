"""Douyin Shop adapter against a local fake of the open-platform gateway (fake_douyin.py)."""

from __future__ import annotations

import hashlib
import json
import random

import aiohttp
import pytest
from fake_douyin import APP_KEY, APP_SECRET, SHOP_ID, FakeDouyin, shop_order
from storefront_support import FakeClock, Serve, assert_not_leaked, stored_orders

from storefront_adapters import (
    AuthenticationError,
    Credentials,
    Listing,
    ListingError,
    MemoryDeliveryLedger,
    OrderStatus,
    PriceStockUpdate,
    RetryPolicy,
    Sku,
    UnknownProductError,
    UnknownSkuError,
    WebhookPayloadError,
    WebhookSignatureError,
    collect_orders,
)
from storefront_adapters.douyin import DouyinAdapter

# An order paid/confirmed push (tag 101) with the data fields of the platform's message
# reference (p_id, s_ids, shop_id, order_status, order_type, biz, pay_type, pay_time,
# pay_amount), as the push-message SDK parses it; data is itself a JSON string.
PUSH = json.dumps(
    [
        {
            "tag": "101",
            "msg_id": "7029316874412345678",
            "data": json.dumps(
                {
                    "p_id": 4781320682406083640,
                    "s_ids": [4781320682406083641],
                    "shop_id": 4463798,
                    "order_status": 2,
                    "order_type": 0,
                    "biz": 2,
                    "pay_type": 1,
                    "pay_time": 1630021818,
                    "pay_amount": 5990,
                }
            ),
        }
    ],
    separators=(",", ":"),
).encode()


def adapter(
    base_url: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    *,
    secret: str = APP_SECRET,
    retry: RetryPolicy | None = None,
) -> DouyinAdapter:
    creds = Credentials(key=APP_KEY, secret=secret, account_id=SHOP_ID)
    return DouyinAdapter(creds, session, base_url, clock=clock, retry=retry, rng=random.Random(5))


def event_headers(body: bytes, **extra: str) -> dict[str, str]:
    sign = hashlib.md5(APP_KEY.encode() + body + APP_SECRET.encode()).hexdigest()
    return {"app-id": APP_KEY, "event-sign": sign, **extra}


async def test_pulls_every_page_with_signed_requests(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    now = int(clock.time())
    rows = [shop_order(n, now - 1000 + n) for n in range(1, 5)]
    rows += [
        shop_order(5, now - 900, status=1),
        shop_order(6, now - 800, status=4),
        shop_order(7, now - 700, refunded=True),
    ]
    fake = FakeDouyin(clock, orders=rows)
    shop = adapter(await serve(fake.app()), http_session, clock)
    shop.page_size = 3
    orders, cursor = await collect_orders(shop, None)
    assert [o.platform_order_id[-2:] for o in orders] == ["01", "02", "03", "04", "06", "07"]
    assert [params["page"] for method, params in fake.calls] == [0, 1, 2]
    assert all(q["sign_method"] == "hmac-sha256" and q["v"] == "2" for q in fake.queries)
    first = orders[0]
    assert (first.status, first.currency, first.amount_fen) == (OrderStatus.PAID, "CNY", 1099)
    assert first.line_items[0].amount_fen == 1099 and first.line_items[0].sku_code == "DY-SQ-250"
    assert dict(first.tracking) == {
        "douyin_room_id": "7200000000000000001",
        "douyin_author_id": "88001",
    }
    assert orders[4].status is OrderStatus.CANCELLED and orders[5].status is OrderStatus.REFUNDED
    assert fake.tokens_issued == 1  # token.create once, then reused
    fake.orders.append(shop_order(8, now + 50))
    clock.now += 100
    later, _ = await collect_orders(shop, cursor)
    assert [o.platform_order_id[-2:] for o in later] == ["07", "08"]  # boundary second re-read


async def test_rate_limit_code_is_retried_with_backoff(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeDouyin(clock, orders=[shop_order(1, int(clock.time()) - 10)], rate_limited=2)
    shop = adapter(
        await serve(fake.app()), http_session, clock, retry=RetryPolicy(base_delay=0.5, jitter=0.0)
    )
    page = await shop.pull_orders(None)
    assert len(page.orders) == 1
    assert shop.http.attempts == 1 + 3  # token.create, then searchList three times
    assert clock.sleeps == [0.5, 1.0]


async def test_an_expired_token_is_renewed_once(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeDouyin(clock, orders=[shop_order(1, int(clock.time()) - 10)])
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    fake.expire_token()
    page = await shop.pull_orders(None)
    assert len(page.orders) == 1 and fake.tokens_issued == 2


async def test_a_wrong_secret_fails_signature_with_a_clear_error(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeDouyin(clock)
    shop = adapter(await serve(fake.app()), http_session, clock, secret="dy-wrong-marker")
    with pytest.raises(AuthenticationError, match="签名校验失败") as info:
        await shop.pull_orders(None)
    assert info.value.code == "40003/isv.signature-invalid"
    assert "dy-wrong-marker" not in str(info.value)


async def test_publishes_and_updates_prices_in_fen(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeDouyin(clock)
    shop = adapter(await serve(fake.app()), http_session, clock)
    listing = Listing(
        "汕尾鱿鱼干 250g",
        "海边晒制",
        (Sku("DY-250", 1250, 40, label="250g"), Sku("DY-500", 2399, 20, label="500g")),
        image_urls=("https://cdn.example/a.jpg", "https://cdn.example/b.jpg"),
        platform_fields={"category_leaf_id": 20219, "freight_id": 0, "mobile": "13800000000"},
    )
    published = await shop.publish_listing(listing)
    method, params = fake.calls[0]
    assert method == "product.addV2" and params["specs"] == "规格|250g,500g"
    assert json.loads(params["spec_prices"]) == [
        {"spec_detail_name1": "250g", "stock_num": 40, "price": 1250, "code": "DY-250"},
        {"spec_detail_name1": "500g", "stock_num": 20, "price": 2399, "code": "DY-500"},
    ]
    await shop.update_price_stock(
        PriceStockUpdate(published.external_product_id, "DY-500", price_fen=2050, stock=7)
    )
    assert [c[0] for c in fake.calls[-3:]] == ["product.detail", "sku.editPrice", "sku.syncStock"]
    assert fake.calls[-2][1]["price"] == 2050
    assert fake.calls[-1][1]["stock_num"] == 7 and fake.calls[-1][1]["incremental"] is False
    sku = fake.products[int(published.external_product_id)][1]
    assert (sku["price"], sku["stock_num"]) == (2050, 7)

    with pytest.raises(UnknownProductError, match="商品不存在"):
        await shop.update_price_stock(PriceStockUpdate("3600000000000000999", "DY-500", stock=1))
    with pytest.raises(UnknownSkuError, match="no SKU 'DY-999'"):
        await shop.update_price_stock(
            PriceStockUpdate(published.external_product_id, "DY-999", stock=1)
        )
    with pytest.raises(ListingError, match="platform_fields category_leaf_id, freight_id"):
        await shop.publish_listing(
            Listing(
                "鱼",
                "d",
                (Sku("X", 1, 1),),
                image_urls=("https://cdn.example/a.jpg",),
                platform_fields={"mobile": "1"},
            )
        )
    with pytest.raises(ListingError, match="CNY"):
        await shop.update_price_stock(PriceStockUpdate("1", "X", price_fen=1, currency="USD"))


def test_parses_a_documented_order_paid_push(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://openapi-fxg.jinritemai.com", http_session, clock)
    delivery = shop.parse_webhook(event_headers(PUSH), PUSH)
    assert (delivery.delivery_id, delivery.topic) == ("7029316874412345678", "101")
    (order,) = delivery.orders
    assert (order.platform_order_id, order.status) == ("4781320682406083640", OrderStatus.PAID)
    assert (order.amount_fen, order.currency, order.complete) == (5990, "CNY", False)
    assert order.placed_at.isoformat() == "2021-08-26T23:50:18+00:00"
    hmac_headers = event_headers(PUSH, **{"sign-method": "hmac-sha256"})
    with pytest.raises(WebhookSignatureError):  # an MD5 sign labelled hmac-sha256 fails
        shop.parse_webhook(hmac_headers, PUSH)


def test_rejects_bad_signatures_and_malformed_pushes(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://openapi-fxg.jinritemai.com", http_session, clock)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        shop.parse_webhook(event_headers(PUSH, **{"event-sign": "0" * 32}), PUSH)
    with pytest.raises(WebhookSignatureError, match="missing event-sign"):
        shop.parse_webhook({"app-id": APP_KEY}, PUSH)
    with pytest.raises(WebhookSignatureError, match="another app"):
        shop.parse_webhook(event_headers(PUSH, **{"app-id": "1"}), PUSH)
    bad_data = json.dumps([{"tag": "101", "msg_id": "1", "data": "{oops"}]).encode()
    no_amount = json.dumps([{"tag": "101", "msg_id": "2", "data": '{"p_id": 1}'}]).encode()
    for body in (b"{}", b"[]", b"not json", b'[{"tag": "101"}]', bad_data, no_amount):
        with pytest.raises(WebhookPayloadError, match=r"douyin (push|webhook)"):
            shop.parse_webhook(event_headers(body), body)


async def test_a_replayed_push_is_counted_once(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://openapi-fxg.jinritemai.com", http_session, clock)
    pushes = [(event_headers(PUSH), PUSH)] * 2
    assert len(await stored_orders(shop, MemoryDeliveryLedger(), pushes)) == 1


async def test_credentials_never_reach_logs(
    serve: Serve,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    fake = FakeDouyin(clock, orders=[shop_order(1, int(clock.time()) - 10)], rate_limited=1)
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    assert_not_leaked(debug_logs, (APP_SECRET, fake.token or "unset"))
