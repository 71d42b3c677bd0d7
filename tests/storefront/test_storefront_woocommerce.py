"""WooCommerce adapter against a local fake of the REST API v3 (see fake_woocommerce.py)."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp
import pytest
from fake_woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce, order
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
from storefront_adapters.signatures import woocommerce_webhook_signature
from storefront_adapters.woocommerce import WooCommerceAdapter

WEBHOOK_SECRET = "wc-webhook-secret-31f5"
# The order JSON from the WooCommerce REST API docs' order example (id 727), trimmed, with
# an order-attribution landing page and an lb_host meta entry added.
SAMPLE = (Path(__file__).parent / "payloads" / "woocommerce_order.json").read_bytes()


def adapter(
    base_url: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
    *,
    secret: str = CONSUMER_SECRET,
) -> WooCommerceAdapter:
    creds = Credentials(key=CONSUMER_KEY, secret=secret, webhook_secret=WEBHOOK_SECRET)
    return WooCommerceAdapter(creds, session, base_url, clock=clock, rng=random.Random(3))


def headers(body: bytes, **extra: str) -> dict[str, str]:
    return {
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "5b1e9b1e0c7a1",
        "X-WC-Webhook-Source": "https://shop/",
        "X-WC-Webhook-Signature": woocommerce_webhook_signature(WEBHOOK_SECRET, body),
        **extra,
    }


async def test_pulls_every_page_named_by_x_wp_totalpages(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    rows = [order(n, f"2025-03-01T0{n}:00:00") for n in range(1, 6)]
    rows.append(order(6, "2025-03-01T06:00:00", status="pending"))
    fake = FakeWooCommerce(orders=rows)
    shop = adapter(await serve(fake.app()), http_session, clock)
    shop.page_size = 2
    orders, cursor = await collect_orders(shop, None)
    assert [o.platform_order_id for o in orders] == ["1", "2", "3", "4", "5"]
    assert len(fake.requests) == 3  # 6 orders, 2 per page: X-WP-TotalPages = 3
    assert (orders[0].amount_fen, orders[0].currency, orders[0].buyer_ref) == (125, "CNY", "41")
    assert dict(orders[0].tracking) == {"lb_session": "s1"}
    fake.orders.append(order(7, "2025-03-01T07:00:00"))
    later, _ = await collect_orders(shop, cursor)
    # Resuming re-reads from one second before the newest modification seen (the pending
    # order 6 is skipped again), so nothing saved within that second can be missed.
    assert [o.platform_order_id for o in later] == ["7"]


async def test_resume_rereads_only_the_boundary_second(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeWooCommerce(
        orders=[order(1, "2025-03-01T01:00:00"), order(2, "2025-03-01T02:00:00")]
    )
    shop = adapter(await serve(fake.app()), http_session, clock)
    _, cursor = await collect_orders(shop, None)
    fake.orders.append(order(3, "2025-03-01T02:00:00"))  # saved later in the same second
    later, _ = await collect_orders(shop, cursor)
    assert [o.platform_order_id for o in later] == ["2", "3"]


async def test_429_is_retried_after_retry_after(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeWooCommerce(orders=[order(1, "2025-03-01T01:00:00")], rate_limited=2)
    shop = adapter(await serve(fake.app()), http_session, clock)
    page = await shop.pull_orders(None)
    assert [o.platform_order_id for o in page.orders] == ["1"]
    assert len(fake.requests) == 3 and shop.http.attempts == 3
    assert clock.sleeps == [2.0, 2.0]


async def test_wrong_keys_are_a_clear_authentication_error(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeWooCommerce()
    shop = adapter(await serve(fake.app()), http_session, clock, secret="cs_wrong_marker")
    with pytest.raises(AuthenticationError, match="Sorry, you cannot list resources") as info:
        await shop.pull_orders(None)
    assert (info.value.status, info.value.code) == (401, "woocommerce_rest_cannot_view")
    assert "cs_wrong_marker" not in str(info.value)


async def test_publishes_and_updates_variable_and_simple_products(
    serve: Serve, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    fake = FakeWooCommerce()
    shop = adapter(await serve(fake.app()), http_session, clock)
    listing = Listing(
        "红衫鱼干",
        "Dried golden threadfin",
        (Sku("GT-250", 1250, 30, label="250g"), Sku("GT-500", 2399, 12, label="500g")),
        title_en="Dried golden threadfin",
        image_urls=("https://cdn.example/gt.jpg",),
    )
    published = await shop.publish_listing(listing)
    (_, _, product), (_, _, batch) = fake.writes
    assert product["type"] == "variable" and product["images"] == [
        {"src": "https://cdn.example/gt.jpg"}
    ]
    assert [(v["sku"], v["regular_price"], v["stock_quantity"]) for v in batch["create"]] == [
        ("GT-250", "12.50", 30),
        ("GT-500", "23.99", 12),
    ]
    await shop.update_price_stock(
        PriceStockUpdate(published.external_product_id, "GT-500", price_fen=2050, stock=7)
    )
    method, path, body = fake.writes[-1]
    assert (method, body) == (
        "PUT",
        {"regular_price": "20.50", "manage_stock": True, "stock_quantity": 7},
    )
    assert path.endswith(f"/variations/{published.sku_ids['GT-500']}")

    simple = await shop.publish_listing(Listing("墨鱼", "Cuttlefish", (Sku("CF-1", 999, 5),)))
    assert fake.writes[-1][2]["regular_price"] == "9.99"
    await shop.update_price_stock(PriceStockUpdate(simple.external_product_id, "CF-1", stock=0))
    assert fake.writes[-1][2] == {"manage_stock": True, "stock_quantity": 0}

    with pytest.raises(UnknownProductError, match="Invalid ID") as info:
        await shop.update_price_stock(PriceStockUpdate("999", "CF-1", stock=1))
    assert info.value.code == "woocommerce_rest_product_invalid_id"
    with pytest.raises(UnknownSkuError, match="no SKU 'GT-999'"):
        await shop.update_price_stock(
            PriceStockUpdate(published.external_product_id, "GT-999", stock=1)
        )
    with pytest.raises(UnknownSkuError, match="not 'CF-2'"):
        await shop.update_price_stock(PriceStockUpdate(simple.external_product_id, "CF-2", stock=1))


def test_parses_the_documented_order_example(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://shop.example", http_session, clock)
    delivery = shop.parse_webhook(headers(SAMPLE), SAMPLE)
    assert delivery.delivery_id == "12:order.updated:727:2017-03-22T19:28:08"
    (parsed,) = delivery.orders
    assert (parsed.platform_order_id, parsed.status) == ("727", OrderStatus.PAID)
    assert (parsed.currency, parsed.amount_fen, parsed.buyer_ref) == ("USD", 2935, None)
    assert parsed.placed_at.isoformat() == "2017-03-22T19:28:02+00:00"
    assert [
        (li.external_product_id, li.external_sku_id, li.quantity, li.amount_fen)
        for li in parsed.line_items
    ] == [("93", "93", 2, 600), ("22", "23", 1, 1200)]
    assert dict(parsed.tracking) == {
        "lb_session": "ls-88",
        "lb_product": "lp-3",
        "lb_host": "host-shanwei-02",
    }


def test_rejects_bad_signatures_and_malformed_bodies(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://shop.example", http_session, clock)
    forged = headers(
        SAMPLE, **{"X-WC-Webhook-Signature": woocommerce_webhook_signature("x", SAMPLE)}
    )
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        shop.parse_webhook(forged, SAMPLE)
    unsigned = {k: v for k, v in headers(SAMPLE).items() if k != "X-WC-Webhook-Signature"}
    with pytest.raises(WebhookSignatureError, match="missing X-WC-Webhook-Signature"):
        shop.parse_webhook(unsigned, SAMPLE)
    for body in (b"[1, 2]", b"{broken", b'{"id": 5, "status": "processing", "total": "1"}'):
        with pytest.raises(WebhookPayloadError, match="woocommerce webhook"):
            shop.parse_webhook(headers(body), body)
    negative = SAMPLE.replace(b'"total":"29.35"', b'"total":"-29.35"')
    with pytest.raises(WebhookPayloadError, match="negative"):
        shop.parse_webhook(headers(negative), negative)


def test_the_creation_ping_is_a_handshake_not_a_delivery(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://shop.example", http_session, clock)
    assert shop.is_handshake(
        {"Content-Type": "application/x-www-form-urlencoded"}, b"webhook_id=12"
    )
    assert not shop.is_handshake(headers(SAMPLE), SAMPLE)
    with pytest.raises(WebhookSignatureError):
        shop.parse_webhook({}, b"webhook_id=12")


async def test_a_resent_event_is_counted_once(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    shop = adapter("https://shop.example", http_session, clock)
    # WooCommerce makes a new X-WC-Webhook-Delivery-ID for every send of the same event.
    sends = [
        (headers(SAMPLE, **{"X-WC-Webhook-Delivery-ID": delivery_id}), SAMPLE)
        for delivery_id in ("aaa111", "aaa111", "bbb222")
    ]
    stored = await stored_orders(shop, MemoryDeliveryLedger(), sends)
    assert [o.platform_order_id for o in stored] == ["727"]


async def test_credentials_never_reach_logs(
    serve: Serve,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    fake = FakeWooCommerce(orders=[order(1, "2025-03-01T01:00:00")], rate_limited=1)
    shop = adapter(await serve(fake.app()), http_session, clock)
    await shop.pull_orders(None)
    with pytest.raises(AuthenticationError):
        await adapter(
            await serve(FakeWooCommerce().app()), http_session, clock, secret="cs_leak_marker"
        ).pull_orders(None)
    assert_not_leaked(debug_logs, (CONSUMER_KEY, CONSUMER_SECRET, WEBHOOK_SECRET, "cs_leak_marker"))


async def test_a_listing_in_another_currency_than_the_store_is_refused(
    http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    creds = Credentials(key=CONSUMER_KEY, secret=CONSUMER_SECRET)
    usd = {"currency": "USD"}
    shop = WooCommerceAdapter(creds, http_session, "https://shop.example", options=usd, clock=clock)
    refused = "woocommerce store sells in USD; the listing is priced in CNY"
    with pytest.raises(ListingError, match=refused):
        await shop.publish_listing(Listing("鱼干", "d", (Sku("A-1", 1250, 1),)))
    with pytest.raises(ListingError, match=refused):
        await shop.update_price_stock(PriceStockUpdate("727", "A-1", stock=1))
