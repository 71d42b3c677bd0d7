"""A Douyin Shop (抖店) open-platform gateway that behaves as documented.

- POST /<a>/<b>?app_key&method=a.b&timestamp&v=2&sign&sign_method=hmac-sha256&access_token,
  business parameters as the param_json body (official SDK, doudian_op_api_client.go).
- The gateway recomputes sign from its own canonical param_json (keys sorted at every
  level, compact) exactly as the signing guide concatenates it, with an implementation that
  shares no code with the adapter; a mismatch is 40003 isv.signature-invalid.
- Replies {"code": 10000, "msg": "success", "data": ...}; errors use the platform error-code
  summary (40003 + isv.access-token-no-existed, 60000 rate limited, 50002 business failure).
- token.create with grant_type authorization_self issues the shop's access token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from storefront_support import FakeClock

APP_KEY = "7012345678901234567"
APP_SECRET = "dy-app-secret-4f2a9c"
SHOP_ID = "4463798"


def reply(code: int = 10000, msg: str = "success", data: Any = None, **extra: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "msg": msg,
            "sub_code": "",
            "sub_msg": "",
            "log_id": "20250301000000010000",
            "data": data or {},
            **extra,
        }
    )


def shop_order(
    n: int, update_time: int, *, status: int = 2, refunded: bool = False
) -> dict[str, Any]:
    amount = 1000 * n + 99  # fen
    return {
        "order_id": f"69000000000000000{n:02d}",
        "order_status": status,
        "create_time": 1_740_000_000 + n,
        "update_time": update_time,
        "pay_time": 1_740_000_100 + n if status != 1 else 0,
        "pay_amount": amount,
        "doudian_open_id": f"open-{n}",
        "sku_order_list": [
            {
                "order_id": f"69000000000000001{n:02d}",
                "product_id": 3600000000000000001,
                "product_id_str": "3600000000000000001",
                "sku_id": 1700000000000000001,
                "code": "DY-SQ-250",
                "item_num": 1,
                "pay_amount": amount,
                "product_name": "鱿鱼干",
                "room_id_str": "7200000000000000001",
                "author_id": 88001,
                "after_sale_info": {"after_sale_status": 0, "refund_status": 3 if refunded else 0},
            }
        ],
    }


class FakeDouyin:
    def __init__(
        self, clock: FakeClock, *, orders: list[dict[str, Any]] | None = None, rate_limited: int = 0
    ) -> None:
        self.clock = clock
        self.orders = orders or []
        self.rate_limited = rate_limited
        self.token: str | None = None
        self.tokens_issued = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.queries: list[dict[str, str]] = []
        self.products: dict[int, list[dict[str, Any]]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{group}/{name}", self.handle)
        return app

    def expire_token(self) -> None:
        self.token = None

    async def handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.queries.append(query)
        method = query.get("method", "")
        if request.path != "/" + method.replace(".", "/"):
            return reply(40003, "非法的参数", sub_code="isv.method-invalid")
        if query.get("app_key") != APP_KEY:
            return reply(
                40003,
                "非法的参数",
                sub_code="isv.app-id-invalid",
                sub_msg="认证失败，app_key格式不正确",
            )
        body = (await request.read()).decode()
        params = json.loads(body)
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        text = (
            APP_SECRET
            + "app_key"
            + APP_KEY
            + "method"
            + method
            + "param_json"
            + canonical
            + "timestamp"
            + query.get("timestamp", "")
            + "v"
            + query.get("v", "")
            + APP_SECRET
        )
        expected = hmac.new(APP_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
        if (
            query.get("sign_method") != "hmac-sha256"
            or query.get("v") != "2"
            or query.get("sign") != expected
        ):
            return reply(
                40003, "非法的参数", sub_code="isv.signature-invalid", sub_msg="签名校验失败"
            )
        if method == "token.create":
            if params.get("grant_type") != "authorization_self" or params.get("shop_id") != SHOP_ID:
                return reply(
                    50001, "平台处理失败", sub_code="dop.token-generate-failed:no-authorization"
                )
            self.tokens_issued += 1
            self.token = f"dy-token-{self.tokens_issued}-8e1d"
            return reply(
                data={
                    "access_token": self.token,
                    "expires_in": 604800,
                    "refresh_token": "dy-refresh",
                    "shop_id": int(SHOP_ID),
                }
            )
        if self.token is None or query.get("access_token") != self.token:
            return reply(
                40003,
                "非法的参数",
                sub_code="isv.access-token-no-existed",
                sub_msg="access_token不存在，请使用最新的access_token访问",
            )
        if method == "order.searchList" and self.rate_limited > 0:
            self.rate_limited -= 1
            return reply(60000, "触发限流，请稍后重试", sub_code="isv.api-call-limited")
        self.calls.append((method, params))
        handler: Any = getattr(self, method.replace(".", "_"))
        response: web.Response = handler(params)
        return response

    def order_searchList(self, params: dict[str, Any]) -> web.Response:
        start, end = params["update_time_start"], params["update_time_end"]
        rows = sorted(
            (o for o in self.orders if start <= o["update_time"] <= end),
            key=lambda o: (o["update_time"], o["order_id"]),
        )
        page, size = params["page"], min(100, params["size"])
        chunk = rows[page * size : (page + 1) * size]
        return reply(
            data={"shop_order_list": chunk, "page": page, "size": size, "total": len(rows)}
        )

    def product_addV2(self, params: dict[str, Any]) -> web.Response:
        product_id = 3_600_000_000_000_000_100 + len(self.products)
        skus = [
            {
                "sku_id": 1_700_000_000_000_000_100 + n,
                "code": spec["code"],
                "price": spec["price"],
                "stock_num": spec["stock_num"],
            }
            for n, spec in enumerate(json.loads(params["spec_prices"]))
        ]
        self.products[product_id] = skus
        return reply(
            data={
                "product_id": product_id,
                "sku": [{"sku_id": s["sku_id"], "code": s["code"]} for s in skus],
            }
        )

    def product_detail(self, params: dict[str, Any]) -> web.Response:
        skus = self.products.get(params["product_id"])
        if skus is None:
            return reply(
                50002, "业务处理失败", sub_code="isv.business-failed:10021", sub_msg="商品不存在"
            )
        return reply(data={"product_id": params["product_id"], "spec_prices": skus})

    def _sku(self, params: dict[str, Any]) -> dict[str, Any]:
        return next(
            s for s in self.products[params["product_id"]] if s["sku_id"] == params["sku_id"]
        )

    def sku_editPrice(self, params: dict[str, Any]) -> web.Response:
        self._sku(params)["price"] = params["price"]
        return reply()

    def sku_syncStock(self, params: dict[str, Any]) -> web.Response:
        self._sku(params)["stock_num"] = params["stock_num"]
        return reply()
