"""Helpers shared by the storefront fakes and tests (a module of its own, so that no test
imports a conftest by name)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping

import pytest
from aiohttp import web

from storefront_adapters import (
    DeliveryLedger,
    PlatformOrder,
    StorefrontAdapter,
    accept_webhook,
)


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


Serve = Callable[[web.Application], Awaitable[str]]


async def stored_orders(
    shop: StorefrontAdapter,
    ledger: DeliveryLedger,
    deliveries: Iterable[tuple[Mapping[str, str], bytes]],
) -> list[PlatformOrder]:
    """Accept each (headers, body) delivery as the webhook endpoint does; the orders kept."""
    stored: list[PlatformOrder] = []
    for headers, body in deliveries:
        delivery = await accept_webhook(shop, ledger, headers, body)
        if delivery is not None:
            stored.extend(delivery.orders)
    return stored


def assert_not_leaked(logs: pytest.LogCaptureFixture, secrets: Iterable[str], *texts: str) -> None:
    """The adapter logged its requests, and no secret shows in the logs or in ``texts``
    (error messages, reprs)."""
    assert logs.records, "the adapter is expected to log its requests"
    seen = "\n".join((logs.text, *texts))
    for secret in secrets:
        assert secret not in seen
