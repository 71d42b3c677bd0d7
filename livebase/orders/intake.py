"""Shop orders into the database: one ``Order`` per platform order, whatever the deliveries.

Everything here runs inside the caller's transaction, so an order, its lines, its stock and
the webhook receipt that brought it commit together or not at all. Decisions:

- a new order whose lines cannot all be mapped to our SKUs is refused (422), nothing stored;
- a new paid order takes its stock; when a SKU has too little, the order is stored with
  ``stock_state = refused`` (the platform took the buyer's money: the merchant must see it to
  cancel and refund it) and it is not counted by analytics;
- ``paid`` may become ``refunded`` or ``cancelled``; those are final, and a late ``paid``
  delivery after them changes nothing. A cancellation gives the stock back (the goods never
  left); a refund does not (they may have been delivered and eaten);
- an order first seen refunded or cancelled takes no stock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import (
    Host,
    LiveSession,
    Order,
    OrderLine,
    OrderStatus,
    Pin,
    Product,
    Room,
    StockState,
    WebhookReceipt,
    utcnow,
)
from livebase.errors import ValidationFailed
from livebase.orders import attribution, stock
from livebase.orders.mapping import PlacedLine, place_lines
from livebase.orders.model import IncomingOrder, IntakeResult, OrderNews, Shop

# Pins open in ended sessions (never unpinned) pile up over the months; only the latest few
# open or recently ended pins of a product can be the one an order is credited to.
CANDIDATES = 50


async def first_receipt(db: AsyncSession, connection_id: int, delivery_id: str) -> bool:
    """Record a webhook delivery; False when it was recorded before (a replay).

    Meant as the transaction's first statement: on SQLite that takes the write lock up front.
    """
    values = {"connection_id": connection_id, "delivery_id": delivery_id, "received_at": utcnow()}
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert
    result = await db.execute(insert(WebhookReceipt).values(values).on_conflict_do_nothing())
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def _checked_tracking(
    db: AsyncSession, base_id: int, refs: attribution.TrackingRefs
) -> attribution.CheckedTracking | None:
    if refs.session_id is None:
        return None
    session = (
        await db.execute(
            select(LiveSession.id, LiveSession.host_id).where(
                LiveSession.id == refs.session_id, LiveSession.base_id == base_id
            )
        )
    ).first()
    if session is None:
        return None
    host = product = None
    if refs.host_id is not None:
        host = await db.scalar(
            select(Host.id).where(Host.id == refs.host_id, Host.base_id == base_id)
        )
    if refs.product_id is not None:
        product = await db.scalar(
            select(Product.id).where(Product.id == refs.product_id, Product.base_id == base_id)
        )
    return attribution.CheckedTracking(session.id, session.host_id, host, product)


async def pin_spans(
    db: AsyncSession,
    product_ids: set[int],
    placed_at: datetime,
    window: timedelta,
) -> list[attribution.PinSpan]:
    """Pins of ``product_ids`` still open, or ended within ``window`` before ``placed_at``.

    Products belong to one base, and so do their pins. The two halves are separate queries
    (joined by UNION ALL) so that each can seek ``ix_pins_product_unpinned``: an OR of the two
    conditions would read every pin the products ever had. Each half keeps its latest
    ``CANDIDATES``, which the rules choose from: the latest open and the latest ended.
    """
    candidates = (
        select(
            Pin.id,
            Pin.session_id,
            LiveSession.host_id,
            Pin.product_id,
            Pin.pinned_at,
            Pin.unpinned_at,
            LiveSession.ended_at,
        )
        .join(LiveSession, LiveSession.id == Pin.session_id)
        .where(Pin.product_id.in_(product_ids), Pin.pinned_at <= placed_at)
    )
    still_open = (
        candidates.where(Pin.unpinned_at.is_(None))
        .order_by(Pin.pinned_at.desc())
        .limit(CANDIDATES)
        .subquery()
    )
    ended_lately = (
        candidates.where(Pin.unpinned_at >= placed_at - window)
        .order_by(Pin.unpinned_at.desc())
        .limit(CANDIDATES)
        .subquery()
    )
    rows = await db.execute(union_all(select(still_open), select(ended_lately)))
    spans = []
    for pin_id, session_id, host_id, product_id, start, unpinned, ended in rows:
        # A pin left open when its session ended stopped selling when the session did.
        ends = [t for t in (unpinned, ended) if t is not None]
        spans.append(
            attribution.PinSpan(
                pin_id, session_id, host_id, product_id, start, min(ends) if ends else None
            )
        )
    return spans


async def _room_slug(db: AsyncSession, session_id: int) -> str:
    slug = await db.scalar(
        select(Room.slug)
        .join(LiveSession, LiveSession.room_id == Room.id)
        .where(LiveSession.id == session_id)
    )
    return slug or ""


async def _news(
    db: AsyncSession, shop: Shop, order: Order, kind: str, amount: int, at: datetime
) -> OrderNews | None:
    if order.session_id is None:
        return None
    return OrderNews(
        kind=kind,
        base_slug=shop.base_slug,
        room_slug=await _room_slug(db, order.session_id),
        session_id=order.session_id,
        order_id=order.id,
        platform=order.platform,
        platform_order_id=order.platform_order_id,
        buyer_ref=order.buyer_ref,
        product_id=order.product_id,
        quantity=order.quantity,
        amount_fen=amount,
        currency=order.currency,
        at=at,
    )


def _stock_lines(placed: Sequence[PlacedLine]) -> list[stock.StockLine]:
    return [stock.StockLine(p.sku_id, p.product_id, p.line.quantity) for p in placed]


async def _create(
    db: AsyncSession, shop: Shop, incoming: IncomingOrder, window: timedelta
) -> IntakeResult:
    if not incoming.lines:
        raise ValidationFailed(
            f"order {incoming.platform_order_id} has no line items", code="empty_order"
        )
    placed = await place_lines(db, shop.connection_id, incoming.lines)
    main = max(placed, key=lambda p: p.line.amount_fen)  # the first of the largest lines
    checked = await _checked_tracking(
        db, shop.base_id, attribution.tracking_refs(incoming.tracking)
    )
    products = {p.product_id for p in placed}
    spans = [] if checked else await pin_spans(db, products, incoming.placed_at, window)
    credit = attribution.credit(
        checked, incoming.placed_at, products, spans, window, main.product_id
    )
    order = Order(
        base_id=shop.base_id,
        merchant_id=main.merchant_id,
        product_id=credit.product_id,
        session_id=credit.session_id,
        host_id=credit.host_id,
        platform=incoming.platform,
        platform_order_id=incoming.platform_order_id,
        quantity=sum(p.line.quantity for p in placed),
        amount_fen=incoming.amount_fen,
        currency=incoming.currency,
        status=incoming.status,
        placed_at=incoming.placed_at,
        connection_id=shop.connection_id,
        refunded_fen=incoming.amount_fen if incoming.status is OrderStatus.REFUNDED else 0,
        stock_state=StockState.NONE,
        credited_by=credit.via,
        buyer_ref=incoming.buyer_ref,
    )
    db.add(order)
    await db.flush()
    db.add_all(
        OrderLine(
            order_id=order.id,
            product_id=p.product_id,
            sku_id=p.sku_id,
            external_product_id=p.line.external_product_id,
            external_sku_id=p.line.external_sku_id or "",
            quantity=p.line.quantity,
            amount_fen=p.line.amount_fen,
        )
        for p in placed
    )
    result = IntakeResult(created=1)
    if incoming.status is OrderStatus.PAID:
        taken = await stock.take(db, _stock_lines(placed))
        order.stock_state = StockState.TAKEN if taken else StockState.REFUSED
        result.accepted, result.refused = (1, 0) if taken else (0, 1)
    if order.status is not OrderStatus.CANCELLED and order.stock_state is not StockState.REFUSED:
        # A platform's clock may run ahead of ours; a sale is not reported before it happened.
        at = min(order.placed_at, utcnow())
        news = await _news(db, shop, order, "paid", order.amount_fen, at)
        result.news += [news] if news else []
        if order.refunded_fen > 0:
            news = await _news(db, shop, order, "refunded", order.refunded_fen, utcnow())
            result.news += [news] if news else []
    return result


async def _update(
    db: AsyncSession, shop: Shop, order: Order, incoming: IncomingOrder
) -> IntakeResult:
    new = incoming.status
    if order.status is not OrderStatus.PAID or new is OrderStatus.PAID:
        return IntakeResult(unchanged=1)
    counted = order.stock_state is not StockState.REFUSED
    if new is OrderStatus.REFUNDED and incoming.amount_fen > 0:
        order.refunded_fen = min(incoming.amount_fen, order.amount_fen)
    else:  # a cancelled paid order, or a refund that names no amount: all of it goes back
        order.refunded_fen = order.amount_fen
    if new is OrderStatus.CANCELLED and order.stock_state is StockState.TAKEN:
        lines = await db.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
        await stock.give_back(
            db,
            [
                stock.StockLine(line.sku_id, line.product_id, line.quantity)
                for line in lines
                if line.sku_id is not None and line.product_id is not None
            ],
        )
        order.stock_state = StockState.RETURNED
    order.status = new
    result = IntakeResult(updated=1)
    if counted and order.refunded_fen > 0:
        news = await _news(db, shop, order, "refunded", order.refunded_fen, utcnow())
        result.news += [news] if news else []
    return result


async def apply_order(
    db: AsyncSession, shop: Shop, incoming: IncomingOrder, window: timedelta
) -> IntakeResult:
    """Create or advance the order; see the module docstring for the rules."""
    existing = await db.scalar(
        select(Order)
        .where(
            Order.platform == incoming.platform,
            Order.platform_order_id == incoming.platform_order_id,
        )
        .with_for_update()
    )
    if existing is not None:
        return await _update(db, shop, existing, incoming)
    return await _create(db, shop, incoming, window)


async def apply_orders(
    db: AsyncSession, shop: Shop, orders: Sequence[IncomingOrder], window: timedelta
) -> IntakeResult:
    total = IntakeResult()
    for incoming in orders:
        total.add(await apply_order(db, shop, incoming, window))
    return total
