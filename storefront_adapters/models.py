"""Platform-neutral data: what we publish and what the platforms tell us about orders.

Plain frozen dataclasses that validate on construction, so a bad listing fails before any
request leaves the process and a half-parsed order can never reach the wiring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

from storefront_adapters.errors import ListingError

#: Query parameters / order attributes that tie an order back to a live session.
TRACKING_KEYS: tuple[str, ...] = ("lb_session", "lb_host", "lb_product")

_CURRENCY = re.compile(r"[A-Z]{3}")


class OrderStatus(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


def tracking_from_pairs(pairs: Iterable[tuple[object, object]]) -> dict[str, str]:
    """Keep the tracking keys from (name, value) pairs such as order note attributes."""
    found: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).strip()
        if key in TRACKING_KEYS and value is not None and str(value).strip():
            found[key] = str(value).strip()
    return found


def tracking_from_url(url: object) -> dict[str, str]:
    """Tracking keys from a product link or landing page, absolute or path-only."""
    if not isinstance(url, str) or not url:
        return {}
    return tracking_from_pairs(parse_qsl(urlsplit(url).query, keep_blank_values=False))


@dataclass(frozen=True, slots=True)
class Sku:
    code: str
    price_fen: int
    stock: int
    currency: str = "CNY"
    label: str | None = None  # option value shown to buyers, e.g. "500g"; defaults to code

    def __post_init__(self) -> None:
        if not self.code.strip():
            raise ListingError("SKU code must not be empty")
        if isinstance(self.price_fen, bool) or not isinstance(self.price_fen, int):
            raise ListingError(f"SKU {self.code}: price must be an integer number of fen")
        if self.price_fen < 0:
            raise ListingError(f"SKU {self.code}: price {self.price_fen} fen is negative")
        if isinstance(self.stock, bool) or not isinstance(self.stock, int) or self.stock < 0:
            raise ListingError(f"SKU {self.code}: stock must be a non-negative integer")
        if not _CURRENCY.fullmatch(self.currency):
            raise ListingError(f"SKU {self.code}: currency {self.currency!r} is not ISO 4217")

    @property
    def option(self) -> str:
        return self.label or self.code


@dataclass(frozen=True, slots=True)
class Listing:
    title_zh: str
    description: str
    skus: tuple[Sku, ...]
    title_en: str | None = None
    image_urls: tuple[str, ...] = ()
    #: Platform-specific required fields, e.g. Douyin's ``category_leaf_id``.
    platform_fields: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.title_zh.strip():
            raise ListingError("listing needs a Chinese title (title_zh)")
        if not self.skus:
            raise ListingError("listing needs at least one SKU")
        codes = [sku.code for sku in self.skus]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ListingError(f"duplicate SKU codes: {', '.join(duplicates)}")
        if len({sku.currency for sku in self.skus}) > 1:
            raise ListingError("all SKUs of one listing must share a currency")
        for url in self.image_urls:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ListingError(f"image URL {url!r} is not http(s)")
        object.__setattr__(self, "platform_fields", MappingProxyType(dict(self.platform_fields)))

    @property
    def currency(self) -> str:
        return self.skus[0].currency

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" and self.title_en else self.title_zh


@dataclass(frozen=True, slots=True)
class PublishedListing:
    platform: str
    external_product_id: str
    #: SKU code -> the platform's own SKU/variant id.
    sku_ids: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PriceStockUpdate:
    external_product_id: str
    sku_code: str
    price_fen: int | None = None
    stock: int | None = None
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if self.price_fen is None and self.stock is None:
            raise ListingError(f"SKU {self.sku_code}: nothing to update (no price, no stock)")
        if self.price_fen is not None and (
            isinstance(self.price_fen, bool) or not isinstance(self.price_fen, int)
        ):
            raise ListingError(f"SKU {self.sku_code}: price must be an integer number of fen")
        if self.price_fen is not None and self.price_fen < 0:
            raise ListingError(f"SKU {self.sku_code}: price {self.price_fen} fen is negative")
        if self.stock is not None and (
            isinstance(self.stock, bool) or not isinstance(self.stock, int) or self.stock < 0
        ):
            raise ListingError(f"SKU {self.sku_code}: stock must be a non-negative integer")
        if not self.external_product_id.strip() or not self.sku_code.strip():
            raise ListingError("a price/stock update needs a product id and a SKU code")


@dataclass(frozen=True, slots=True)
class LineItem:
    external_product_id: str
    external_sku_id: str | None
    sku_code: str | None
    quantity: int
    amount_fen: int  # what the buyer paid for this line, after line discounts
    title: str = ""


@dataclass(frozen=True, slots=True)
class PlatformOrder:
    platform: str
    platform_order_id: str
    status: OrderStatus
    placed_at: datetime  # timezone-aware, UTC
    currency: str
    amount_fen: int
    line_items: tuple[LineItem, ...] = ()
    buyer_ref: str | None = None
    tracking: Mapping[str, str] = field(default_factory=dict)
    #: False when the source (e.g. a Douyin push) carried only a summary: then only the id,
    #: status and amount are known, ``placed_at`` is the event's time and there are no line
    #: items. Fetch the order with ``pull_orders`` before storing it.
    complete: bool = True

    def __post_init__(self) -> None:
        if self.placed_at.tzinfo is None:
            raise ValueError(f"order {self.platform_order_id}: placed_at must be timezone-aware")
        object.__setattr__(self, "placed_at", self.placed_at.astimezone(UTC))
        object.__setattr__(self, "tracking", _frozen(self.tracking))


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[PlatformOrder, ...]
    #: Opaque; pass it back to ``pull_orders`` to continue. Store it once ``has_more`` is False.
    next_cursor: str
    has_more: bool


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    platform: str
    #: Stable for a replayed delivery: store it and drop deliveries already seen.
    delivery_id: str
    topic: str
    orders: tuple[PlatformOrder, ...] = ()
