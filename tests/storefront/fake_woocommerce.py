"""A WooCommerce REST API v3 server that behaves as its documentation describes.

- /wp-json/wc/v3/..., authenticated with HTTP Basic (consumer key and secret); a failure
  gets 401 {"code": "woocommerce_rest_cannot_view", "message": ..., "data": {"status": 401}}.
- Collections page with page/per_page and report X-WP-Total and X-WP-TotalPages; a page
  past the end is 400 rest_post_invalid_page_number (WordPress REST API "Pagination").
- An unknown product id is 404 woocommerce_rest_product_invalid_id.
- Optionally the first N requests get 429 with Retry-After, as a host's rate limiter in
  front of WordPress does (WooCommerce core does not throttle REST v3 itself).
"""

from __future__ import annotations

import base64
import math
from typing import Any

from aiohttp import web

CONSUMER_KEY = "ck_fake_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CONSUMER_SECRET = "cs_fake_9a8b7c6d5e4f30211203f4e5d6c7b8a9"
API = "/wp-json/wc/v3"


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "data": {"status": status}}, status=status
    )


def order(number: int, modified: str, *, status: str = "processing") -> dict[str, Any]:
    return {
        "id": number,
        "status": status,
        "currency": "CNY",
        "customer_id": 40 + number,
        "date_created_gmt": "2025-03-01T02:00:00",
        "date_modified_gmt": modified,
        "total": f"{number}.25",
        "meta_data": [{"id": 1, "key": "lb_session", "value": f"s{number}"}],
        "line_items": [
            {
                "id": 1,
                "name": "Fish",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 1,
                "sku": "F-1",
                "total": f"{number}.25",
                "price": number,
            }
        ],
    }


class FakeWooCommerce:
    def __init__(
        self,
        *,
        orders: list[dict[str, Any]] | None = None,
        rate_limited: int = 0,
        retry_after: str = "2",
    ) -> None:
        self.orders = orders or []
        self.rate_limited, self.retry_after = rate_limited, retry_after
        self.requests: list[tuple[str, str]] = []
        self.writes: list[tuple[str, str, dict[str, Any]]] = []  # method, path, JSON body
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, list[dict[str, Any]]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.gate])
        app.router.add_get(f"{API}/orders", self.list_orders)
        app.router.add_post(f"{API}/products", self.create_product)
        app.router.add_get(f"{API}/products/{{id}}", self.get_product)
        app.router.add_put(f"{API}/products/{{id}}", self.update_product)
        app.router.add_post(f"{API}/products/{{id}}/variations/batch", self.batch_variations)
        app.router.add_get(f"{API}/products/{{id}}/variations", self.list_variations)
        app.router.add_put(f"{API}/products/{{id}}/variations/{{vid}}", self.update_variation)
        return app

    @web.middleware
    async def gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return web.json_response(
                {"code": "too_many_requests", "message": "Slow down"},
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        expected = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if request.method in ("POST", "PUT"):
            self.writes.append((request.method, request.path, await request.json()))
        response: web.StreamResponse = await handler(request)
        return response

    async def list_orders(self, request: web.Request) -> web.Response:
        query = request.query
        page, per_page = int(query.get("page", "1")), min(100, int(query.get("per_page", "10")))
        after = query.get("modified_after")
        rows = [o for o in self.orders if after is None or o["date_modified_gmt"] > after]
        rows.sort(key=lambda o: (o["date_modified_gmt"], o["id"]))
        pages = math.ceil(len(rows) / per_page)
        if rows and page > pages:
            return error(
                400,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            )
        chunk = rows[(page - 1) * per_page : page * per_page]
        return web.json_response(
            chunk, headers={"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(pages)}
        )

    async def create_product(self, request: web.Request) -> web.Response:
        body = self.writes[-1][2]
        product_id = 100 + len(self.products)
        self.products[product_id] = {"id": product_id, **body}
        self.variations[product_id] = []
        return web.json_response(self.products[product_id], status=201)

    def _product(self, request: web.Request) -> dict[str, Any] | None:
        return self.products.get(int(request.match_info["id"]))

    async def get_product(self, request: web.Request) -> web.Response:
        product = self._product(request)
        if product is None:
            return error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return web.json_response(product)

    async def update_product(self, request: web.Request) -> web.Response:
        product = self._product(request)
        if product is None:
            return error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        product.update(self.writes[-1][2])
        return web.json_response(product)

    async def batch_variations(self, request: web.Request) -> web.Response:
        product_id = int(request.match_info["id"])
        created = []
        for item in self.writes[-1][2].get("create", []):
            variation = {"id": 1000 + len(self.variations[product_id]), **item}
            self.variations[product_id].append(variation)
            created.append(variation)
        return web.json_response({"create": created})

    async def list_variations(self, request: web.Request) -> web.Response:
        rows = self.variations.get(int(request.match_info["id"]), [])
        sku = request.query.get("sku")
        return web.json_response([v for v in rows if sku is None or v["sku"] == sku])

    async def update_variation(self, request: web.Request) -> web.Response:
        for variation in self.variations.get(int(request.match_info["id"]), []):
            if variation["id"] == int(request.match_info["vid"]):
                variation.update(self.writes[-1][2])
                return web.json_response(variation)
        return error(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
