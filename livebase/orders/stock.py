"""Taking and giving back SKU stock, atomically, inside the caller's transaction.

Each SKU is decremented by one conditional statement, ``stock = stock - q WHERE stock >= q``,
whose row count says whether it was accepted, so stock can never go below zero whatever the
concurrency:

- PostgreSQL (READ COMMITTED): a concurrent UPDATE of the same row waits for the first to
  commit, then re-checks ``stock >= q`` against the committed row.
- SQLite: there is one writer at a time; the order intake's first statement is a write, so its
  transaction holds the write lock before it reads anything (no stale snapshot to upgrade).

SKUs are locked in id order, then products in id order, so two orders for the same SKUs can
wait for each other but never deadlock. A product's ``stock`` (the sum of its SKUs') moves
with them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import Product, ProductSku


@dataclass(frozen=True, slots=True)
class StockLine:
    sku_id: int
    product_id: int
    quantity: int


def _per(lines: Iterable[StockLine], key: str) -> list[tuple[int, int]]:
    totals: dict[int, int] = defaultdict(int)
    for line in lines:
        totals[getattr(line, key)] += line.quantity
    return sorted(totals.items())


async def _shift_sku(db: AsyncSession, sku_id: int, delta: int, *, guard: bool) -> bool:
    stmt = update(ProductSku).where(ProductSku.id == sku_id)
    if guard:
        stmt = stmt.where(ProductSku.stock >= -delta)
    stmt = stmt.values(stock=ProductSku.stock + delta).execution_options(synchronize_session=False)
    result = await db.execute(stmt)
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def _shift_products(db: AsyncSession, lines: Iterable[StockLine], sign: int) -> None:
    for product_id, quantity in _per(lines, "product_id"):
        await db.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + sign * quantity)
            .execution_options(synchronize_session=False)
        )


async def take(db: AsyncSession, lines: list[StockLine]) -> bool:
    """Take every line's quantity, or nothing: False when one SKU has too little left."""
    taken: list[tuple[int, int]] = []
    for sku_id, quantity in _per(lines, "sku_id"):
        if not await _shift_sku(db, sku_id, -quantity, guard=True):
            # Our own earlier decrements are still uncommitted and locked by us; undo them here
            # rather than with a savepoint, which pysqlite's transaction handling mishandles.
            for done_id, done_qty in taken:
                await _shift_sku(db, done_id, done_qty, guard=False)
            return False
        taken.append((sku_id, quantity))
    await _shift_products(db, lines, -1)
    return True


async def give_back(db: AsyncSession, lines: list[StockLine]) -> None:
    """Return what :func:`take` took (a cancelled order's goods never left)."""
    for sku_id, quantity in _per(lines, "sku_id"):
        await _shift_sku(db, sku_id, quantity, guard=False)
    await _shift_products(db, lines, +1)
