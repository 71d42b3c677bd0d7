"""Bulk import and export of a base's listings; the sheet layout is in ``importer``.

An import either stores every product of the file or none (``all_or_nothing``), or stores the
products whose rows are all good and reports the others (``good_rows``). Either way every bad
row is reported with its line and column. A product is the unit: one bad SKU row keeps its whole
product out, since storing the other SKUs alone would drop that one.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import Merchant, Product
from livebase.listings import store
from livebase.listings.importer import COLUMNS, Draft, Plan, Problem


class Mode(enum.StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    GOOD_ROWS = "good_rows"


class ImportFailed(ValueError):
    """All or nothing, and something was wrong: nothing is stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems; nothing was imported")
        self.problems = problems


@dataclass
class Outcome:
    rows: int
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    skipped_lines: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the caller may import: a base, and a merchant's own listings only if set."""

    base_id: int
    merchant_id: int | None = None

    def products(self) -> list[ColumnElement[bool]]:
        clauses = [Product.base_id == self.base_id]
        if self.merchant_id is not None:
            clauses.append(Product.merchant_id == self.merchant_id)
        return clauses


async def run_import(
    db: AsyncSession, data_dir: Path, scope: Scope, plan: Plan, mode: Mode
) -> Outcome:
    ids = [d.product_id for d in plan.drafts if d.product_id is not None]
    found = await db.scalars(select(Product).where(Product.id.in_(ids), *scope.products()))
    existing = {p.id: p for p in found}
    merchant_ids = {d.merchant_id for d in plan.drafts if d.merchant_id is not None}
    in_base = Merchant.base_id == scope.base_id
    merchants = set(
        await db.scalars(select(Merchant.id).where(Merchant.id.in_(merchant_ids), in_base))
    )
    ready: list[tuple[Draft, Product | None, store.Checked]] = []
    for draft in plan.drafts:
        product = existing.get(draft.product_id) if draft.product_id is not None else None
        if draft.product_id is not None and product is None:
            draft.problem("product", f"no product #{draft.product_id} in this base")
        merchant_id = _merchant(draft, product, scope, merchants)
        if draft.listing is None or draft.problems:
            continue
        checked = await store.check(db, data_dir, product, _change(draft, product is None))
        for err in checked.errors:
            draft.problem(err.field.replace("gi.", "gi_"), err.message)
        if not draft.problems and merchant_id is not None:
            ready.append((draft, product, checked))
    outcome = Outcome(rows=sum(len(d.lines) for d in plan.drafts) + len(plan.problems))
    outcome.problems = plan.all_problems()
    if outcome.problems and mode is Mode.ALL_OR_NOTHING:
        raise ImportFailed(outcome.problems)
    outcome.skipped_lines = sorted(
        [p.line for p in plan.problems] + [ln for d in plan.drafts if d.problems for ln in d.lines]
    )
    created: list[Product] = []
    for draft, product, checked in ready:
        if product is None:
            merchant_id = scope.merchant_id or draft.merchant_id
            assert merchant_id is not None  # checked by _merchant
            product = store.new_product(scope.base_id, merchant_id, checked)
            db.add(product)
            created.append(product)
        else:
            store.apply(product, checked)
            outcome.updated.append(product.id)
    await db.flush()
    outcome.created = [p.id for p in created]
    return outcome


def _merchant(draft: Draft, product: Product | None, scope: Scope, known: set[int]) -> int | None:
    """The merchant the product belongs to, or None after noting why it cannot be had."""
    if scope.merchant_id is not None:
        return scope.merchant_id  # a merchant imports its own listings, as it creates them
    if product is not None:
        if draft.merchant_id is not None and draft.merchant_id != product.merchant_id:
            draft.problem("merchant_id", "a product cannot be moved to another merchant")
        return product.merchant_id
    if draft.merchant_id is None:
        if draft.product_id is None:
            draft.problem("merchant_id", "required for a new product")
        return None
    if draft.merchant_id not in known:
        draft.problem("merchant_id", f"no merchant #{draft.merchant_id} in this base")
        return None
    return draft.merchant_id


def _change(draft: Draft, new: bool) -> store.Change:
    listing = draft.listing
    assert listing is not None
    given = draft.given

    def wanted(name: str) -> bool:
        return new or name in given

    return store.Change(
        values={n: getattr(listing, n) for n in store.SCALARS if wanted(n)},
        skus=draft.skus,
        themes=listing.themes if wanted("themes") else None,
        images=listing.images if wanted("images") else None,
        gi=listing.gi if wanted("gi") else store.KEEP,
    )


async def export_rows(
    db: AsyncSession, scope: Scope, filters: Sequence[ColumnElement[bool]] = ()
) -> list[list[Any]]:
    """One row per SKU, in the columns of ``importer.COLUMNS``."""
    products = await db.scalars(
        select(Product).where(*scope.products(), *filters).order_by(Product.id)
    )
    return [_row(p, sku_index) for p in products for sku_index in range(len(p.skus))]


def _row(product: Product, index: int) -> list[Any]:
    sku = product.skus[index]
    claim = product.gi
    values: dict[str, Any] = {
        "product": product.id,
        "merchant_id": product.merchant_id,
        "title_zh": product.title_zh,
        "title_en": product.title_en,
        "description_zh": product.description_zh,
        "description_en": product.description_en,
        "category": product.category,
        "themes": "|".join(t.slug for t in product.themes),
        "status": product.status.value,
        "currency": product.currency,
        "sku": sku.sku,
        "spec_zh": sku.spec_zh,
        "spec_en": sku.spec_en,
        "price_fen": sku.price_fen,
        "stock": sku.stock,
        "images": "|".join(i.url for i in product.images),
    }
    if claim is not None:
        values["gi_system"] = claim.system.value
        for name in ("registered_name", "registration_number", "holder", "protected_area",
                     "standard_code", "credit_code", "authorisation_ref"):  # fmt: skip
            values[f"gi_{name}"] = getattr(claim, name)
    return [values.get(column) for column in COLUMNS]
