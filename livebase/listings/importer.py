"""Sheet rows → listing drafts, with a problem for every bad cell, by line and column.

One row is one SKU. The ``product`` column groups the rows of a product: the id of an existing
product updates it (its SKUs become exactly the rows given), any other text (``new-1``) is a
label for a new product. Product columns may be repeated on every row or left blank after the
first; a different value is a problem. For an update, a column left out of the file keeps the
product's value, while a blank cell clears it (status and currency, which cannot be empty,
keep theirs). This module only reads and checks; ``livebase.listings.bulk`` looks the
references up in the database and stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from livebase.listings.models import MAX_SKUS, ListingFields, SkuIn, duplicates
from livebase.listings.tables import Sheet

MAX_ID = 2**31 - 1
SKU_COLUMNS = ("sku", "spec_zh", "spec_en", "price_fen", "stock")
GI_COLUMNS = (
    "gi_system",
    "gi_registered_name",
    "gi_registration_number",
    "gi_holder",
    "gi_protected_area",
    "gi_standard_code",
    "gi_credit_code",
    "gi_authorisation_ref",
)
PRODUCT_COLUMNS = (
    "merchant_id",
    "title_zh",
    "title_en",
    "description_zh",
    "description_en",
    "category",
    "themes",
    "status",
    "currency",
    "images",
    *GI_COLUMNS,
)
COLUMNS = (
    "product",
    "merchant_id",
    "title_zh",
    "title_en",
    "description_zh",
    "description_en",
    "category",
    "themes",
    "status",
    "currency",
    *SKU_COLUMNS,
    "images",
    *GI_COLUMNS,
)
"""Every column, in the order an export writes them."""
REQUIRED = ("product", "title_zh", "sku", "price_fen")
KEEP_WHEN_BLANK = ("status", "currency")
# Theme slugs never contain punctuation; URLs may contain commas and semicolons, not | or spaces.
SPLIT = {"themes": re.compile(r"[|,;\s]+"), "images": re.compile(r"[|\s]+")}


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str
    message: str


class ImportRejected(ValueError):
    """The file cannot be imported at all (its header is wrong); nothing is stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("the file's header is not valid")
        self.problems = problems


@dataclass
class Draft:
    """One product of the file: what to create or update, and what is wrong with it."""

    key: str
    product_id: int | None
    lines: list[int]
    merchant_id: int | None = None
    listing: ListingFields | None = None
    given: frozenset[str] = frozenset()
    """The listing fields the file sets (for an update, the others keep their value)."""
    skus: list[SkuIn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.lines[0]

    def problem(self, column: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(line or self.line, column, message))


@dataclass
class Plan:
    columns: tuple[str, ...]
    drafts: list[Draft]
    problems: list[Problem]
    """Problems of rows that belong to no product (no ``product`` value)."""

    def all_problems(self) -> list[Problem]:
        found = [*self.problems, *(p for d in self.drafts for p in d.problems)]
        return sorted(found, key=lambda p: (p.line, p.column))


def check_header(sheet: Sheet) -> tuple[str, ...]:
    problems = []
    line = sheet.header_line
    for i, name in enumerate(sheet.header, start=1):
        if name and name not in COLUMNS:
            known = ", ".join(COLUMNS)
            problems.append(Problem(line, name, f"unknown column (column {i}); known: {known}"))
    for name in duplicates([n for n in sheet.header if n]):
        problems.append(Problem(line, name, "the column appears more than once"))
    for name in REQUIRED:
        if name not in sheet.header:
            problems.append(Problem(line, name, "the column is required"))
    if problems:
        raise ImportRejected(problems)
    return sheet.header


def plan(sheet: Sheet) -> Plan:
    """Group and check the rows; ``ImportRejected`` if the header itself is wrong."""
    header = check_header(sheet)
    result = Plan(columns=header, drafts=[], problems=[])
    groups: dict[str, Draft] = {}
    first: dict[str, dict[str, str]] = {}
    for row in sheet.rows:
        cells = dict(zip(header, row.cells, strict=False))
        cells.pop("", None)
        if len(row.cells) > len(header) or any(
            v for name, v in zip(header, row.cells, strict=False) if not name
        ):
            result.problems.append(Problem(row.line, "(row)", "a value is under no column name"))
            continue
        key = cells["product"]
        if not key:
            message = "required: the id of an existing product, or a label such as new-1"
            result.problems.append(Problem(row.line, "product", message))
            continue
        product_id: int | None = None
        if key.isascii() and key.isdigit():
            product_id = int(key)
            key = str(product_id)
        draft = groups.get(key)
        if draft is None:
            draft = groups[key] = Draft(key=key, product_id=product_id, lines=[row.line])
            first[key] = cells
            result.drafts.append(draft)
            if product_id is not None and not 1 <= product_id <= MAX_ID:
                draft.problem("product", f"no product #{key} in this base")
        else:
            draft.lines.append(row.line)
            _same_product_values(draft, first[key], cells, row.line)
        _sku(draft, cells, row.line)
    for draft in result.drafts:
        _listing(draft, first[draft.key], header)
        for code in duplicates([s.sku for s in draft.skus if s.sku]):
            lines = [ln for ln, s in zip(draft.lines, draft.skus, strict=False) if s.sku == code]
            draft.problem("sku", f"SKU {code!r} appears twice (also line {lines[0]})", lines[-1])
        if len(draft.lines) > MAX_SKUS:
            draft.problem("sku", f"a product has at most {MAX_SKUS} SKUs")
    return result


def _same_product_values(
    draft: Draft, first: dict[str, str], cells: dict[str, str], line: int
) -> None:
    for name in PRODUCT_COLUMNS:
        value = cells.get(name, "")
        if value and value != first.get(name, ""):
            draft.problem(name, f"differs from line {draft.line}, the product's first row", line)


def _int(value: str) -> int | str:
    """The whole number in ``value``, or the text of a problem with it."""
    text = value.strip()
    if re.fullmatch(r"[+-]?\d{1,30}", text):
        return int(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return f"{value!r} is not a whole number"
    if not number.is_finite():
        return f"{value!r} is not a whole number"
    # Spreadsheets write large numbers as 1E+3; a huge exponent must not become a huge int.
    if number.adjusted() > 30:
        return f"{value!r} is out of range"
    if number == number.to_integral_value():
        return int(number)
    return f"{value!r} is not a whole number (amounts are in fen: ¥39.80 is 3980)"


def _sku(draft: Draft, cells: dict[str, str], line: int) -> None:
    data: dict[str, Any] = {}
    unreadable = set()
    for name in SKU_COLUMNS:
        value = cells.get(name, "")
        if not value:
            continue
        if name in ("price_fen", "stock"):
            number = _int(value)
            if isinstance(number, str):
                draft.problem(name, number, line)
                unreadable.add(name)
                continue
            data[name] = number
        else:
            data[name] = value
    try:
        sku = SkuIn.model_validate(data)
        if not unreadable:
            draft.skus.append(sku)
            return
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            column = str(err["loc"][0]) if err["loc"] else "sku"
            if column not in unreadable:
                draft.problem(column, _message(err), line)
    # A stand-in keeps the SKUs in step with the draft's lines.
    draft.skus.append(SkuIn.model_construct(sku=str(data.get("sku", "")), price_fen=0))


def _listing(draft: Draft, cells: dict[str, str], header: Iterable[str]) -> None:
    present = set(header)
    data: dict[str, Any] = {}
    for name in PRODUCT_COLUMNS:
        if name not in present or name.startswith("gi_"):
            continue
        value = cells.get(name, "")
        if name == "merchant_id":
            if value:
                number = _int(value)
                if isinstance(number, str) or not 1 <= number <= MAX_ID:
                    draft.problem(name, f"no merchant #{value} in this base")
                else:
                    draft.merchant_id = number
        elif name in ("themes", "images"):
            data[name] = [v for v in SPLIT[name].split(value) if v]
        elif value or name not in KEEP_WHEN_BLANK:
            data[name] = value or None
    if present & set(GI_COLUMNS):
        gi = {c.removeprefix("gi_"): cells[c] for c in GI_COLUMNS if c in present and cells[c]}
        if gi and "system" not in gi:
            message = "required when other gi_ columns are filled"
            draft.problem("gi_system", message + ": protected_product, trademark or agricultural")
            gi = {}
        data["gi"] = gi or None
    if data.get("title_zh") is None:
        data.pop("title_zh", None)
    try:
        draft.listing = ListingFields.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            draft.problem(_column(err["loc"]), _message(err))
    draft.given = frozenset(data)


def _column(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "(row)"
    if loc[0] == "gi":
        return "gi_" + str(loc[1]) if len(loc) > 1 else "gi_system"
    return str(loc[0])


def _message(err: Any) -> str:
    loc = err["loc"]
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        return "required"
    if len(loc) > 1 and isinstance(loc[1], int):
        return f"item {loc[1] + 1} ({err.get('input')!r}): {message}"
    return message
