"""Exact conversion between platform decimal amounts and integer fen (分).

Shopify, WooCommerce and Youzan's order APIs send decimal strings in major units ("12.50");
Douyin Shop sends integers already in fen. Floats never enter: JSON is parsed with
``parse_float=Decimal`` so a number keeps the exact digits the platform sent.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from storefront_adapters.errors import AmountError

# Digits, an optional fraction; no sign, exponent, whitespace or thousands separators.
_PLAIN_DECIMAL = re.compile(r"\d+(\.\d+)?")


def to_fen(value: object, *, what: str = "amount") -> int:
    """Convert a non-negative major-unit amount ("12.50", Decimal, int) to integer fen.

    More than two decimal places are refused unless the extra digits are zeros ("12.500"
    is exactly 1250 fen; "12.505" is not representable and raises).
    """
    if isinstance(value, bool | float):
        # A float has already lost the exact digits; refusing beats guessing.
        raise AmountError(f"{what}: {value!r} is not an exact decimal amount")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError(f"{what}: {value!r} is not a finite amount")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value
    else:
        raise AmountError(f"{what}: expected a decimal string, got {type(value).__name__}")
    if text.startswith("-"):
        raise AmountError(f"{what}: {text!r} is negative")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise AmountError(f"{what}: {text!r} is not a plain decimal amount like '12.50'")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid input
        raise AmountError(f"{what}: {text!r} is not a decimal amount") from exc
    if fen != fen.to_integral_value():
        raise AmountError(f"{what}: {text!r} has more than 2 decimal places")
    return int(fen)


def fen_to_decimal(fen: int) -> str:
    """Integer fen to the two-decimal major-unit string platforms expect: 1250 -> "12.50"."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise AmountError(f"fen amount must be an int, got {type(fen).__name__}")
    if fen < 0:
        raise AmountError(f"fen amount {fen} is negative")
    return f"{fen // 100}.{fen % 100:02d}"


def fen_from_int(value: object, *, what: str = "amount") -> int:
    """Validate an amount a platform already sends in integer fen (Douyin Shop)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise AmountError(f"{what}: expected an integer number of fen, got {value!r}")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise AmountError(f"{what}: {value} fen is not a whole number")
        value = int(value)
    if value < 0:
        raise AmountError(f"{what}: {value} fen is negative")
    return value
