"""A Youzan (有赞云) gateway that behaves as its developer guide describes.

- POST /auth/token {client_id, client_secret, authorize_type: "silent", grant_id, refresh}
  -> {"success": true, "code": 200, "data": {"access_token", "expires" (epoch ms), ...}}.
- POST /api/<name>/<version>?access_token=..., parameters as a JSON body. 4.x APIs answer
  {"success", "code", "message", "data"}, 3.x APIs {"response"} or {"error_response"};
  gateway failures (here: an unknown token) are HTTP 200 with {"gw_err_resp": {...}}.
- youzan.trades.sold.get 4.0.4 pages with page_no (from 1, at most 100) and page_size,
  filters on start_update/end_update in Beijing time, and reports total_results.
- Optionally the first N calls get HTTP 429 with Retry-After (gateway rate limiting).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from storefront_support import FakeClock

CLIENT_ID = "50535be20334f52771"
CLIENT_SECRET = "yz-client-secret-9d3e"
GRANT_ID = "63077"


def trade(
    n: int, update_time: str, *, status: str = "WAIT_SELLER_SEND_GOODS", refund_state: int = 0
) -> dict[str, Any]:
    return {
        "full_order_info": {
            "order_info": {
                "tid": f"E2025030110000000{n:02d}",
                "status": status,
                "created": "2025-03-01 10:00:00",
                "update_time": update_time,
                "refund_state": refund_state,
            },
            "pay_info": {"payment": f"{n}.90", "total_fee": f"{n}.90", "post_fee": "0.00"},
            "buyer_info": {"yz_open_id": f"yz-open-{n}"},
            "orders": [
                {
                    "item_id": 3620,
                    "sku_id": 36000 + n,
                    "outer_sku_id": "YZ-250",
                    "num": 1,
                    "payment": f"{n}.90",
                    "title": "鱿鱼干",
                    "goods_url": f"https://shop63077.youzan.com/v2/goods/2f?lb_session=s{n}",
                }
            ],
        }
    }


class FakeYouzan:
    def __init__(
        self, clock: FakeClock, *, trades: list[dict[str, Any]] | None = None, rate_limited: int = 0
    ) -> None:
        self.clock = clock
        self.trades = trades or []
        self.rate_limited = rate_limited
        self.token: str | None = None
        self.tokens_issued = 0
        self.calls: list[tuple[str, dict[str, Any], bytes]] = []
        self.items: dict[int, dict[str, Any]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/auth/token", self.auth_token)
        app.router.add_post("/api/{name}/{version}", self.api)
        return app

    async def auth_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (body.get("client_id"), body.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response(
                {"success": False, "code": 4001, "message": "client_id或client_secret错误"}
            )
        if body.get("authorize_type") != "silent" or body.get("grant_id") != GRANT_ID:
            return web.json_response({"success": False, "code": 4002, "message": "授权不存在"})
        self.tokens_issued += 1
        self.token = f"yz-token-{self.tokens_issued}-77aa"
        expires = int((self.clock.time() + 7 * 86_400) * 1000)
        return web.json_response(
            {
                "success": True,
                "code": 200,
                "message": "success",
                "data": {
                    "access_token": self.token,
                    "expires": expires,
                    "scope": "trade item",
                    "authority_id": GRANT_ID,
                },
            }
        )

    async def api(self, request: web.Request) -> web.Response:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return web.json_response(
                {"message": "too many requests"}, status=429, headers={"Retry-After": "1"}
            )
        if self.token is None or request.query.get("access_token") != self.token:
            return web.json_response(
                {"gw_err_resp": {"err_code": 4203, "err_msg": "access_token无效"}}
            )
        raw = await request.read()
        params = json.loads(raw, parse_float=Decimal)
        name = request.match_info["name"]
        self.calls.append((name, params, raw))
        handler = getattr(self, name.replace(".", "_"))
        return web.json_response(handler(params))

    def youzan_trades_sold_get(self, params: dict[str, Any]) -> dict[str, Any]:
        page, size = params["page_no"], min(100, params["page_size"])
        if page > 100:
            return {"success": False, "code": 141502101, "message": "page_no不能超过100"}
        start, end = params["start_update"], params["end_update"]
        rows = sorted(
            (
                t
                for t in self.trades
                if start <= t["full_order_info"]["order_info"]["update_time"] <= end
            ),
            key=lambda t: t["full_order_info"]["order_info"]["update_time"],
        )
        return {
            "success": True,
            "code": 200,
            "message": "successful",
            "data": {
                "full_order_info_list": rows[(page - 1) * size : page * size],
                "total_results": len(rows),
            },
        }

    def youzan_item_create(self, params: dict[str, Any]) -> dict[str, Any]:
        item_id = 3620 + len(self.items)
        skus = [
            {
                "sku_id": 36000 + 10 * item_id + n,
                "item_no": s["item_no"],
                "price": s["price"],
                "quantity": s["quantity"],
            }
            for n, s in enumerate(json.loads(params["sku_stocks"]))
        ]
        self.items[item_id] = {"item_id": item_id, "title": params["title"], "skus": skus}
        return {"response": {"item": self.items[item_id]}}

    def youzan_item_get(self, params: dict[str, Any]) -> dict[str, Any]:
        item = self.items.get(int(params["item_id"]))
        if item is None:
            return {"error_response": {"code": 50000, "msg": "商品不存在"}}
        return {"response": {"item": item}}

    def youzan_item_sku_update(self, params: dict[str, Any]) -> dict[str, Any]:
        for sku in self.items[int(params["item_id"])]["skus"]:
            if sku["sku_id"] == params["sku_id"]:
                if "price" in params:  # yuan on the wire; kept in fen here
                    sku["price"] = int(params["price"] * 100)
                if "quantity" in params:
                    sku["quantity"] = int(params["quantity"])
        return {"response": {"is_success": True}}
