"""From a shop's product and SKU ids to ours, through the connection's listing mappings.

A line maps by its (product, SKU) pair when that pair is mapped; otherwise by its product:
then our SKU is the one whose code equals the line's SKU code, or the product's only SKU.
Anything else is refused (422) naming every line that cannot be placed, so that an order is
never stored half-understood; the platform re-sends it once the mapping exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import Product, ProductSku, ShopListing
from livebase.errors import FieldError, ValidationFailed
from livebase.orders.model import IncomingLine


@dataclass(frozen=True, slots=True)
class PlacedLine:
    line: IncomingLine
    product_id: int
    sku_id: int
    merchant_id: int


def _describe(line: IncomingLine) -> str:
    sku = line.external_sku_id or line.sku_code
    return f"platform product {line.external_product_id}" + (f" SKU {sku}" if sku else "")


@dataclass(frozen=True, slots=True)
class Listings:
    """The listing mappings (and the SKUs of whole-product mappings) a batch of lines needs."""

    # (connection, platform product, platform SKU or "") -> (our product, SKU, merchant)
    by_pair: dict[tuple[int, str, str], tuple[int, int | None, int]]
    skus: dict[int, list[tuple[int, str]]]  # our product -> its (SKU id, SKU code)s


_LISTINGS, _PRODUCTS, _SKUS = ShopListing.__table__, Product.__table__, ProductSku.__table__
# A mapping of a whole product comes with the product's SKUs (one row each), in one query.
_MAPPINGS = (
    select(
        _LISTINGS.c.connection_id,
        _LISTINGS.c.external_product_id,
        _LISTINGS.c.external_sku_id,
        _LISTINGS.c.product_id,
        _LISTINGS.c.sku_id,
        _PRODUCTS.c.merchant_id,
        _SKUS.c.id.label("open_sku_id"),
        _SKUS.c.sku.label("open_sku"),
    )
    .select_from(
        _LISTINGS.join(_PRODUCTS, _PRODUCTS.c.id == _LISTINGS.c.product_id).outerjoin(
            _SKUS,
            (_SKUS.c.product_id == _LISTINGS.c.product_id) & _LISTINGS.c.sku_id.is_(None),
        )
    )
    .where(
        _LISTINGS.c.connection_id.in_(bindparam("connections", expanding=True)),
        _LISTINGS.c.external_product_id.in_(bindparam("products", expanding=True)),
    )
    .order_by(_SKUS.c.id)
)


async def load_listings(db: AsyncSession, wanted: set[tuple[int, str]]) -> Listings:
    """Every mapping of the (connection, platform product) pairs of a batch, in one query."""
    if not wanted:
        return Listings({}, {})
    conn = await db.connection()
    connections, products = sorted({c for c, _ in wanted}), sorted({p for _, p in wanted})
    params = {"connections": connections, "products": products}
    by_pair: dict[tuple[int, str, str], tuple[int, int | None, int]] = {}
    skus: dict[int, dict[int, str]] = {}
    for r in await conn.execute(_MAPPINGS, params):
        if (r.connection_id, r.external_product_id) not in wanted:
            continue
        key = (r.connection_id, r.external_product_id, r.external_sku_id)
        by_pair[key] = (r.product_id, r.sku_id, r.merchant_id)
        if r.open_sku_id is not None:
            skus.setdefault(r.product_id, {})[r.open_sku_id] = r.open_sku
    return Listings(by_pair, {product: list(s.items()) for product, s in skus.items()})


def place_lines(
    listings: Listings, connection_id: int, lines: Sequence[IncomingLine]
) -> list[PlacedLine]:
    """Our product and SKU for every line, or ValidationFailed naming each that has none."""
    placed: list[PlacedLine] = []
    unknown_products: list[FieldError] = []
    unknown_skus: list[FieldError] = []
    for index, line in enumerate(lines):
        pid = line.external_product_id
        found = listings.by_pair.get((connection_id, pid, line.external_sku_id or ""))
        found = found or listings.by_pair.get((connection_id, pid, ""))
        where = f"line_items.{index}"
        if found is None:
            unknown_products.append(
                FieldError(where, f"{_describe(line)} is not mapped to a product of ours")
            )
            continue
        product_id, sku_id, merchant = found
        if sku_id is None:
            choices = listings.skus.get(product_id, [])
            by_code = [sid for sid, code in choices if line.sku_code and code == line.sku_code]
            if by_code:
                sku_id = by_code[0]
            elif len(choices) == 1:
                sku_id = choices[0][0]
        if sku_id is None:
            unknown_skus.append(
                FieldError(
                    where,
                    f"{_describe(line)} maps to product {product_id}, which has no SKU "
                    f"coded {line.sku_code!r}; map the platform SKU to one of ours",
                )
            )
            continue
        placed.append(PlacedLine(line, product_id, sku_id, merchant))
    if unknown_products or unknown_skus:
        raise ValidationFailed(
            "the order names products or SKUs this shop has not mapped to ours; map them "
            "(PUT .../shops/{id}/listings) and the platform's next delivery will be taken in",
            fields=unknown_products + unknown_skus,
            code="unknown_product" if unknown_products else "unknown_sku",
        )
    return placed
