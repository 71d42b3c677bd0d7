"""Flash sale: 1,000 concurrent orders for 100 units, through the real webhook endpoint.

Each order is a separately signed Shopify delivery for one unit, all sent at once over their
own connections. Exactly 100 take stock and 900 are refused; stock ends at 0, never below.
Runs on SQLite and on PostgreSQL (see livebase/orders/intake.py for why each is safe).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
from api_support import World
from orders_support import shopify, stage
from sqlalchemy import select

from livebase.api.state import DB_SESSIONS
from livebase.db.models import Order, Product, ProductSku, StockState

BUYERS, UNITS = 1000, 100


async def test_1000_concurrent_orders_for_100_units(world: World) -> None:
    st = await stage(world, "shopify", stock=UNITS)
    deliveries = [shopify(st.sale(str(9_000_000 + n), buyer=f"b{n}")) for n in range(BUYERS)]
    url = str(world.api.client.make_url(st.webhook))
    # No connection limit: every order is in flight at the same time.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def send(headers: dict[str, str], body: bytes) -> int:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(send(h, b) for h, b in deliveries))
    assert Counter(statuses) == {200: BUYERS}
    async with world.api.app[DB_SESSIONS]() as db:
        states = Counter(await db.scalars(select(Order.stock_state)))
        sku_stock = await db.scalar(select(ProductSku.stock).where(ProductSku.id.is_not(None)))
        product_stock = await db.scalar(select(Product.stock).where(Product.id == st.product_id))
    assert states == {StockState.TAKEN: UNITS, StockState.REFUSED: BUYERS - UNITS}
    assert (sku_stock, product_stock) == (0, 0)
