"""Shop order deliveries as each platform sends them, signed as each platform documents.

Bodies start from the documented samples in tests/storefront/payloads and the message
references the storefront tests quote; signatures are computed here without the adapters' code
(HMAC built from hashlib alone, see tests/storefront/vectors.py; MD5 from hashlib).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

from api_support import World

STOREFRONT = Path(__file__).parent / "storefront"
if str(STOREFRONT) not in sys.path:  # the fakes and vectors live beside the adapter tests
    sys.path.insert(0, str(STOREFRONT))

from fake_douyin import APP_KEY, APP_SECRET, SHOP_ID, FakeDouyin  # noqa: E402
from fake_woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce  # noqa: E402
from fake_woocommerce import order as wc_order  # noqa: E402
from vectors import hand_hmac_sha256  # noqa: E402

__all__ = ["FakeDouyin", "FakeWooCommerce", "wc_order"]
PLATFORMS = ("shopify", "woocommerce", "douyin", "youzan")
BEIJING = timezone(timedelta(hours=8))
SHOPIFY_SECRET = "shpss_fake_client_secret_77c1"
WC_KEY, WC_SECRET, WC_WEBHOOK_SECRET = CONSUMER_KEY, CONSUMER_SECRET, "wc-webhook-secret-31f5"
YZ_CLIENT_ID, YZ_SECRET, YZ_GRANT = "yz-client-6a", "yz-client-secret-0c4e", "63077"

CREDENTIALS: dict[str, dict[str, str]] = {
    "shopify": {"secret": SHOPIFY_SECRET, "access_token": "shpat_fake_token_9f"},
    "woocommerce": {"key": WC_KEY, "secret": WC_SECRET, "webhook_secret": WC_WEBHOOK_SECRET},
    "douyin": {"key": APP_KEY, "secret": APP_SECRET, "account_id": SHOP_ID},
    "youzan": {"key": YZ_CLIENT_ID, "secret": YZ_SECRET, "account_id": YZ_GRANT},
}
# Every secret above; none may ever appear in an answer or a log line.
SECRETS = sorted(
    {v for c in CREDENTIALS.values() for k, v in c.items() if k != "account_id" and k != "key"}
)


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hand_hmac_sha256(secret.encode(), body)).decode()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class Sale:
    """One platform order to deliver: its id, what was bought, when, and its tracking."""

    order_id: str
    ext_product: str
    ext_sku: str
    sku_code: str | None = None
    quantity: int = 1
    unit_fen: int = 1990
    # A second ahead: platforms give times to the second, and the pin was made just now.
    placed_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(seconds=1))
    tracking: dict[str, str] = field(default_factory=dict)
    status: str = "paid"  # paid, refunded, cancelled
    buyer: str = "buyer-1"

    @property
    def amount_fen(self) -> int:
        return self.unit_fen * self.quantity


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _link(sale: Sale, base: str) -> str:
    return base + ("?" + urlencode(sale.tracking) if sale.tracking else "")


def shopify(sale: Sale, delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.loads((STOREFRONT / "payloads" / "shopify_orders_create.json").read_text())
    item = copy.deepcopy(body["line_items"][0])
    unit = yuan(sale.unit_fen)
    item |= {"product_id": int(sale.ext_product), "variant_id": int(sale.ext_sku),
             "sku": sale.sku_code or "", "quantity": sale.quantity, "price": unit,
             "total_discount": "0.00", "discount_allocations": []}  # fmt: skip
    body |= {
        "id": int(sale.order_id),
        "created_at": sale.placed_at.astimezone(BEIJING).isoformat(timespec="seconds"),
        "currency": "CNY",
        "financial_status": "refunded" if sale.status == "refunded" else "paid",
        "cancelled_at": sale.placed_at.isoformat() if sale.status == "cancelled" else None,
        "total_price": yuan(sale.amount_fen),
        "landing_site": _link(sale, "/products/squid"),
        "note_attributes": [],
        "line_items": [item],
        "customer": {"id": sale.buyer},
    }
    raw = json.dumps(body).encode()
    topic = {"paid": "orders/paid", "refunded": "orders/updated", "cancelled": "orders/cancelled"}
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic[sale.status],
        "X-Shopify-Webhook-Id": delivery_id or str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": b64_hmac(SHOPIFY_SECRET, raw),
    }, raw


def woocommerce(sale: Sale, delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.loads((STOREFRONT / "payloads" / "woocommerce_order.json").read_text())
    item = copy.deepcopy(body["line_items"][1])
    item |= {"product_id": int(sale.ext_product), "variation_id": int(sale.ext_sku),
             "quantity": sale.quantity, "sku": sale.sku_code or "",
             "subtotal": yuan(sale.amount_fen), "total": yuan(sale.amount_fen)}  # fmt: skip
    status = {"paid": "processing", "refunded": "refunded", "cancelled": "cancelled"}
    placed = sale.placed_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    modified = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    entry = _link(sale, "https://shop.example.com/product/squid/")
    body |= {
        "id": int(sale.order_id),
        "status": status[sale.status],
        "currency": "CNY",
        "date_created_gmt": placed,
        "date_modified_gmt": modified,
        "total": yuan(sale.amount_fen),
        "customer_id": sale.buyer,
        "meta_data": [{"id": 1, "key": "_wc_order_attribution_session_entry", "value": entry}],
        "line_items": [item],
        "shipping_lines": [],
    }
    raw = json.dumps(body).encode()
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "order.created" if sale.status == "paid" else "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created" if sale.status == "paid" else "updated",
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex[:13],
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Signature": b64_hmac(WC_WEBHOOK_SECRET, raw),
    }, raw


def youzan(sale: Sale, delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    state = {"paid": "TRADE_PAID", "refunded": "TRADE_PAID", "cancelled": "TRADE_CLOSED"}
    info = {
        "order_info": {
            "tid": sale.order_id,
            "status": state[sale.status],
            "created": sale.placed_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "refund_state": 12 if sale.status == "refunded" else 0,
        },
        "pay_info": {"payment": yuan(sale.amount_fen)},
        "buyer_info": {"yz_open_id": sale.buyer},
        "orders": [
            {
                "item_id": int(sale.ext_product),
                "sku_id": int(sale.ext_sku),
                "outer_sku_id": sale.sku_code or "",
                "num": sale.quantity,
                "payment": yuan(sale.amount_fen),
                "title": "鱿鱼干",
                "goods_url": _link(sale, "https://shop63077.youzan.com/v2/goods/2fx"),
            }
        ],
    }
    msg = quote_plus(json.dumps({"full_order_info": info}, ensure_ascii=False))
    kind = {"paid": "trade_TradeBuyerPay", "refunded": "trade_TradeSuccess"}
    raw = json.dumps(
        {
            "client_id": YZ_CLIENT_ID,
            "id": sale.order_id,
            "kdt_id": 63077,
            "kdt_name": "有赞的店",
            "mode": 1,
            "msg": msg,
            "msg_id": delivery_id or str(uuid.uuid4()),
            "sendCount": 1,
            "sign": md5((YZ_CLIENT_ID + msg + YZ_SECRET).encode()),
            "status": state[sale.status],
            "test": False,
            "type": kind.get(sale.status, "trade_TradeClose"),
            "version": 1516245348962,
        },
        ensure_ascii=False,
    ).encode()
    return {"Content-Type": "application/json"}, raw


def douyin_push(sale: Sale, delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """A push (tag 101 paid, 206 refund succeeded): it names the order, not its lines."""
    seconds = int(sale.placed_at.timestamp())
    if sale.status == "refunded":
        tag, data = "206", {"p_id": int(sale.order_id), "refund_amount": sale.amount_fen,
                            "success_time": seconds + 60}  # fmt: skip
    else:
        tag, data = "101", {"p_id": int(sale.order_id), "pay_amount": sale.amount_fen,
                            "pay_time": seconds, "shop_id": int(SHOP_ID)}  # fmt: skip
    msg_id = delivery_id or str(uuid.uuid4().int)[:19]
    message = [{"tag": tag, "msg_id": msg_id, "data": json.dumps(data)}]
    raw = json.dumps(message, separators=(",", ":")).encode()
    return {
        "Content-Type": "application/json",
        "app-id": APP_KEY,
        "sign-method": "md5",
        "event-sign": md5(APP_KEY.encode() + raw + APP_SECRET.encode()),
    }, raw


def douyin_order(sale: Sale) -> dict[str, Any]:
    """The order as the Douyin order.searchList API lists it (see fake_douyin.shop_order)."""
    seconds = int(sale.placed_at.timestamp())
    status = {"paid": 2, "refunded": 2, "cancelled": 4}
    return {
        "order_id": sale.order_id,
        "order_status": status[sale.status],
        "create_time": seconds,
        "update_time": int(datetime.now(UTC).timestamp()) - 1,
        "pay_time": seconds,
        "pay_amount": sale.amount_fen,
        "doudian_open_id": sale.buyer,
        "sku_order_list": [
            {
                "order_id": sale.order_id + "1",
                "product_id": int(sale.ext_product),
                "product_id_str": sale.ext_product,
                "sku_id": int(sale.ext_sku),
                "code": sale.sku_code or "",
                "item_num": sale.quantity,
                "pay_amount": sale.amount_fen,
                "product_name": "鱿鱼干",
                "room_id_str": "7200000000000000001",
                "author_id": 88001,
                "after_sale_info": {
                    "after_sale_status": 0,
                    "refund_status": 3 if sale.status == "refunded" else 0,
                },
            }
        ],
    }


BUILDERS = {
    "shopify": shopify,
    "woocommerce": woocommerce,
    "youzan": youzan,
    "douyin": douyin_push,
}


@dataclass
class Stage:
    """A live session of the haifeng base with one product pinned, and a connected shop."""

    world: World
    platform: str
    shop_id: int
    product_id: int
    sku_id: int
    session_id: int
    host_id: int
    pin_id: int
    ext_product: str = "3600000000000000001"
    ext_sku: str = "1700000000000000001"

    @property
    def webhook(self) -> str:
        return f"/webhooks/{self.platform}/{self.shop_id}"

    def sale(self, order_id: str, **kw: Any) -> Sale:
        return Sale(order_id, self.ext_product, self.ext_sku, **kw)

    async def deliver(self, sale: Sale, delivery_id: str | None = None) -> tuple[int, Any]:
        headers, body = BUILDERS[self.platform](sale, delivery_id)
        return await self.post(headers, body)

    async def post(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        return await self.world.api.call("POST", self.webhook, None, data=body, headers=headers)


async def ok(world: World, method: str, path: str, body: Any = None, token: str = "") -> Any:
    status, payload = await world.api.call(method, path, token or world.tokens["admin"], body)
    assert status < 300, (method, path, status, payload)
    return payload


async def stage(
    world: World,
    platform: str,
    *,
    stock: int = 100,
    api_base_url: str = "https://shop.example.com",
    pin: bool = True,
) -> Stage:
    ids, hf = world.ids, "/api/v1/bases/haifeng"
    product = await ok(world, "POST", f"{hf}/products", {
        "merchant_id": ids["haifeng.merchant"], "title_zh": "鱿鱼干", "title_en": "Dried squid",
        "status": "active", "price_fen": 1990,
        "skus": [{"sku": "SQ-250", "price_fen": 1990, "stock": stock}],
    })  # fmt: skip
    session = await ok(world, "POST", f"{hf}/sessions", {
        "room_id": ids["haifeng.room"], "host_id": ids["haifeng.host"], "title": "海丰好物",
    })  # fmt: skip
    sp = f"{hf}/sessions/{session['id']}"
    await ok(world, "PUT", sp + "/lineup", {"product_ids": [product["id"]]})
    await ok(world, "PATCH", sp, {"status": "live"})
    pin_id = 0
    if pin:
        pin_id = (await ok(world, "POST", sp + "/pins", {"product_id": product["id"]}))["id"]
    shop = await ok(world, "POST", f"{hf}/shops", {
        "platform": platform, "shop_ref": f"{platform}-shop-{uuid.uuid4().hex[:6]}",
        "api_base_url": api_base_url, "credentials": CREDENTIALS[platform],
        "merchant_id": ids["haifeng.merchant"],
    })  # fmt: skip
    st = Stage(world, platform, shop["id"], product["id"], 0, session["id"], ids["haifeng.host"],
               pin_id)  # fmt: skip
    await ok(world, "PUT", f"{hf}/shops/{shop['id']}/listings", {"listings": [
        {"external_product_id": st.ext_product, "external_sku_id": st.ext_sku,
         "product_id": product["id"], "sku": "SQ-250"},
    ]})  # fmt: skip
    return st
