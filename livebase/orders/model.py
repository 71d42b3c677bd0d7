"""What the order intake takes in and gives out, free of any platform's shapes.

The wiring maps a storefront adapter's ``PlatformOrder`` onto :class:`IncomingOrder`, so this
package never imports the adapters (nor they it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from livebase.db.models import OrderStatus


@dataclass(frozen=True, slots=True)
class IncomingLine:
    external_product_id: str
    external_sku_id: str | None
    sku_code: str | None
    quantity: int
    amount_fen: int


@dataclass(frozen=True, slots=True)
class IncomingOrder:
    platform: str
    platform_order_id: str
    status: OrderStatus
    placed_at: datetime
    currency: str
    amount_fen: int
    lines: tuple[IncomingLine, ...] = ()
    buyer_ref: str | None = None
    tracking: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Shop:
    """The connection an order came through, as the intake needs it."""

    connection_id: int
    base_id: int
    base_slug: str


@dataclass(frozen=True, slots=True)
class OrderNews:
    """A change analytics counts: an order paid, or money returned on one.

    Only orders credited to a session (analytics counts per session) whose stock was not
    refused make news; a refund is news only when the order's payment was.
    """

    kind: str  # "paid" or "refunded"
    base_slug: str
    room_slug: str
    session_id: int
    order_id: int
    platform: str
    platform_order_id: str
    buyer_ref: str | None
    product_id: int | None
    quantity: int
    amount_fen: int
    currency: str
    at: datetime


@dataclass(slots=True)
class IntakeResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    accepted: int = 0
    refused: int = 0
    news: list[OrderNews] = field(default_factory=list)

    def add(self, other: IntakeResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.accepted += other.accepted
        self.refused += other.refused
        self.news.extend(other.news)
