"""The one interface every storefront adapter implements, plus small shared helpers.

Network methods are async; webhook methods are pure and synchronous (bytes in, a verified
delivery or an exception out) so they can be tested with captured deliveries.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import aiohttp

from storefront_adapters.clock import Clock, SystemClock
from storefront_adapters.credentials import Credentials
from storefront_adapters.errors import ListingError, WebhookPayloadError
from storefront_adapters.models import (
    Listing,
    OrderPage,
    PlatformOrder,
    PriceStockUpdate,
    PublishedListing,
    WebhookDelivery,
)
from storefront_adapters.transport import HttpClient, RetryPolicy


class StorefrontAdapter(ABC):
    """Publish listings, keep price and stock in step, pull orders, read webhooks."""

    platform: ClassVar[str]
    #: Body the platform expects in the 200 reply to a webhook delivery.
    webhook_ack: ClassVar[bytes] = b""

    def __init__(
        self,
        credentials: Credentials,
        http_session: aiohttp.ClientSession,
        base_url: str,
        *,
        options: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.options: Mapping[str, str] = dict(options or {})
        self.clock: Clock = clock or SystemClock()
        self.http = HttpClient(self.platform, http_session, clock=self.clock, policy=retry, rng=rng)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    @abstractmethod
    async def publish_listing(self, listing: Listing) -> PublishedListing: ...

    @abstractmethod
    async def update_price_stock(self, update: PriceStockUpdate) -> None: ...

    @abstractmethod
    async def pull_orders(self, since_cursor: str | None) -> OrderPage:
        """One page of orders changed since ``since_cursor`` (None: from the beginning)."""

    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Raise WebhookSignatureError unless the delivery is signed with our secret."""

    @abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        """Verify, then parse. Raises WebhookSignatureError or WebhookPayloadError."""

    def is_handshake(self, headers: Mapping[str, str], raw_body: bytes) -> bool:
        """True for an unsigned set-up ping that only needs a 200 and must not be stored."""
        return False

    def _check_currency(self, currency: str) -> None:
        """For a store that sells in one currency, named by the ``currency`` option."""
        store = self.options.get("currency")
        if store and store != currency:
            raise ListingError(
                f"the {self.platform} store sells in {store}; the listing is priced in {currency}"
            )


class CachedToken:
    """An access token the platform issued us, used until shortly before it expires."""

    #: Renewed this many seconds early, so that no request leaves with a token about to lapse.
    MARGIN = 300.0

    def __init__(self, clock: Clock, token: str | None = None, expires_at: float = 0.0) -> None:
        self.clock = clock
        self.token = token
        self.expires_at = expires_at

    def current(self) -> str | None:
        """The token, unless there is none or it is about to expire."""
        if self.token and self.clock.time() < self.expires_at - self.MARGIN:
            return self.token
        return None

    def keep(self, token: str, expires_at: float) -> str:
        self.token, self.expires_at = token, expires_at
        return token

    def drop(self) -> None:
        """Forget a token the platform says has expired."""
        self.token = None


async def collect_orders(
    adapter: StorefrontAdapter, since_cursor: str | None, *, max_pages: int = 1000
) -> tuple[list[PlatformOrder], str]:
    """Drain every page; returns the orders and the cursor to store for next time."""
    orders: list[PlatformOrder] = []
    cursor = since_cursor
    for _ in range(max_pages):
        page = await adapter.pull_orders(cursor)
        orders.extend(page.orders)
        cursor = page.next_cursor
        if not page.has_more:
            return orders, cursor
    raise RuntimeError(f"{adapter.platform}: more than {max_pages} pages; is the cursor moving?")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts too."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def encode_cursor(state: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(state), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise ValueError(f"not a cursor produced by this adapter: {cursor[:40]!r}") from exc
    if not isinstance(state, dict):
        raise ValueError("not a cursor produced by this adapter")
    return state


def load_json_body(raw_body: bytes, platform: str) -> Any:
    """Parse a webhook body exactly (decimals stay Decimal) or raise WebhookPayloadError."""
    if not raw_body:
        raise WebhookPayloadError(f"{platform} webhook: empty body")
    try:
        return json.loads(raw_body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookPayloadError(f"{platform} webhook: body is not JSON ({exc})") from exc
