"""Shopify adapter against a local fake of the Admin GraphQL API (see fake_shopify.py)."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp
import pytest
from fake_shopify import TOKEN, FakeShopify, order_node
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
    ThrottledError,
    UnknownProductError,
    UnknownSkuError,
    WebhookPayloadError,
    WebhookSignatureError,
    accept_webhook,
    collect_orders,
)
from storefront_adapters.shopify import ShopifyAdapter
from storefront_adapters.signatures import shopify_webhook_signature

CLIENT_SECRET = "shpss_fake_client_secret_77c1"
# Shopify's sample orders/create payload (the "Send test notification" body documented with
# the webhook topics), trimmed, with two lb_* tracking values added.
SAMPLE = (Path(__file__).parent / "payloads" / "shopify_orders_create.json").read_bytes()


def adapter(
    base_url: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    *,
    token: str = TOKEN,
    retry: RetryPolicy | None = None,
) -> ShopifyAdapter:
    creds = Credentials(secret=CLIENT_SECRET, access_token=token)
    return ShopifyAdapter(
        creds,
        session,
        base_url,
        options={"location_id": "6884556842"},
        clock=clock,
        retry=retry,
        rng=random.Random(7),
    )


def headers(body: bytes, **extra: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-6b0e-4c5d",
        "X-Shopify-Hmac-Sha256": shopify_webhook_signature(CLIENT_SECRET, body),
        **extra,
    }


async def test_pulls_every_order_across_pages_and_resumes_from_the_cursor(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    nodes = [order_node(n) for n in range(1, 6)]
    nodes += [
        order_node(6, status="PENDING"),
        order_node(7, status="VOIDED"),
        order_node(8, status="REFUNDED"),
    ]
    fake = FakeShopify(clock, orders=nodes)
    shop = adapter(await serve(fake.app()), http_session, clock)
    shop.page_size = 3
    orders, cursor = await collect_orders(shop, None)
    assert [o.platform_order_id for o in orders] == [
        "5001",
        "5002",
        "5003",
        "5004",
        "5005",
        "5007",
        "5008",
    ]  # 5006 is unpaid
    assert [op for op, _ in fake.accepted] == ["LivebaseOrders"] * 3
    first = orders[0]
    assert (first.amount_fen, first.currency, first.status) == (150, "USD", OrderStatus.PAID)
    assert first.placed_at.isoformat() == "2025-01-02T00:00:00+00:00"
    assert first.line_items[0].amount_fen == 150 and first.line_items[0].sku_code == "SKU-1"
    assert dict(first.tracking) == {"lb_session": "s1", "lb_host": "host-1"}
    assert orders[5].status is OrderStatus.CANCELLED and orders[6].status is OrderStatus.REFUNDED
    fake.orders.append(order_node(9))
    later, _ = await collect_orders(shop, cursor)
    assert [o.platform_order_id for o in later] == ["5009"]


async def test_waits_for_the_bucket_before_a_query_that_would_not_fit(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeShopify(
        clock, orders=[order_node(n) for n in range(1, 4)], bucket=100, restore_rate=50
    )
    shop = adapter(await serve(fake.app()), http_session, clock)
    shop.page_size = 1
    orders, _ = await collect_orders(shop, None)
    assert len(orders) == 3
    # Each query requests 60 of a 100-point bucket restoring 50/s (+ a 10 ms margin):
    # after the first, 40 are left: wait (60 - 40) / 50 = 0.4 s; that refills to 60.5, the
    # second query leaves 0.5: wait (60 - 0.5) / 50 = 1.19 s. No THROTTLED reply was needed.
    assert fake.throttled == 0
    assert clock.sleeps == pytest.approx([0.41, 1.2])


async def test_a_throttled_query_is_retried_after_the_documented_wait(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeShopify(clock, orders=[order_node(1)], available=10, restore_rate=50)
    shop = adapter(await serve(fake.app()), http_session, clock)
    page = await shop.pull_orders(None)
    assert [o.platform_order_id for o in page.orders] == ["5001"]
    assert fake.throttled == 1 and shop.http.attempts == 2
    assert clock.sleeps == pytest.approx([(60 - 10) / 50 + 0.01])


async def test_throttling_that_never_ends_gives_up_after_bounded_attempts(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeShopify(clock, orders=[order_node(1)], available=0, restore_rate=0)
    shop = adapter(
        await serve(fake.app()),
        http_session,
        clock,
        retry=RetryPolicy(max_attempts=3, base_delay=1.0, jitter=0.0),
    )
    with pytest.raises(ThrottledError, match="still throttled after 3 attempt"):
        await shop.pull_orders(None)
    assert fake.throttled == 3 and shop.http.attempts == 3
    assert clock.sleeps == [1.0, 2.0]  # exponential backoff when no restore rate is given


async def test_a_wrong_token_is_a_clear_authentication_error(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeShopify(clock)
    shop = adapter(await serve(fake.app()), http_session, clock, token="shpat_wrong")
    with pytest.raises(AuthenticationError, match="Invalid API key or access token") as info:
        await shop.pull_orders(None)
    assert info.value.status == 401 and info.value.code == "unauthorized"
    assert "shpat_wrong" not in str(info.value)


async def test_publishes_a_listing_and_updates_price_and_stock(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeShopify(clock)
    shop = adapter(await serve(fake.app()), http_session, clock)
    listing = Listing(
        "汕尾鱿鱼干",
        "<p>Sun-dried squid from Shanwei</p>",
        (Sku("SQ-250", 1250, 40, "USD", "250g"), Sku("SQ-500", 1999, 25, "USD", "500g")),
        title_en="Shanwei dried squid",
        image_urls=("https://cdn.example/squid.jpg",),
    )
    published = await shop.publish_listing(listing)
    product_input = fake.accepted[0][1]["input"]
    assert product_input["title"] == "Shanwei dried squid"
    assert [v["price"] for v in product_input["variants"]] == ["12.50", "19.99"]
    assert [v["inventoryQuantities"][0]["quantity"] for v in product_input["variants"]] == [40, 25]
    assert product_input["variants"][0]["inventoryQuantities"][0]["locationId"] == (
        "gid://shopify/Location/6884556842"
    )
    assert set(published.sku_ids) == {"SQ-250", "SQ-500"}

    await shop.update_price_stock(
        PriceStockUpdate(
            published.external_product_id, "SQ-500", price_fen=2050, stock=7, currency="USD"
        )
    )
    variant = fake.products[f"gid://shopify/Product/{published.external_product_id}"][1]
    assert variant["price"] == "20.50"
    assert fake.stock[variant["inventoryItem"]["id"]] == 7

    with pytest.raises(UnknownProductError, match="no product 404"):
        await shop.update_price_stock(PriceStockUpdate("404", "SQ-500", stock=1, currency="USD"))
    with pytest.raises(UnknownSkuError, match="no SKU 'SQ-999'"):
        await shop.update_price_stock(
            PriceStockUpdate(published.external_product_id, "SQ-999", stock=1, currency="USD")
        )
    sent = len(fake.accepted)
    with pytest.raises(ListingError, match="negative"):
        PriceStockUpdate(published.external_product_id, "SQ-500", price_fen=-1)
    assert len(fake.accepted) == sent


def test_parses_the_documented_sample_order_webhook(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://fish.myshopify.com", http_session, clock)
    delivery = shop.parse_webhook(headers(SAMPLE), SAMPLE)
    assert (delivery.delivery_id, delivery.topic) == ("b54557e4-6b0e-4c5d", "orders/create")
    (order,) = delivery.orders
    assert order.platform_order_id == "820982911946154508"
    assert (order.status, order.currency, order.amount_fen) == (OrderStatus.PAID, "USD", 39800)
    assert order.placed_at.isoformat() == "2020-03-27T17:01:19+00:00"
    assert [
        (li.external_product_id, li.external_sku_id, li.sku_code, li.amount_fen)
        for li in order.line_items
    ] == [
        ("632910392", "808950810", "IPOD2008PINK", 19900),
        ("632910392", "49148385", "IPOD2008RED", 18900),
    ]
    assert dict(order.tracking) == {
        "lb_session": "ls-2031",
        "lb_product": "lp-77",
        "lb_host": "host-shanwei-07",
    }
    assert order.buyer_ref == "115310627314723954"


def test_rejects_bad_signatures_and_malformed_bodies(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://fish.myshopify.com", http_session, clock)
    wrong = headers(SAMPLE, **{"X-Shopify-Hmac-Sha256": shopify_webhook_signature("x", SAMPLE)})
    with pytest.raises(WebhookSignatureError, match="does not match"):
        shop.parse_webhook(wrong, SAMPLE)
    missing = {k: v for k, v in headers(SAMPLE).items() if k != "X-Shopify-Hmac-Sha256"}
    with pytest.raises(WebhookSignatureError, match="missing X-Shopify-Hmac-Sha256"):
        shop.parse_webhook(missing, SAMPLE)
    tampered = SAMPLE.replace(b'"398.00"', b'"1.00"')
    with pytest.raises(WebhookSignatureError):
        shop.parse_webhook(headers(SAMPLE), tampered)
    for body in (b"{not json", b'{"id": 1, "financial_status": "paid"}', b""):
        with pytest.raises(WebhookPayloadError, match="shopify webhook"):
            shop.parse_webhook(headers(body), body)
    bad_money = SAMPLE.replace(b'"398.00"', b'"398.005"')
    with pytest.raises(WebhookPayloadError, match="more than 2 decimal places"):
        shop.parse_webhook(headers(bad_money), bad_money)
    other = shop.parse_webhook(headers(SAMPLE, **{"X-Shopify-Topic": "products/update"}), SAMPLE)
    assert other.orders == ()


async def test_a_replayed_delivery_is_stored_once_and_forgeries_not_at_all(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://fish.myshopify.com", http_session, clock)
    ledger = MemoryDeliveryLedger()
    forged = headers(SAMPLE, **{"X-Shopify-Hmac-Sha256": "AAAA"})
    with pytest.raises(WebhookSignatureError):
        await accept_webhook(shop, ledger, forged, SAMPLE)
    stored = await stored_orders(shop, ledger, [(headers(SAMPLE), SAMPLE)] * 3)
    assert [o.platform_order_id for o in stored] == ["820982911946154508"]


async def test_credentials_never_reach_logs_or_errors(
    serve: Serve,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    fake = FakeShopify(clock, orders=[order_node(1)], available=10)
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    bad = adapter(
        await serve(FakeShopify(clock).app()), http_session, clock, token="shpat_leaky_marker"
    )
    with pytest.raises(AuthenticationError) as info:
        await bad.pull_orders(None)
    with pytest.raises(WebhookSignatureError) as sig_info:
        shop.parse_webhook(headers(SAMPLE, **{"X-Shopify-Hmac-Sha256": "AAAA"}), SAMPLE)
    secrets = (TOKEN, CLIENT_SECRET, "shpat_leaky_marker")
    assert_not_leaked(debug_logs, secrets, str(info.value), str(sig_info.value), repr(shop))


async def test_a_listing_in_another_currency_than_the_store_is_refused(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    creds = Credentials(secret=CLIENT_SECRET, access_token=TOKEN)
    options = {"location_id": "6884556842", "currency": "USD"}
    url = "https://fish.myshopify.com"
    shop = ShopifyAdapter(creds, http_session, url, options=options, clock=clock)
    refused = "shopify store sells in USD; the listing is priced in CNY"
    with pytest.raises(ListingError, match=refused):
        await shop.publish_listing(Listing("鱼干", "d", (Sku("A-1", 1250, 1),)))
