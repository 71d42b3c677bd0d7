"""Money conversion, listing validation, credential masking, registry and imports."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

import storefront_adapters
from storefront_adapters import (
    ADAPTERS,
    Credentials,
    Listing,
    ListingError,
    OrderStatus,
    PlatformOrder,
    PriceStockUpdate,
    Sku,
    get_adapter,
)
from storefront_adapters.errors import AmountError
from storefront_adapters.models import tracking_from_pairs, tracking_from_url
from storefront_adapters.money import fen_from_int, fen_to_decimal, to_fen


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("0.01", 1),
        ("199", 19900),
        ("12.500", 1250),
        (Decimal("403.00"), 40300),
        (7, 700),
        ("0", 0),
    ],
)
def test_decimal_strings_convert_exactly_to_fen(value: object, fen: int) -> None:
    assert to_fen(value) == fen


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.505", "more than 2 decimal places"),
        ("-1.00", "negative"),
        ("1e3", "plain decimal"),
        (" 1.00", "plain decimal"),
        ("NaN", "plain decimal"),
        ("1,000.00", "plain decimal"),
        (12.5, "not an exact decimal"),
        (True, "not an exact decimal"),
        (None, "expected"),
    ],
)
def test_inexact_or_negative_amounts_are_refused(value: object, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        to_fen(value, what="total")


def test_fen_helpers() -> None:
    assert fen_to_decimal(1250) == "12.50"
    assert fen_to_decimal(5) == "0.05"
    assert fen_from_int(1999) == 1999
    assert fen_from_int(Decimal("1999")) == 1999
    for bad in (-1, "19", Decimal("1.5"), True):
        with pytest.raises(AmountError):
            fen_from_int(bad)
    with pytest.raises(AmountError, match="negative"):
        fen_to_decimal(-1)


def test_listing_validation_gives_clear_errors() -> None:
    with pytest.raises(ListingError, match="SKU A-1: price -100 fen is negative"):
        Sku("A-1", price_fen=-100, stock=1)
    with pytest.raises(ListingError, match="stock must be a non-negative integer"):
        Sku("A-1", price_fen=100, stock=-1)
    with pytest.raises(ListingError, match="duplicate SKU codes: A-1"):
        Listing("鱼干", "d", (Sku("A-1", 1, 1), Sku("A-1", 2, 2)))
    with pytest.raises(ListingError, match="at least one SKU"):
        Listing("鱼干", "d", ())
    with pytest.raises(ListingError, match="not http"):
        Listing("鱼干", "d", (Sku("A-1", 1, 1),), image_urls=("ftp://x/y.jpg",))
    with pytest.raises(ListingError, match="share a currency"):
        Listing("鱼干", "d", (Sku("A-1", 1, 1), Sku("A-2", 1, 1, currency="USD")))
    with pytest.raises(ListingError, match="negative"):
        PriceStockUpdate("1", "A-1", price_fen=-5)
    with pytest.raises(ListingError, match="nothing to update"):
        PriceStockUpdate("1", "A-1")
    listing = Listing("汕尾鱼干", "d", (Sku("A-1", 1, 1),), title_en="Dried fish")
    assert listing.title("en") == "Dried fish" and listing.title("zh") == "汕尾鱼干"


def test_orders_are_utc_and_tracking_is_read_from_links_and_attributes() -> None:
    order = PlatformOrder(
        "shopify",
        "1",
        OrderStatus.PAID,
        datetime.fromisoformat("2024-11-10T10:30:00-05:00"),
        "USD",
        100,
    )
    assert order.placed_at.isoformat() == "2024-11-10T15:30:00+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        PlatformOrder("shopify", "1", OrderStatus.PAID, datetime(2024, 1, 1), "USD", 1)
    url = "https://shop.example/products/fish?lb_session=s-9&lb_host=h-2&utm_source=x"
    assert tracking_from_url(url) == {"lb_session": "s-9", "lb_host": "h-2"}
    assert tracking_from_url("/products/fish?lb_product=p-1") == {"lb_product": "p-1"}
    assert tracking_from_url(None) == {}
    assert tracking_from_pairs([("lb_host", " h-3 "), ("gift", "no"), ("lb_session", "")]) == {
        "lb_host": "h-3"
    }


def test_credentials_never_show_their_secrets() -> None:
    creds = Credentials(
        key="ck_visible_marker_1",
        secret="cs_visible_marker_2",
        access_token="tok_visible_marker_3",
        webhook_secret="wh_visible_marker_4",
        account_id="shop-42",
    )
    for text in (repr(creds), str(creds), f"{creds}", str(creds.model_dump())):
        assert "visible_marker" not in text
    assert "shop-42" in repr(creds)
    assert creds.reveal_secret() == "cs_visible_marker_2"


async def test_registry_knows_every_platform(http_session: aiohttp.ClientSession) -> None:
    assert set(ADAPTERS) == {"shopify", "woocommerce", "douyin", "youzan"}
    creds = Credentials(secret="s")
    for platform, adapter_type in ADAPTERS.items():
        adapter = get_adapter(platform, creds, http_session, "http://127.0.0.1:9/")
        assert isinstance(adapter, adapter_type) and adapter.platform == platform
    with pytest.raises(ValueError, match="unknown storefront platform 'taobao'"):
        get_adapter("taobao", creds, http_session, "http://127.0.0.1:9")


PACKAGE = Path(storefront_adapters.__file__).parent
MODULES = sorted(
    f"storefront_adapters.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"
)


@pytest.mark.parametrize("module", ["storefront_adapters", *MODULES])
def test_every_module_imports_on_its_own_and_never_pulls_in_ingest_or_analytics(
    module: str,
) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ingest', 'analytics'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
