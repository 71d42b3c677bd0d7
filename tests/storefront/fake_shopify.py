"""A Shopify Admin GraphQL endpoint that behaves as the documentation describes.

From "GraphQL Admin API rate limits" (shopify.dev/docs/apps/build/apis/graphql-admin/
rate-limits) and the Admin API reference:
- POST /admin/api/2025-01/graphql.json, authenticated by the X-Shopify-Access-Token header;
  a wrong token gets HTTP 401 {"errors": "[API] Invalid API key or access token ..."}.
- A leaky bucket (maximumAvailable, restoreRate per second); every reply carries
  extensions.cost {requestedQueryCost, actualQueryCost, throttleStatus}.
- A query that costs more than is available gets HTTP 200 with
  errors[0] = {"message": "Throttled", "extensions": {"code": "THROTTLED", ...}} and
  actualQueryCost null (the shape Shopify staff and partners posted in the community
  thread "GraphQL Admin API - example Throttled request's response").
- Connections page with first/after and pageInfo {hasNextPage, endCursor}.
"""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from typing import Any

from aiohttp import web
from storefront_support import FakeClock

API_PATH = "/admin/api/2025-01/graphql.json"
TOKEN = "shpat_fake_admin_token_5a9d"
COSTS = {
    "LivebaseOrders": 60.0,
    "LivebaseProductSet": 10.0,
    "LivebaseVariants": 3.0,
    "LivebasePrice": 10.0,
    "LivebaseStock": 10.0,
}


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def _index(cursor: str | None) -> int:
    return -1 if not cursor else int(base64.b64decode(cursor).decode().split(":")[1])


def order_node(number: int, *, status: str = "PAID", cancelled: bool = False) -> dict[str, Any]:
    return {
        "legacyResourceId": str(5_000 + number),
        "createdAt": f"2025-01-0{1 + number % 9}T08:00:00+08:00",
        "cancelledAt": "2025-01-10T00:00:00Z" if cancelled else None,
        "displayFinancialStatus": status,
        "totalPriceSet": {"shopMoney": {"amount": f"{number}.50", "currencyCode": "USD"}},
        "customer": {"legacyResourceId": f"c{number}"},
        "customAttributes": [{"key": "lb_host", "value": f"host-{number}"}],
        "customerJourneySummary": {
            "lastVisit": {"landingPage": f"https://s.example/p?lb_session=s{number}"}
        },
        "lineItems": {
            "nodes": [
                {
                    "quantity": 1,
                    "sku": f"SKU-{number}",
                    "title": "Fish",
                    "product": {"legacyResourceId": "900"},
                    "variant": {"legacyResourceId": f"9{number}"},
                    "discountedTotalSet": {
                        "shopMoney": {"amount": f"{number}.50", "currencyCode": "USD"}
                    },
                }
            ]
        },
    }


class FakeShopify:
    def __init__(
        self,
        clock: FakeClock,
        *,
        orders: list[dict[str, Any]] | None = None,
        bucket: float = 1000.0,
        restore_rate: float = 50.0,
        available: float | None = None,
    ) -> None:
        self.clock = clock
        self.orders = orders or []
        self.bucket, self.restore_rate = bucket, restore_rate
        self.available = bucket if available is None else available
        self.last_restore = clock.time()
        self.throttled = 0
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (operation, variables)
        self.products: dict[str, list[dict[str, Any]]] = {}  # product gid -> variants
        self.stock: dict[str, int] = {}  # inventory item gid -> available

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(API_PATH, self.graphql)
        return app

    def _status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.bucket,
            "currentlyAvailable": self.available,
            "restoreRate": self.restore_rate,
        }

    async def graphql(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return web.json_response(
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
                status=401,
            )
        body = await request.json()
        match = re.search(r"(?:query|mutation) (\w+)", body["query"])
        operation = match.group(1) if match else ""
        cost = COSTS[operation]
        now = self.clock.time()
        self.available = min(
            self.bucket, self.available + (now - self.last_restore) * self.restore_rate
        )
        self.last_restore = now
        if self.available < cost:
            self.throttled += 1
            return web.json_response(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {
                        "cost": {
                            "requestedQueryCost": cost,
                            "actualQueryCost": None,
                            "throttleStatus": self._status(),
                        }
                    },
                }
            )
        self.available -= cost
        variables = body.get("variables") or {}
        self.accepted.append((operation, variables))
        data = getattr(self, f"_op_{operation}")(variables)
        return web.json_response(
            {
                "data": data,
                "extensions": {
                    "cost": {
                        "requestedQueryCost": cost,
                        "actualQueryCost": cost,
                        "throttleStatus": self._status(),
                    }
                },
            }
        )

    def _op_LivebaseOrders(self, variables: dict[str, Any]) -> dict[str, Any]:
        start = _index(variables.get("after")) + 1
        nodes = self.orders[start : start + int(variables["first"])]
        end = start + len(nodes) - 1
        return {
            "orders": {
                "pageInfo": {
                    "hasNextPage": end + 1 < len(self.orders),
                    "endCursor": _cursor(end) if nodes else None,
                },
                "nodes": nodes,
            }
        }

    def _op_LivebaseProductSet(self, variables: dict[str, Any]) -> dict[str, Any]:
        product_input = variables["input"]
        legacy = str(7_000_000 + len(self.products))
        gid = f"gid://shopify/Product/{legacy}"
        variants = []
        for n, variant in enumerate(product_input["variants"]):
            price = Decimal(variant["price"])  # the API takes a decimal string
            if price < 0:
                return {
                    "productSet": {
                        "product": None,
                        "userErrors": [
                            {
                                "field": ["variants", str(n), "price"],
                                "message": "must be >= 0",
                                "code": "INVALID",
                            }
                        ],
                    }
                }
            vid = str(8_000_000 + 10 * len(self.products) + n)
            item = f"gid://shopify/InventoryItem/{vid}"
            variants.append(
                {
                    "id": f"gid://shopify/ProductVariant/{vid}",
                    "legacyResourceId": vid,
                    "sku": variant["inventoryItem"]["sku"],
                    "price": variant["price"],
                    "inventoryItem": {"id": item},
                }
            )
            self.stock[item] = variant["inventoryQuantities"][0]["quantity"]
        self.products[gid] = variants
        return {
            "productSet": {
                "userErrors": [],
                "product": {
                    "legacyResourceId": legacy,
                    "variants": {
                        "nodes": [
                            {"legacyResourceId": v["legacyResourceId"], "sku": v["sku"]}
                            for v in variants
                        ]
                    },
                },
            }
        }

    def _op_LivebaseVariants(self, variables: dict[str, Any]) -> dict[str, Any]:
        variants = self.products.get(variables["id"])
        if variants is None:
            return {"product": None}
        return {
            "product": {
                "variants": {
                    "nodes": [
                        {"id": v["id"], "sku": v["sku"], "inventoryItem": v["inventoryItem"]}
                        for v in variants
                    ]
                }
            }
        }

    def _op_LivebasePrice(self, variables: dict[str, Any]) -> dict[str, Any]:
        for change in variables["variants"]:
            for variant in self.products[variables["productId"]]:
                if variant["id"] == change["id"]:
                    variant["price"] = change["price"]
        return {"productVariantsBulkUpdate": {"userErrors": []}}

    def _op_LivebaseStock(self, variables: dict[str, Any]) -> dict[str, Any]:
        for quantity in variables["input"]["quantities"]:
            self.stock[quantity["inventoryItemId"]] = quantity["quantity"]
        return {"inventorySetQuantities": {"userErrors": []}}
