"""Many deliveries in one intake transaction: each is decided as if it had been alone.

The webhook tests send deliveries one at a time, so each batch holds one. Here one batch holds
a creation and its refund, a delivery and its replay, a refused delivery between accepted
ones, and more orders than the stock covers, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_support import World
from orders_support import stage
from sqlalchemy import func, select

from livebase.api.orders import ORDER_WRITER
from livebase.api.state import DB_SESSIONS
from livebase.db.models import Order, OrderStatus, ProductSku, StockState, WebhookReceipt
from livebase.errors import ValidationFailed
from livebase.orders import (
    Delivery,
    IncomingLine,
    IncomingOrder,
    IntakeResult,
    Shop,
    apply_batch,
)

WINDOW = timedelta(minutes=30)


def order(
    order_id: str, product: str, sku: str, quantity: int = 1, status: str = "paid"
) -> IncomingOrder:
    return IncomingOrder(
        platform="shopify",
        platform_order_id=order_id,
        status=OrderStatus(status),
        placed_at=datetime.now(UTC) + timedelta(seconds=1),
        currency="CNY",
        amount_fen=1990 * quantity,
        lines=(IncomingLine(product, sku, None, quantity, 1990 * quantity),),
    )


async def test_one_batch_decides_each_delivery_in_order(world: World) -> None:
    st = await stage(world, "shopify", stock=5)
    shop = Shop(st.shop_id, world.ids["haifeng.base"], "haifeng")
    p, s = st.ext_product, st.ext_sku
    deliveries = [
        Delivery(shop, (order("A", p, s, 2),), delivery_id="d-a"),
        Delivery(shop, (order("A", p, s, 2),), delivery_id="d-a"),  # the same delivery again
        Delivery(shop, (order("B", "999", "1"),), delivery_id="d-b"),  # not mapped: refused
        Delivery(shop, (order("C", p, s, 2),), delivery_id="d-c"),
        Delivery(shop, (order("A", p, s, 2, "refunded"),), delivery_id="d-a-refund"),
        Delivery(shop, (order("C", p, s, 2, "cancelled"),), delivery_id="d-c-cancel"),
        Delivery(shop, (order("D", p, s, 3),), delivery_id="d-d"),  # fits once C gave back
        Delivery(shop, (order("E", p, s, 1),), delivery_id="d-e"),  # 5 - 2 - 3: none left
    ]
    async with world.api.app[DB_SESSIONS]() as db, db.begin():
        outcomes = await apply_batch(db, deliveries, WINDOW)

    first, replay, refused, *rest = outcomes
    assert isinstance(first, IntakeResult) and (first.created, first.accepted) == (1, 1)
    assert [n.kind for n in first.news] == ["paid"]
    assert first.news[0].room_slug == "studio-1"
    assert replay is None
    assert isinstance(refused, ValidationFailed) and refused.code == "unknown_product"
    c_new, a_refund, c_cancel, d_new, e_new = rest
    assert isinstance(a_refund, IntakeResult) and a_refund.updated == 1
    assert [n.kind for n in a_refund.news] == ["refunded"]
    assert isinstance(c_cancel, IntakeResult) and c_cancel.updated == 1
    assert isinstance(c_new, IntakeResult) and c_new.accepted == 1
    assert isinstance(d_new, IntakeResult) and d_new.accepted == 1
    assert isinstance(e_new, IntakeResult) and (e_new.accepted, e_new.refused) == (0, 1)

    async with world.api.app[DB_SESSIONS]() as db:
        rows = {
            o.platform_order_id: (o.status, o.stock_state, o.session_id)
            for o in await db.scalars(select(Order))
        }
        receipts = set(await db.scalars(select(WebhookReceipt.delivery_id)))
        sku_stock = await db.scalar(
            select(ProductSku.stock).where(ProductSku.product_id == st.product_id)
        )
        orders = await db.scalar(select(func.count()).select_from(Order))
    assert rows == {
        "A": (OrderStatus.REFUNDED, StockState.TAKEN, st.session_id),
        "C": (OrderStatus.CANCELLED, StockState.RETURNED, st.session_id),
        "D": (OrderStatus.PAID, StockState.TAKEN, st.session_id),
        "E": (OrderStatus.PAID, StockState.REFUSED, st.session_id),
    }
    assert orders == 4
    # A refused delivery leaves no receipt, so the platform's retry is taken in later.
    assert receipts == {"d-a", "d-c", "d-a-refund", "d-c-cancel", "d-d", "d-e"}
    assert sku_stock == 0  # 5 - A's 2 - D's 3; C's 2 came back; E was refused


async def test_a_batch_after_a_commit_sees_its_receipts_and_orders(world: World) -> None:
    st = await stage(world, "shopify", stock=10)
    shop = Shop(st.shop_id, world.ids["haifeng.base"], "haifeng")
    first = [Delivery(shop, (order("F", st.ext_product, st.ext_sku),), delivery_id="d-f")]
    again = [
        Delivery(shop, (order("F", st.ext_product, st.ext_sku),), delivery_id="d-f"),
        Delivery(shop, (order("F", st.ext_product, st.ext_sku),), delivery_id="d-f2"),
    ]
    for batch in (first, again):
        async with world.api.app[DB_SESSIONS]() as db, db.begin():
            outcomes = await apply_batch(db, batch, WINDOW)
    replay, second = outcomes
    assert replay is None
    assert isinstance(second, IntakeResult) and (second.created, second.unchanged) == (0, 1)
    async with world.api.app[DB_SESSIONS]() as db:
        assert await db.scalar(select(func.count()).select_from(Order)) == 1
        stock = select(ProductSku.stock).where(ProductSku.product_id == st.product_id)
        assert await db.scalar(stock) == 9


async def test_old_webhook_receipts_are_deleted(world: World) -> None:
    st = await stage(world, "shopify")
    now = datetime.now(UTC)
    async with world.api.app[DB_SESSIONS]() as db, db.begin():
        db.add_all(
            WebhookReceipt(connection_id=st.shop_id, delivery_id=name, received_at=at)
            for name, at in (("old", now - timedelta(days=8)), ("recent", now - timedelta(days=6)))
        )
    assert await world.api.app[ORDER_WRITER].prune() == 1
    async with world.api.app[DB_SESSIONS]() as db:
        assert set(await db.scalars(select(WebhookReceipt.delivery_id))) == {"recent"}
