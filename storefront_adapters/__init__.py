"""Storefront adapters: one module per store platform behind one interface.

The front door: import from here. Modules depend one way only: errors/money/models/
credentials/clock -> transport/signatures -> base -> one module per platform -> registry.
"""

from storefront_adapters.base import StorefrontAdapter, collect_orders
from storefront_adapters.clock import Clock, SystemClock
from storefront_adapters.credentials import Credentials
from storefront_adapters.dedup import DeliveryLedger, MemoryDeliveryLedger, accept_webhook
from storefront_adapters.errors import (
    AmountError,
    AuthenticationError,
    ListingError,
    PlatformError,
    StorefrontError,
    ThrottledError,
    UnknownProductError,
    UnknownSkuError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from storefront_adapters.models import (
    TRACKING_KEYS,
    LineItem,
    Listing,
    OrderPage,
    OrderStatus,
    PlatformOrder,
    PriceStockUpdate,
    PublishedListing,
    Sku,
    WebhookDelivery,
)
from storefront_adapters.registry import ADAPTERS, get_adapter
from storefront_adapters.transport import RetryPolicy

__all__ = [
    "ADAPTERS",
    "TRACKING_KEYS",
    "AmountError",
    "AuthenticationError",
    "Clock",
    "Credentials",
    "DeliveryLedger",
    "LineItem",
    "Listing",
    "ListingError",
    "MemoryDeliveryLedger",
    "OrderPage",
    "OrderStatus",
    "PlatformError",
    "PlatformOrder",
    "PriceStockUpdate",
    "PublishedListing",
    "RetryPolicy",
    "Sku",
    "StorefrontAdapter",
    "StorefrontError",
    "SystemClock",
    "ThrottledError",
    "UnknownProductError",
    "UnknownSkuError",
    "WebhookDelivery",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "accept_webhook",
    "collect_orders",
    "get_adapter",
]
