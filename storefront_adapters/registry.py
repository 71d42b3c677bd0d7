"""Adapter lookup by platform name; the one module that knows every platform."""

from __future__ import annotations

import random
from collections.abc import Mapping

import aiohttp

from storefront_adapters.base import StorefrontAdapter
from storefront_adapters.clock import Clock
from storefront_adapters.credentials import Credentials
from storefront_adapters.douyin import DouyinAdapter
from storefront_adapters.shopify import ShopifyAdapter
from storefront_adapters.transport import RetryPolicy
from storefront_adapters.woocommerce import WooCommerceAdapter
from storefront_adapters.youzan import YouzanAdapter

ADAPTERS: Mapping[str, type[StorefrontAdapter]] = {
    ShopifyAdapter.platform: ShopifyAdapter,
    WooCommerceAdapter.platform: WooCommerceAdapter,
    DouyinAdapter.platform: DouyinAdapter,
    YouzanAdapter.platform: YouzanAdapter,
}


def get_adapter(
    platform: str,
    credentials: Credentials,
    http_session: aiohttp.ClientSession,
    base_url: str,
    *,
    options: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> StorefrontAdapter:
    try:
        adapter_type = ADAPTERS[platform]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"unknown storefront platform {platform!r} (known: {known})") from None
    return adapter_type(
        credentials, http_session, base_url, options=options, clock=clock, retry=retry, rng=rng
    )
