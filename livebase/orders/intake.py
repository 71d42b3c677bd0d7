"""Shop orders into the database: one ``Order`` per platform order, whatever the deliveries.

:func:`apply_batch` takes in many deliveries (webhooks, pulls) in the caller's transaction
with a fixed number of set-wise statements, whatever the batch's size: the receipts, the
orders the batch names, the listing mappings, tracking ids, candidate pins and SKU stock are
each read once; the new orders and their lines are inserted at once and every SKU's and
product's stock moves in one statement. The rules themselves are applied in Python, delivery
by delivery in arrival order, exactly as if each had had a transaction of its own:

- a delivery whose new order cannot be understood (no lines, a line not mapped to our SKUs)
  is refused (422) as a whole: none of its orders and not its receipt are stored;
- a delivery already taken in (its receipt exists, or an earlier one of the batch had the
  same id) is a replay: it changes nothing;
- a new paid order takes its stock; when a SKU has too little, the order is stored with
  ``stock_state = refused`` (the platform took the buyer's money: the merchant must see it to
  cancel and refund it) and it is not counted by analytics;
- ``paid`` may become ``refunded`` or ``cancelled``; those are final, and a late ``paid``
  delivery after them changes nothing. A cancellation gives the stock back (the goods never
  left); a refund does not (they may have been delivered and eaten);
- an order first seen refunded or cancelled takes no stock.

Stock never goes negative: the batch's first statements are writes (the receipts, a pull's
cursor), so on SQLite the transaction holds the write lock before it reads anything; on
PostgreSQL the SKU rows are read ``FOR UPDATE`` (in id order, as every stock writer locks
them), so the stock the rules see is the stock that is updated, and the ``stock >= 0`` check
constraint stands behind it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, case, delete, insert, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import (
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductSku,
    ShopConnection,
    StockState,
    WebhookReceipt,
    utcnow,
)
from livebase.errors import ApiError, ValidationFailed
from livebase.orders import attribution, lookups
from livebase.orders.lookups import Key, OrderRec
from livebase.orders.mapping import PlacedLine, load_listings, place_lines
from livebase.orders.model import IncomingOrder, IntakeResult, OrderNews, Shop


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one webhook delivery or one pull brings: orders of one shop connection."""

    shop: Shop
    orders: tuple[IncomingOrder, ...]
    delivery_id: str | None = None  # a webhook's id, taken in once
    pulled: bool = False  # a pull: the connection's cursor moves with its orders
    pull_cursor: str | None = None


# Per delivery: its result, None for a replay, or the error that refused it (nothing stored).
Outcome = IntakeResult | ApiError | None


@dataclass(slots=True)
class _News:
    rec: OrderRec
    shop: Shop
    kind: str
    amount: int
    at: datetime


@dataclass(slots=True)
class _Stock:
    """SKU stock as read under lock, and how the batch moves it."""

    left: dict[int, int]
    sku_delta: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    product_delta: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))

    def take(self, lines: Sequence[tuple[int, int, int]]) -> bool:
        """Take every (SKU, product, quantity), or nothing when one SKU has too little."""
        per_sku: defaultdict[int, int] = defaultdict(int)
        for sku_id, _, quantity in lines:
            per_sku[sku_id] += quantity
        if any(self.left.get(sku, 0) < q for sku, q in per_sku.items()):
            return False
        self.move(lines, -1)
        return True

    def move(self, lines: Sequence[tuple[int, int, int]], sign: int) -> None:
        for sku_id, product_id, quantity in lines:
            self.left[sku_id] = self.left.get(sku_id, 0) + sign * quantity
            self.sku_delta[sku_id] += sign * quantity
            self.product_delta[product_id] += sign * quantity


def _key(order: IncomingOrder) -> Key:
    return (order.platform, order.platform_order_id)


def _refusal(
    delivery: Delivery,
    index: int,
    state: dict[Key, OrderRec],
    placements: dict[tuple[int, Key], list[PlacedLine] | ValidationFailed],
) -> ValidationFailed | None:
    """Why the delivery's new orders cannot be taken in, if they cannot (nothing is stored)."""
    seen: set[Key] = set()
    for order in delivery.orders:
        key = _key(order)
        if key in state or key in seen:
            continue
        if not order.lines:
            return ValidationFailed(
                f"order {order.platform_order_id} has no line items", code="empty_order"
            )
        placed = placements[(index, key)]
        if isinstance(placed, ValidationFailed):
            return placed
        seen.add(key)
    return None


def _stock_lines(lines: Sequence[PlacedLine]) -> list[tuple[int, int, int]]:
    return [(p.sku_id, p.product_id, p.line.quantity) for p in lines]


@dataclass(slots=True)
class _Batch:
    """What the batch read, and what its rules decided so far."""

    window: timedelta
    state: dict[Key, OrderRec]
    placements: dict[tuple[int, Key], list[PlacedLine] | ValidationFailed]
    tracking: dict[tuple[int, attribution.TrackingRefs], attribution.CheckedTracking]
    spans: list[attribution.PinSpan]
    stock: _Stock
    old_lines: dict[int, list[tuple[int, int, int]]]
    slugs: dict[int, str]  # the room of each session an order of the batch is credited to
    news: list[_News] = field(default_factory=list)

    def news_of(self, rec: OrderRec, shop: Shop, kind: str, amount: int, at: datetime) -> int:
        if rec.values["session_id"] is None:
            return 0
        self.news.append(_News(rec, shop, kind, amount, at))
        return 1

    def create(self, index: int, shop: Shop, incoming: IncomingOrder) -> IntakeResult:
        placed = self.placements[(index, _key(incoming))]
        assert isinstance(placed, list)  # refused deliveries never get here
        main = max(placed, key=lambda p: p.line.amount_fen)  # the first of the largest lines
        refs = attribution.tracking_refs(incoming.tracking)
        checked = self.tracking.get((shop.base_id, refs))
        products = {p.product_id for p in placed}
        credit = attribution.credit(
            checked, incoming.placed_at, products, self.spans, self.window, main.product_id
        )
        refunded = incoming.status is OrderStatus.REFUNDED
        rec = OrderRec(
            None,
            {
                "base_id": shop.base_id,
                "merchant_id": main.merchant_id,
                "product_id": credit.product_id,
                "session_id": credit.session_id,
                "host_id": credit.host_id,
                "platform": incoming.platform,
                "platform_order_id": incoming.platform_order_id,
                "quantity": sum(p.line.quantity for p in placed),
                "amount_fen": incoming.amount_fen,
                "currency": incoming.currency,
                "status": incoming.status,
                "placed_at": incoming.placed_at,
                "connection_id": shop.connection_id,
                "refunded_fen": incoming.amount_fen if refunded else 0,
                "stock_state": StockState.NONE,
                "credited_by": credit.via,
                "buyer_ref": incoming.buyer_ref,
            },
            placed,
        )
        self.state[_key(incoming)] = rec
        result = IntakeResult(created=1)
        if incoming.status is OrderStatus.PAID:
            taken = self.stock.take(_stock_lines(placed))
            rec.values["stock_state"] = StockState.TAKEN if taken else StockState.REFUSED
            result.accepted, result.refused = (1, 0) if taken else (0, 1)
        if rec.status is not OrderStatus.CANCELLED and rec.stock_state is not StockState.REFUSED:
            # A platform's clock may run ahead of ours; a sale is not reported before it happened.
            at = min(incoming.placed_at, utcnow())
            self.news_of(rec, shop, "paid", incoming.amount_fen, at)
            if refunded:
                self.news_of(rec, shop, "refunded", incoming.amount_fen, utcnow())
        return result

    def update(self, shop: Shop, rec: OrderRec, incoming: IncomingOrder) -> IntakeResult:
        new = incoming.status
        if rec.status is not OrderStatus.PAID or new is OrderStatus.PAID:
            return IntakeResult(unchanged=1)
        values = rec.values
        counted = rec.stock_state is not StockState.REFUSED
        amount = int(values["amount_fen"])  # type: ignore[call-overload]
        if new is OrderStatus.REFUNDED and incoming.amount_fen > 0:
            values["refunded_fen"] = min(incoming.amount_fen, amount)
        else:  # a cancelled paid order, or a refund that names no amount: all of it goes back
            values["refunded_fen"] = amount
        if new is OrderStatus.CANCELLED and rec.stock_state is StockState.TAKEN:
            lines = _stock_lines(rec.lines) if rec.id is None else self.old_lines.get(rec.id, [])
            self.stock.move(lines, +1)
            values["stock_state"] = StockState.RETURNED
        values["status"] = new
        rec.changed = True
        if counted:
            self.news_of(rec, shop, "refunded", int(values["refunded_fen"]), utcnow())  # type: ignore[call-overload]
        return IntakeResult(updated=1)


async def _read(
    db: AsyncSession, deliveries: Sequence[Delivery], active: list[int], window: timedelta
) -> _Batch:
    """Everything the rules need, in a fixed number of queries."""
    slugs: dict[int, str] = {}
    keys = {_key(o) for i in active for o in deliveries[i].orders}
    state = await lookups.known_orders(db, keys, slugs)
    fresh = [(i, o) for i in active for o in deliveries[i].orders if _key(o) not in state]
    listings = await load_listings(
        db,
        {(deliveries[i].shop.connection_id, line.external_product_id)
         for i, o in fresh for line in o.lines},
    )  # fmt: skip
    placements: dict[tuple[int, Key], list[PlacedLine] | ValidationFailed] = {}
    for i, order in fresh:
        try:
            placed = place_lines(listings, deliveries[i].shop.connection_id, order.lines)
        except ValidationFailed as exc:
            placements[(i, _key(order))] = exc
        else:
            placements[(i, _key(order))] = placed
    wanted = [(deliveries[i].shop, attribution.tracking_refs(o.tracking)) for i, o in fresh]
    tracking = await lookups.checked_tracking(db, [w for w in wanted if w[1].session_id], slugs)
    # Pins of the products of orders that tracking does not credit.
    by_pin = [
        (o.placed_at, lines)
        for (i, o), (shop, refs) in zip(fresh, wanted, strict=True)
        if (shop.base_id, refs) not in tracking
        and isinstance(lines := placements[(i, _key(o))], list)
    ]
    spans: list[attribution.PinSpan] = []
    if by_pin:
        products = {p.product_id for _, lines in by_pin for p in lines}
        times = [t for t, _ in by_pin]
        spans = await lookups.pin_spans(db, products, min(times), max(times), window, slugs)
    cancelling = {
        rec.id
        for i in active
        for o in deliveries[i].orders
        if o.status is OrderStatus.CANCELLED
        and (rec := state.get(_key(o))) is not None
        and rec.id is not None
        and rec.stock_state is StockState.TAKEN
    }
    old_lines = await lookups.order_lines(db, cancelling)
    skus = {line[0] for lines in old_lines.values() for line in lines}
    skus |= {p.sku_id for placed in placements.values() if isinstance(placed, list) for p in placed}
    stock = _Stock(await lookups.locked_stock(db, skus))
    return _Batch(window, state, placements, tracking, spans, stock, old_lines, slugs)


async def _write(db: AsyncSession, batch: _Batch) -> None:
    """The batch's orders, lines and stock, in a fixed number of statements."""
    new = [rec for rec in batch.state.values() if rec.id is None]
    changed = [rec for rec in batch.state.values() if rec.changed and rec.id is not None]
    if new:
        now = utcnow()
        # Matched by key, not by position: RETURNING in the order of the parameters would
        # make SQLite insert row by row.
        rows = await db.execute(
            insert(Order).returning(Order.id, Order.platform, Order.platform_order_id),
            [rec.values | {"created_at": now, "updated_at": now} for rec in new],
        )
        for order_id, platform, platform_order_id in rows:
            batch.state[(platform, platform_order_id)].id = order_id
        await db.execute(
            insert(OrderLine),
            [
                {
                    "order_id": rec.id,
                    "product_id": p.product_id,
                    "sku_id": p.sku_id,
                    "external_product_id": p.line.external_product_id,
                    "external_sku_id": p.line.external_sku_id or "",
                    "quantity": p.line.quantity,
                    "amount_fen": p.line.amount_fen,
                }
                for rec in new
                for p in rec.lines
            ],
        )
    if changed:
        table = cast(Table, Order.__table__)
        await db.execute(
            update(table)
            .where(table.c.id == bindparam("rec_id"))
            .values(
                status=bindparam("new_status"),
                refunded_fen=bindparam("new_refunded"),
                stock_state=bindparam("new_stock"),
                updated_at=bindparam("now"),
            ),
            [
                {
                    "rec_id": rec.id,
                    "new_status": rec.status,
                    "new_refunded": rec.values["refunded_fen"],
                    "new_stock": rec.stock_state,
                    "now": utcnow(),
                }
                for rec in changed
            ],
        )
    for model, deltas in (
        (ProductSku, batch.stock.sku_delta),
        (Product, batch.stock.product_delta),
    ):
        moved = {k: v for k, v in deltas.items() if v}
        if moved:
            await db.execute(
                update(model)
                .where(model.id.in_(moved))
                .values(stock=model.stock + case(moved, value=model.id))
                .execution_options(synchronize_session=False)
            )


async def apply_batch(
    db: AsyncSession, deliveries: Sequence[Delivery], window: timedelta
) -> list[Outcome]:
    """Take the deliveries in, in order; one outcome per delivery (see the module docstring)."""
    first_of: dict[tuple[int, str], int] = {}
    same_as: dict[int, int] = {}  # a delivery -> the earlier one of the batch with its id
    for i, d in enumerate(deliveries):
        if d.delivery_id is not None:
            same_as[i] = first_of.setdefault((d.shop.connection_id, d.delivery_id), i)
    fresh = await lookups.take_receipts(db, list(first_of))
    pulls = {d.shop.connection_id for d in deliveries if d.pulled}
    if pulls and not first_of:
        # A write before any read (see the module docstring); the cursors move at the end,
        # those of accepted pulls only.
        await db.execute(
            update(ShopConnection)
            .where(ShopConnection.id.in_(pulls))
            .values(pull_cursor=ShopConnection.pull_cursor)
        )
    active = [
        i
        for i, d in enumerate(deliveries)
        if d.delivery_id is None
        or (same_as[i] == i and (d.shop.connection_id, d.delivery_id) in fresh)
    ]
    batch = await _read(db, deliveries, active, window)
    outcomes: list[Outcome] = [None] * len(deliveries)
    refused: list[tuple[int, str]] = []
    news_marks: list[tuple[int, int, int]] = []
    for i in active:
        delivery = deliveries[i]
        problem = _refusal(delivery, i, batch.state, batch.placements)
        if problem is not None:
            outcomes[i] = problem
            if delivery.delivery_id is not None:
                refused.append((delivery.shop.connection_id, delivery.delivery_id))
            continue
        result = IntakeResult()
        start = len(batch.news)
        for order in delivery.orders:
            rec = batch.state.get(_key(order))
            if rec is None:
                result.add(batch.create(i, delivery.shop, order))
            else:
                result.add(batch.update(delivery.shop, rec, order))
        outcomes[i] = result
        news_marks.append((i, start, len(batch.news)))
    for i, j in same_as.items():
        if j != i and isinstance(outcomes[j], ApiError):
            outcomes[i] = outcomes[j]  # the same delivery again, refused again
    if refused:
        await db.execute(
            delete(WebhookReceipt).where(
                tuple_(WebhookReceipt.connection_id, WebhookReceipt.delivery_id).in_(refused)
            )
        )
    await _write(db, batch)
    for i in active:
        d = deliveries[i]
        if d.pulled and isinstance(outcomes[i], IntakeResult):
            moved: dict[str, object] = {"pulled_at": utcnow()}
            if d.pull_cursor is not None:
                moved["pull_cursor"] = d.pull_cursor
            await db.execute(
                update(ShopConnection)
                .where(ShopConnection.id == d.shop.connection_id)
                .values(moved)
            )
    for i, start, end in news_marks:
        taken = outcomes[i]
        assert isinstance(taken, IntakeResult)
        taken.news = [_order_news(n, batch.slugs) for n in batch.news[start:end]]
    return outcomes


def _order_news(news: _News, slugs: dict[int, str]) -> OrderNews:
    rec, values = news.rec, news.rec.values
    session_id = int(values["session_id"])  # type: ignore[call-overload]
    assert rec.id is not None
    return OrderNews(
        kind=news.kind,
        base_slug=news.shop.base_slug,
        room_slug=slugs.get(session_id, ""),
        session_id=session_id,
        order_id=rec.id,
        platform=str(values["platform"]),
        platform_order_id=str(values["platform_order_id"]),
        buyer_ref=values["buyer_ref"],  # type: ignore[arg-type]
        product_id=values["product_id"],  # type: ignore[arg-type]
        quantity=int(values["quantity"]),  # type: ignore[call-overload]
        amount_fen=news.amount,
        currency=str(values["currency"]),
        at=news.at,
    )
