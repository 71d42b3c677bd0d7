"""Shop orders in the API process: adapters for connected shops, and the intake transaction.

``ingest`` is the one way orders get in (webhooks and pulls): it runs the intake in a
transaction of its own, retried when a concurrent delivery of the same new order won the
insert, and only after the commit tells analytics (``order.paid``, ``order.refunded`` on the
``analytics`` stream, in the shapes of ``analytics.schemas``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.constants import STREAM_ANALYTICS
from analytics.schemas import OrderPaidV1, OrderRefundedV1, to_bus_event
from livebase.api.state import BUS, DB_SESSIONS, SETTINGS
from livebase.bus import Event
from livebase.db.models import Base, OrderStatus, ShopConnection
from livebase.errors import ApiError
from livebase.orders import (
    Delivery,
    IncomingLine,
    IncomingOrder,
    IntakeResult,
    OrderNews,
    OrderWriter,
    Shop,
    Vault,
    VaultError,
)
from storefront_adapters import Credentials, PlatformOrder, StorefrontAdapter, get_adapter

log = logging.getLogger("livebase.orders")
INSERT_ATTEMPTS = 3
CONNECTION_TTL = 2.0


class PlatformUnavailable(ApiError):
    """The shop's platform could not be reached or refused us; nothing was stored."""

    status = 502
    code = "platform_error"


class CredentialsUnreadable(ApiError):
    status = 503
    code = "credentials_unreadable"


class ShopAdapters:
    """Connections as webhooks need them, and one adapter per connection.

    Decrypting credentials and building an adapter per delivery would cost more than checking
    the delivery's signature, so adapters are kept for as long as the connection row is
    unchanged. The rows themselves are kept for ``CONNECTION_TTL`` seconds: a change made
    through this process applies at once (``forget``), one made through another process
    within that time.
    """

    def __init__(self, vault: Vault, http: aiohttp.ClientSession) -> None:
        self.vault = vault
        self.http = http
        self._cache: dict[int, tuple[datetime, StorefrontAdapter]] = {}
        self._rows: dict[int, tuple[float, ShopConnection, str]] = {}

    async def connection(
        self, sessions: async_sessionmaker[AsyncSession], connection_id: int
    ) -> tuple[ShopConnection, str] | None:
        """The connection and its base's slug, or None when there is no such connection."""
        now = time.monotonic()
        cached = self._rows.get(connection_id)
        if cached is not None and now - cached[0] < CONNECTION_TTL:
            return cached[1], cached[2]
        async with sessions() as db:
            row = (
                await db.execute(
                    select(ShopConnection, Base.slug)
                    .join(Base, Base.id == ShopConnection.base_id)
                    .where(ShopConnection.id == connection_id)
                )
            ).first()
        if row is None:
            self._rows.pop(connection_id, None)
            return None
        self._rows[connection_id] = (now, row[0], row[1])
        return row[0], row[1]

    def __repr__(self) -> str:
        return f"<ShopAdapters {len(self._cache)} cached>"

    def credentials(self, conn: ShopConnection) -> Credentials:
        try:
            return Credentials(**self.vault.open(conn.credentials_encrypted))
        except VaultError as exc:
            raise CredentialsUnreadable(
                f"shop connection {conn.id}: {exc}; enter its credentials again"
            ) from exc

    def adapter(self, conn: ShopConnection) -> StorefrontAdapter:
        cached = self._cache.get(conn.id)
        if cached is not None and cached[0] == conn.updated_at:
            return cached[1]
        adapter = get_adapter(
            conn.platform,
            self.credentials(conn),
            self.http,
            conn.api_base_url,
            options=dict(conn.options or {}),
        )
        self._cache[conn.id] = (conn.updated_at, adapter)
        return adapter

    def forget(self, connection_id: int) -> None:
        self._cache.pop(connection_id, None)
        self._rows.pop(connection_id, None)


SHOPS = web.AppKey("shop_adapters", ShopAdapters)
ORDER_WRITER = web.AppKey("order_writer", OrderWriter)


async def shops_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the shop adapters (vault, HTTP client) and the order writer's task.

    In ``app.cleanup_ctx``; the writer stops last, after the server has stopped taking
    requests, so no delivery is left waiting for it.
    """
    settings = app[SETTINGS]
    vault = Vault.from_settings(settings.secret_key.get_secret_value(), settings.data_dir)
    timeout = aiohttp.ClientTimeout(total=30, connect=10)
    bus = app[BUS]

    async def announce(news: list[OrderNews]) -> None:
        await bus.publish_many(STREAM_ANALYTICS, [analytics_event(n) for n in news])

    window = timedelta(minutes=settings.attribution_window_minutes)
    kept = timedelta(days=settings.webhook_receipt_days)
    writer = OrderWriter(app[DB_SESSIONS], window, announce, receipts_kept=kept)
    async with aiohttp.ClientSession(timeout=timeout) as http, writer.running("order-writer"):
        app[SHOPS] = ShopAdapters(vault, http)
        app[ORDER_WRITER] = writer
        yield


def to_incoming(order: PlatformOrder) -> IncomingOrder:
    return IncomingOrder(
        platform=order.platform,
        platform_order_id=order.platform_order_id,
        status=OrderStatus(order.status.value),
        placed_at=order.placed_at,
        currency=order.currency,
        amount_fen=order.amount_fen,
        lines=tuple(
            IncomingLine(
                external_product_id=line.external_product_id,
                external_sku_id=line.external_sku_id,
                sku_code=line.sku_code,
                quantity=line.quantity,
                amount_fen=line.amount_fen,
            )
            for line in order.line_items
        ),
        buyer_ref=order.buyer_ref,
        tracking=dict(order.tracking),
    )


def analytics_event(news: OrderNews) -> Event:
    """The bus event analytics expects; ids are stable, so a re-publish is counted once."""
    common = {
        "occurred_at": news.at,
        "base": news.base_slug,
        "room": news.room_slug,
        "session_id": news.session_id,
        "order_id": news.platform_order_id,
        "platform": news.platform,
        "amount_fen": news.amount_fen,
        "currency": news.currency,
    }
    key = f"{news.platform}:{news.platform_order_id}"
    if news.kind == "paid":
        return to_bus_event(
            OrderPaidV1(
                **common,
                event_id=f"order.paid:{key}",
                # Platforms do not always name the buyer; one order then stands for one buyer.
                buyer_id=news.buyer_ref or f"order:{news.platform_order_id}",
                product_id=news.product_id,
                quantity=news.quantity,
            )
        )
    return to_bus_event(
        OrderRefundedV1(**common, event_id=f"order.refunded:{key}", refund_id=f"{key}:refund")
    )


async def ingest(
    app: web.Application,
    shop: Shop,
    orders: Sequence[PlatformOrder],
    *,
    delivery_id: str | None = None,
    pulled: bool = False,
    pull_cursor: str | None = None,
) -> IntakeResult | None:
    """Store ``orders`` through the order writer; None when ``delivery_id`` was taken in before.

    Returns once they are committed (with a pull's new cursor, stored with the orders it
    covers) and analytics has been told.
    """
    delivery = Delivery(
        shop,
        tuple(to_incoming(o) for o in orders),
        delivery_id=delivery_id,
        pulled=pulled,
        pull_cursor=pull_cursor,
    )
    return await app[ORDER_WRITER].submit(delivery)
