"""Applying a listing to the database, for the API and the importer alike.

A change is first checked (``check``: themes and uploaded images exist, a GI claim is complete
before the product goes active) and only then applied (``apply``), so a refused change leaves
the product as it was. ``apply`` keeps the derived columns in step: the product's ``price_fen``
is its lowest SKU price and its ``stock`` the sum of its SKUs' stock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase import gi
from livebase.db.models import (
    GiClaimRecord,
    Product,
    ProductImage,
    ProductSku,
    ProductStatus,
    Theme,
)
from livebase.errors import FieldError
from livebase.listings import images
from livebase.listings.models import STORED_IMAGE_RE, GiClaimIn, SkuIn

KEEP: Any = object()
"""A GI claim left as it is."""

SCALARS = ("title_zh", "title_en", "description_zh", "description_en", "category", "currency",
           "status")  # fmt: skip


@dataclass
class Change:
    """What to set on a product; ``None`` (or ``KEEP`` for ``gi``) leaves a part as it is."""

    values: dict[str, Any] = field(default_factory=dict)
    skus: Sequence[SkuIn] | None = None
    themes: list[str] | None = None
    images: list[str] | None = None
    gi: GiClaimIn | None = KEEP


@dataclass(frozen=True, slots=True)
class ImageValues:
    url: str
    sha256: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None


@dataclass
class Checked:
    change: Change
    themes: list[Theme] | None = None
    images: list[ImageValues] | None = None
    errors: list[FieldError] = field(default_factory=list)


def image_dir(data_dir: Path) -> Path:
    return data_dir / "images"


def claim_of(product: Product) -> gi.GiClaim | None:
    return claim_from(product.gi)


def claim_from(record: GiClaimRecord | None) -> gi.GiClaim | None:
    if record is None:
        return None
    return gi.GiClaim(
        system=record.system,
        registered_name=record.registered_name,
        registration_number=record.registration_number,
        holder=record.holder,
        protected_area=record.protected_area,
        standard_code=record.standard_code,
        credit_code=record.credit_code,
        authorisation_ref=record.authorisation_ref,
    )


def gi_problems(claim: gi.GiClaim | None) -> list[FieldError]:
    if claim is None:
        return []
    return [FieldError(f"gi.{p.field}", p.message) for p in gi.problems(claim)]


async def check(
    db: AsyncSession, data_dir: Path, product: Product | None, change: Change
) -> Checked:
    """Look up what the change refers to and say what is wrong with it (``Checked.errors``)."""
    checked = Checked(change)
    if change.themes is not None:
        wanted = list(dict.fromkeys(change.themes))
        found = {t.slug: t for t in await db.scalars(select(Theme).where(Theme.slug.in_(wanted)))}
        checked.themes = [found[slug] for slug in wanted if slug in found]
        unknown = [slug for slug in wanted if slug not in found]
        checked.errors += [FieldError("themes", f"no theme {slug!r}") for slug in unknown]
    if change.images is not None:
        checked.images = []
        for url in change.images:
            value = await _image(db, data_dir, url)
            if value is None:
                checked.errors.append(FieldError("images", f"no uploaded image {url!r}"))
            else:
                checked.images.append(value)
    status = change.values.get("status") or (product.status if product else ProductStatus.DRAFT)
    was_active = product is not None and product.status is ProductStatus.ACTIVE
    # Checked when a product goes active and when an active product's claim changes; other
    # edits (a stock change while live) are not held up by the claim.
    if status is ProductStatus.ACTIVE and (not was_active or change.gi is not KEEP):
        claim = claim_of(product) if product is not None else None
        if change.gi is not KEEP:
            claim = change.gi.claim() if change.gi is not None else None
        checked.errors += gi_problems(claim)
    return checked


async def _image(db: AsyncSession, data_dir: Path, url: str) -> ImageValues | None:
    match = STORED_IMAGE_RE.match(url)
    if match is None:
        return ImageValues(url)
    known = await db.scalar(select(ProductImage).where(ProductImage.url == url).limit(1))
    if known is not None:
        return ImageValues(url, known.sha256, known.content_type, known.width, known.height,
                           known.size_bytes)  # fmt: skip
    name = url.removeprefix(images.URL_PREFIX)
    info = await asyncio.to_thread(images.stored, image_dir(data_dir), name)
    if info is None:
        return None
    return ImageValues(url, info.sha256, info.content_type, info.width, info.height,
                       info.size_bytes)  # fmt: skip


def new_product(base_id: int, merchant_id: int, checked: Checked) -> Product:
    """A product for a checked change that has SKUs; add it to the session yourself."""
    product = Product(
        base_id=base_id,
        merchant_id=merchant_id,
        price_fen=0,
        stock=0,
        currency="CNY",
        status=ProductStatus.DRAFT,
    )
    # Every relationship is set, so nothing is lazily loaded later (not possible under asyncio).
    product.skus, product.images, product.themes, product.gi = [], [], [], None
    apply(product, checked)
    return product


def apply(product: Product, checked: Checked) -> None:
    change = checked.change
    for name, value in change.values.items():
        if name not in SCALARS:
            raise ValueError(f"{name} is not a product field")
        setattr(product, name, value)
    if change.skus is not None:
        set_skus(product, change.skus)
    for sku in product.skus:
        sku.currency = product.currency
    if checked.themes is not None:
        product.themes = list(checked.themes)
    if checked.images is not None:
        _set_images(product, checked.images)
    if change.gi is not KEEP:
        _set_gi(product, change.gi)
    sync_totals(product)


def set_skus(product: Product, skus: Sequence[SkuIn]) -> None:
    """Make the product's SKUs exactly ``skus``, in order; a kept code keeps its row."""
    current = {s.sku: s for s in product.skus}
    rows = []
    for position, sku in enumerate(skus):
        row = current.pop(sku.sku, None) or ProductSku(sku=sku.sku)
        row.spec_zh, row.spec_en = sku.spec_zh, sku.spec_en
        row.price_fen, row.stock = sku.price_fen, sku.stock
        row.currency, row.position = product.currency, position
        rows.append(row)
    product.skus = rows
    sync_totals(product)


def sync_totals(product: Product) -> None:
    if product.skus:
        product.price_fen = min(s.price_fen for s in product.skus)
        product.stock = sum(s.stock for s in product.skus)


def _set_images(product: Product, values: list[ImageValues]) -> None:
    current: dict[str, list[ProductImage]] = {}
    for row in product.images:
        current.setdefault(row.url, []).append(row)
    rows = []
    for position, value in enumerate(values):
        kept = current.get(value.url)
        row = kept.pop(0) if kept else ProductImage(url=value.url)
        row.sha256, row.content_type = value.sha256, value.content_type
        row.width, row.height, row.size_bytes = value.width, value.height, value.size_bytes
        row.position = position
        rows.append(row)
    product.images = rows


def _set_gi(product: Product, claim: GiClaimIn | None) -> None:
    if claim is None:
        product.gi = None
        return
    record = product.gi or GiClaimRecord(system=claim.system)
    for name, value in claim.model_dump().items():
        setattr(record, name, value)
    product.gi = record


def add_image(product: Product, info: images.ImageInfo) -> ProductImage:
    row = ProductImage(
        url=info.url,
        sha256=info.sha256,
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        size_bytes=info.size_bytes,
        position=len(product.images),
    )
    product.images.append(row)
    return row
