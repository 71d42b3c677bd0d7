"""``POST /webhooks/{platform}/{connection_id}``: order deliveries from connected shops.

No bearer token: the platform's signature over the raw body is the authentication, checked by
the shop's adapter with the connection's stored secret. The answers:

- 200 with the adapter's ``webhook_ack`` for a delivery taken in, for a replay (taken in once,
  by its delivery id, in the transaction of its orders) and for WooCommerce's unsigned
  creation ping (nothing stored);
- 401 ``bad_signature`` for a missing or wrong signature, 400 ``malformed_webhook`` for a signed
  body that cannot be read, 404 for an unknown connection, 409 ``shop_disabled``;
- 422 ``unknown_product`` / ``unknown_sku`` when a line is not mapped to our SKUs;
- 502 ``platform_error`` when a Douyin push (which names an order but not its lines) cannot be
  completed from the platform's order API.

Every refusal stores nothing, not even the delivery id, so the platform's retry of the same
delivery is taken in once the cause is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import select

from livebase.api.orders import SHOPS, PlatformUnavailable, ingest
from livebase.api.routing import parse_id
from livebase.api.state import DB_SESSIONS
from livebase.auth import Unauthenticated
from livebase.db.models import Order, ShopConnection
from livebase.errors import BadRequest, Conflict, NotFound
from livebase.orders import Shop
from storefront_adapters import (
    PlatformOrder,
    StorefrontAdapter,
    StorefrontError,
    WebhookPayloadError,
    WebhookSignatureError,
    collect_orders,
)

log = logging.getLogger("livebase.orders")
PATH = "/webhooks/{platform}/{connection_id}"


async def _connection(request: web.Request) -> tuple[ShopConnection, Shop]:
    platform, raw_id = request.match_info["platform"], request.match_info["connection_id"]
    connection_id = parse_id(raw_id)
    found = None
    if connection_id is not None:
        found = await request.app[SHOPS].connection(request.app[DB_SESSIONS], connection_id)
    if found is None or found[0].platform != platform:
        raise NotFound(f"no {platform} shop connection {raw_id!r}")
    conn, base_slug = found
    return conn, Shop(conn.id, conn.base_id, base_slug)


async def _complete(
    request: web.Request,
    adapter: StorefrontAdapter,
    conn: ShopConnection,
    orders: Sequence[PlatformOrder],
) -> list[PlatformOrder]:
    """Replace summary-only orders (Douyin pushes) we do not hold yet by the platform's own."""
    partial = {o.platform_order_id for o in orders if not o.complete}
    if not partial:
        return list(orders)
    async with request.app[DB_SESSIONS]() as db:
        known = set(
            await db.scalars(
                select(Order.platform_order_id).where(
                    Order.platform == conn.platform, Order.platform_order_id.in_(partial)
                )
            )
        )
    missing = partial - known
    fetched: dict[str, PlatformOrder] = {}
    if missing:
        try:
            pulled, _ = await collect_orders(adapter, conn.pull_cursor)
        except StorefrontError as exc:
            raise PlatformUnavailable(
                f"could not fetch the pushed order from {conn.platform}: {exc}"
            ) from exc
        fetched = {o.platform_order_id: o for o in pulled if o.platform_order_id in missing}
    absent = sorted(missing - fetched.keys())
    if absent:
        raise PlatformUnavailable(
            f"{conn.platform} does not list order(s) {', '.join(absent)} yet; "
            "the platform's retry of this push will be taken in"
        )
    return [fetched.get(o.platform_order_id, o) for o in orders]


async def receive(request: web.Request) -> web.Response:
    conn, shop = await _connection(request)
    try:
        raw = await request.read()
    except ConnectionResetError as exc:  # the sender hung up mid-body; it will send again
        raise BadRequest("the body was cut short", code="malformed_webhook") from exc
    adapter = request.app[SHOPS].adapter(conn)
    if adapter.is_handshake(request.headers, raw):
        return web.Response(status=200)
    try:
        delivery = adapter.parse_webhook(request.headers, raw)
    except WebhookSignatureError as exc:
        raise Unauthenticated(str(exc), code="bad_signature") from exc
    except WebhookPayloadError as exc:
        raise BadRequest(str(exc), code="malformed_webhook") from exc
    if not conn.enabled:
        raise Conflict(f"shop connection {conn.id} is disabled", code="shop_disabled")
    orders = await _complete(request, adapter, conn, delivery.orders)
    result = await ingest(request.app, shop, orders, delivery_id=delivery.delivery_id)
    if result is None:
        log.info("%s delivery on connection %d was a replay", conn.platform, conn.id)
    ack = adapter.webhook_ack
    return web.Response(
        body=ack, status=200, content_type="application/json" if ack else "text/plain"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, receive)
