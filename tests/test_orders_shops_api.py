"""Managing shop connections and their listing mappings: bad input is refused cleanly."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import World
from orders_support import CREDENTIALS, ok, stage

HF = "/api/v1/bases/haifeng"


def shop(**changes: Any) -> dict[str, Any]:
    body = {"platform": "youzan", "shop_ref": "63077", "api_base_url": "https://open.youzanyun.com",
            "credentials": CREDENTIALS["youzan"]}  # fmt: skip
    return {k: v for k, v in (body | changes).items() if v is not ...}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (shop(platform="taobao"), "platform"),
        (shop(api_base_url="ftp://x"), "api_base_url"),
        (shop(credentials={"key": "k"}), "credentials.secret"),
        (shop(credentials={"secret": ""}), "credentials.secret"),
        (shop(credentials={"secret": "s", "password": "p"}), "credentials.password"),
        (shop(shop_ref=...), "shop_ref"),
        (shop(options={"k": 1}), "options.k"),
    ],
)
async def test_a_bad_shop_is_refused_naming_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    status, payload = await world.api.call("POST", f"{HF}/shops", world.tokens["admin"], body)
    assert status == 422, payload
    assert field in [f["field"] for f in payload["error"]["fields"]], payload


async def test_shops_are_unique_per_platform_and_merchants_create_their_own(world: World) -> None:
    created = await ok(world, "POST", f"{HF}/shops", shop(), token=world.tokens["haifeng.merchant"])
    assert created["merchant_id"] == world.ids["haifeng.merchant"]
    assert created["webhook_path"] == f"/webhooks/youzan/{created['id']}"
    status, payload = await world.api.call("POST", f"{HF}/shops", world.tokens["admin"], shop())
    assert status == 409 and payload["error"]["code"] == "conflict"
    path = f"{HF}/shops/{created['id']}"
    for body in ({"enabled": None}, {"credentials": None}, {"shop_ref": "x"}, {"name": None}):
        status, payload = await world.api.call("PATCH", path, world.tokens["admin"], body)
        assert status == 422, (body, payload)


async def test_listing_mappings_are_checked(world: World) -> None:
    st = await stage(world, "shopify")
    other = await ok(world, "POST", f"{HF}/products", {
        "merchant_id": world.ids["haifeng.other_merchant"], "title_zh": "别家的", "price_fen": 1,
    })  # fmt: skip
    path = f"{HF}/shops/{st.shop_id}/listings"
    bad = [
        {"external_product_id": "1", "product_id": other["id"]},  # another merchant's
        {"external_product_id": "2", "product_id": st.product_id, "sku": "NOPE"},
        {"external_product_id": "3", "product_id": 999_999},
        {"external_product_id": "4", "product_id": st.product_id},
        {"external_product_id": "4", "product_id": st.product_id},
    ]
    status, payload = await world.api.call("PUT", path, world.tokens["admin"], {"listings": bad})
    assert status == 422, payload
    fields = [f["field"] for f in payload["error"]["fields"]]
    assert fields == ["listings.0.product_id", "listings.1.sku", "listings.2.product_id",
                      "listings.4"]  # fmt: skip
    kept = await ok(world, "GET", path)
    assert kept["listings"] == [{"external_product_id": st.ext_product,
                                 "external_sku_id": st.ext_sku, "product_id": st.product_id,
                                 "sku": "SQ-250"}]  # fmt: skip
