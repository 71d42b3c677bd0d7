"""Webhook intake: verify, parse, and let each delivery through only once.

The ledger is a small Protocol so the wiring can back it with Redis (SET NX with a TTL)
while tests and single-process tools use the in-memory one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from storefront_adapters.base import StorefrontAdapter
from storefront_adapters.models import WebhookDelivery


class DeliveryLedger(Protocol):
    async def first_seen(self, key: str) -> bool:
        """Record ``key``; True only the first time it is offered."""
        ...


class MemoryDeliveryLedger:
    """Bounded in-memory ledger; forgets the oldest keys beyond ``capacity``."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    async def first_seen(self, key: str) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


async def accept_webhook(
    adapter: StorefrontAdapter,
    ledger: DeliveryLedger,
    headers: Mapping[str, str],
    raw_body: bytes,
) -> WebhookDelivery | None:
    """The verified delivery, or None for a replay. Bad signatures and bodies raise.

    The ledger is written only after verification and parsing succeed, so a forged or
    malformed delivery never burns the id of a genuine one.
    """
    delivery = adapter.parse_webhook(headers, raw_body)
    if not await ledger.first_seen(f"{delivery.platform}:{delivery.delivery_id}"):
        return None
    return delivery
