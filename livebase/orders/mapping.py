"""From a shop's product and SKU ids to ours, through the connection's listing mappings.

A line maps by its (product, SKU) pair when that pair is mapped; otherwise by its product:
then our SKU is the one whose code equals the line's SKU code, or the product's only SKU.
Anything else is refused (422) naming every line that cannot be placed, so that an order is
never stored half-understood; the platform re-sends it once the mapping exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
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


async def place_lines(
    db: AsyncSession, connection_id: int, lines: Sequence[IncomingLine]
) -> list[PlacedLine]:
    products = {line.external_product_id for line in lines}
    rows = await db.execute(
        select(ShopListing, Product.merchant_id)
        .join(Product, Product.id == ShopListing.product_id)
        .where(
            ShopListing.connection_id == connection_id,
            ShopListing.external_product_id.in_(products),
        )
    )
    by_pair = {(m.external_product_id, m.external_sku_id): (m, merchant) for m, merchant in rows}
    wanted: list[tuple[IncomingLine, ShopListing | None, int]] = []
    for line in lines:
        found = by_pair.get((line.external_product_id, line.external_sku_id or ""))
        found = found or by_pair.get((line.external_product_id, ""))
        wanted.append((line, *found) if found else (line, None, 0))

    open_products = {m.product_id for _, m, _ in wanted if m is not None and m.sku_id is None}
    skus: dict[int, list[tuple[int, str]]] = {}
    if open_products:
        for sku_row in await db.execute(
            select(ProductSku.id, ProductSku.product_id, ProductSku.sku).where(
                ProductSku.product_id.in_(open_products)
            )
        ):
            skus.setdefault(sku_row.product_id, []).append((sku_row.id, sku_row.sku))

    placed: list[PlacedLine] = []
    unknown_products: list[FieldError] = []
    unknown_skus: list[FieldError] = []
    for index, (line, mapping, merchant) in enumerate(wanted):
        where = f"line_items.{index}"
        if mapping is None:
            unknown_products.append(
                FieldError(where, f"{_describe(line)} is not mapped to a product of ours")
            )
            continue
        sku_id: int | None = mapping.sku_id
        if sku_id is None:
            choices = skus.get(mapping.product_id, [])
            by_code = [sid for sid, code in choices if line.sku_code and code == line.sku_code]
            if by_code:
                sku_id = by_code[0]
            elif len(choices) == 1:
                sku_id = choices[0][0]
        if sku_id is None:
            unknown_skus.append(
                FieldError(
                    where,
                    f"{_describe(line)} maps to product {mapping.product_id}, which has no SKU "
                    f"coded {line.sku_code!r}; map the platform SKU to one of ours",
                )
            )
            continue
        placed.append(PlacedLine(line, mapping.product_id, sku_id, merchant))
    if unknown_products or unknown_skus:
        raise ValidationFailed(
            "the order names products or SKUs this shop has not mapped to ours; map them "
            "(PUT .../shops/{id}/listings) and the platform's next delivery will be taken in",
            fields=unknown_products + unknown_skus,
            code="unknown_product" if unknown_products else "unknown_sku",
        )
    return placed
