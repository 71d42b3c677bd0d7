"""The reads (and the first writes) of an order batch: each a single set-wise statement.

Every function here serves :func:`livebase.orders.intake.apply_batch` and runs in its
transaction; none depends on the batch's size for its number of statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, union_all
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
    ProductSku,
    Room,
    StockState,
    WebhookReceipt,
    utcnow,
)
from livebase.orders import attribution
from livebase.orders.mapping import PlacedLine
from livebase.orders.model import Shop

# Pins open in ended sessions (never unpinned) pile up over the months; only the latest few
# open or recently ended pins of a product can be the one an order is credited to.
CANDIDATES = 50
Key = tuple[str, str]  # (platform, platform order id)
StockLine = tuple[int, int, int]  # (SKU, product, quantity)


@dataclass(eq=False, slots=True)
class OrderRec:
    """An order as the batch leaves it; ``id`` is None until a new one is inserted."""

    id: int | None
    values: dict[str, object]  # the order's columns, as read or to be inserted
    lines: list[PlacedLine] = field(default_factory=list)
    changed: bool = False

    @property
    def status(self) -> OrderStatus:
        return self.values["status"]  # type: ignore[return-value]

    @property
    def stock_state(self) -> StockState:
        return self.values["stock_state"]  # type: ignore[return-value]


async def take_receipts(db: AsyncSession, keys: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Record deliveries; returns those not recorded before (the others are replays)."""
    if not keys:
        return set()
    now = utcnow()
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = (
        insert(WebhookReceipt)
        .on_conflict_do_nothing()
        .returning(WebhookReceipt.connection_id, WebhookReceipt.delivery_id)
    )
    # Many parameter sets, one statement: the same compiled statement whatever the count.
    rows = [{"connection_id": c, "delivery_id": d, "received_at": now} for c, d in keys]
    return {(c, d) for c, d in await db.execute(stmt, rows)}


_ORDERS, _PINS, _SESSIONS, _ROOMS = (
    Order.__table__,
    Pin.__table__,
    LiveSession.__table__,
    Room.__table__,
)
_SESSION_ROOM = _SESSIONS.join(_ROOMS, _ROOMS.c.id == _SESSIONS.c.room_id)
# The room of an order's session comes with the order: analytics events name it.
_KNOWN_ORDERS = (
    select(_ORDERS, _ROOMS.c.slug.label("room_slug"))
    .select_from(_ORDERS.outerjoin(_SESSION_ROOM, _SESSIONS.c.id == _ORDERS.c.session_id))
    .where(
        _ORDERS.c.platform.in_(bindparam("platforms", expanding=True)),
        _ORDERS.c.platform_order_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(_ORDERS.c.id)
    .with_for_update(of=_ORDERS)
)


async def known_orders(
    db: AsyncSession, keys: set[Key], slugs: dict[int, str]
) -> dict[Key, OrderRec]:
    """The orders of ``keys`` already stored, locked; their sessions' rooms into ``slugs``."""
    if not keys:
        return {}
    conn = await db.connection()
    params = {"platforms": sorted({p for p, _ in keys}), "ids": sorted({i for _, i in keys})}
    found = {}
    for row in await conn.execute(_KNOWN_ORDERS, params):
        values = dict(row._mapping)
        slug = values.pop("room_slug")
        if (row.platform, row.platform_order_id) in keys:
            found[(row.platform, row.platform_order_id)] = OrderRec(row.id, values)
            if row.session_id is not None:
                slugs[row.session_id] = slug
    return found


async def checked_tracking(
    db: AsyncSession, wanted: list[tuple[Shop, attribution.TrackingRefs]], slugs: dict[int, str]
) -> dict[tuple[int, attribution.TrackingRefs], attribution.CheckedTracking]:
    """Tracking refs that name a session of the order's base, checked in three queries."""
    sessions = {r.session_id for _, r in wanted if r.session_id is not None}
    if not sessions:
        return {}
    found = {
        row.id: row
        for row in await db.execute(
            select(_SESSIONS.c.id, _SESSIONS.c.host_id, _SESSIONS.c.base_id, _ROOMS.c.slug)
            .select_from(_SESSION_ROOM)
            .where(_SESSIONS.c.id.in_(sessions))
        )
    }
    host_ids = {r.host_id for _, r in wanted if r.host_id is not None}
    product_ids = {r.product_id for _, r in wanted if r.product_id is not None}
    hosts: dict[int, int] = {}
    if host_ids:
        query = select(Host.id, Host.base_id).where(Host.id.in_(host_ids))
        hosts = {i: b for i, b in await db.execute(query)}
    products: dict[int, int] = {}
    if product_ids:
        query = select(Product.id, Product.base_id).where(Product.id.in_(product_ids))
        products = {i: b for i, b in await db.execute(query)}
    checked = {}
    for shop, refs in wanted:
        session = found.get(refs.session_id or 0)
        if session is None or session.base_id != shop.base_id:
            continue
        host = refs.host_id if hosts.get(refs.host_id or 0) == shop.base_id else None
        product = refs.product_id if products.get(refs.product_id or 0) == shop.base_id else None
        slugs[session.id] = session.slug
        checked[(shop.base_id, refs)] = attribution.CheckedTracking(
            session.id, session.host_id, host, product
        )
    return checked


def _latest_pins(condition: ColumnElement[bool], newest_first: ColumnElement[Any]) -> Select[Any]:
    rank = func.row_number().over(partition_by=_PINS.c.product_id, order_by=newest_first)
    ranked = (
        select(
            _PINS.c.id,
            _PINS.c.session_id,
            _SESSIONS.c.host_id,
            _PINS.c.product_id,
            _PINS.c.pinned_at,
            _PINS.c.unpinned_at,
            _SESSIONS.c.ended_at,
            _ROOMS.c.slug,
            rank.label("rank"),
        )
        .select_from(_PINS.join(_SESSION_ROOM, _SESSIONS.c.id == _PINS.c.session_id))
        .where(
            _PINS.c.product_id.in_(bindparam("products", expanding=True)),
            _PINS.c.pinned_at <= bindparam("latest"),
            condition,
        )
        .subquery()
    )
    return select(*(c for c in ranked.c if c.key != "rank")).where(ranked.c.rank <= CANDIDATES)


# Built once: constructing a statement of this size costs more than running it.
_PIN_SPANS = union_all(
    _latest_pins(_PINS.c.unpinned_at.is_(None), _PINS.c.pinned_at.desc()),
    _latest_pins(_PINS.c.unpinned_at >= bindparam("since"), _PINS.c.unpinned_at.desc()),
)


async def pin_spans(
    db: AsyncSession,
    product_ids: set[int],
    earliest: datetime,
    latest: datetime,
    window: timedelta,
    slugs: dict[int, str],
) -> list[attribution.PinSpan]:
    """Pins of ``product_ids`` that orders placed from ``earliest`` to ``latest`` may credit.

    Those still open, and those ended within ``window`` before ``earliest``. The two halves
    are separate queries (joined by UNION ALL) so that each can seek
    ``ix_pins_product_unpinned``: an OR of the two conditions would read every pin the
    products ever had. Each half keeps the latest ``CANDIDATES`` of each product, which the
    rules choose from: the latest open and the latest ended. Their sessions' rooms go into
    ``slugs``.
    """
    if not product_ids:
        return []
    conn = await db.connection()
    params = {"products": sorted(product_ids), "latest": latest, "since": earliest - window}
    rows = await conn.execute(_PIN_SPANS, params)
    spans = []
    for pin_id, session_id, host_id, product_id, start, unpinned, ended, slug in rows:
        slugs[session_id] = slug
        # A pin left open when its session ended stopped selling when the session did.
        ends = [t for t in (unpinned, ended) if t is not None]
        spans.append(
            attribution.PinSpan(
                pin_id, session_id, host_id, product_id, start, min(ends) if ends else None
            )
        )
    return spans


async def order_lines(db: AsyncSession, order_ids: set[int]) -> dict[int, list[StockLine]]:
    """(SKU, product, quantity) of each line of the orders, where both are still ours."""
    lines: dict[int, list[StockLine]] = {}
    if order_ids:
        rows = await db.execute(
            select(
                OrderLine.order_id, OrderLine.sku_id, OrderLine.product_id, OrderLine.quantity
            ).where(OrderLine.order_id.in_(order_ids))
        )
        for order_id, sku_id, product_id, quantity in rows:
            if sku_id is not None and product_id is not None:
                lines.setdefault(order_id, []).append((sku_id, product_id, quantity))
    return lines


_SKUS = ProductSku.__table__
_LOCKED_STOCK = (
    select(_SKUS.c.id, _SKUS.c.stock)
    .where(_SKUS.c.id.in_(bindparam("skus", expanding=True)))
    .order_by(_SKUS.c.id)
    .with_for_update()
)


async def locked_stock(db: AsyncSession, sku_ids: set[int]) -> dict[int, int]:
    """The SKUs' stock, their rows locked until the commit (in id order, as every writer)."""
    if not sku_ids:
        return {}
    conn = await db.connection()
    return {i: s for i, s in await conn.execute(_LOCKED_STOCK, {"skus": sorted(sku_ids)})}
