"""Shopify, through the Admin GraphQL API (version pinned in API_VERSION).

Throttling follows "GraphQL Admin API rate limits" (shopify.dev/docs/apps/build/apis/
graphql-admin/rate-limits): every response carries extensions.cost.throttleStatus
{maximumAvailable, currentlyAvailable, restoreRate}; a query whose requestedQueryCost exceeds
what is available comes back HTTP 200 with errors[].extensions.code == "THROTTLED". We wait
(requested - available) / restoreRate seconds, both before a query we know will not fit and
after a THROTTLED answer. Webhooks are the REST order JSON, signed per "Verify webhook
deliveries" and deduplicated on X-Shopify-Webhook-Id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from storefront_adapters.base import StorefrontAdapter, header, load_json_body
from storefront_adapters.errors import (
    AmountError,
    AuthenticationError,
    ListingError,
    PlatformError,
    UnknownProductError,
    UnknownSkuError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from storefront_adapters.models import (
    LineItem,
    Listing,
    OrderPage,
    OrderStatus,
    PlatformOrder,
    PriceStockUpdate,
    PublishedListing,
    WebhookDelivery,
    tracking_from_pairs,
    tracking_from_url,
)
from storefront_adapters.money import fen_to_decimal, to_fen
from storefront_adapters.shopify_graphql import (
    ORDERS_QUERY,
    PRICE_UPDATE,
    PRODUCT_SET,
    STOCK_SET,
    VARIANTS_QUERY,
    error_summary,
    gid,
)
from storefront_adapters.signatures import verify_shopify_webhook
from storefront_adapters.transport import HttpResponse

API_VERSION = "2025-01"
# The bucket refills continuously; waiting a hair longer than the exact deficit avoids a
# THROTTLED round trip caused by rounding on either side.
_MARGIN = 0.01
ORDER_TOPICS = frozenset(
    {"orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled"}
)


def _status(financial: object, cancelled: bool) -> OrderStatus | None:
    state = str(financial or "").upper()
    if state == "REFUNDED":
        return OrderStatus.REFUNDED
    if state == "VOIDED" or cancelled:
        return OrderStatus.CANCELLED
    if state in ("PAID", "PARTIALLY_REFUNDED"):
        return OrderStatus.PAID
    return None  # pending, authorized, partially paid: not a sale yet


class ShopifyAdapter(StorefrontAdapter):
    platform = "shopify"
    page_size = 50

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._endpoint = f"{self.base_url}/admin/api/{API_VERSION}/graphql.json"
        # Last throttleStatus seen: (currently available, restore rate, at clock time).
        self._bucket: tuple[float, float, float] | None = None
        self._costs: dict[str, float] = {}  # requestedQueryCost per operation

    # GraphQL plumbing ----------------------------------------------------------------

    async def _graphql(
        self, operation: str, query: str, variables: Mapping[str, Any], *, idempotent: bool = True
    ) -> dict[str, Any]:
        token = self.credentials.reveal_access_token()
        if not token:
            raise AuthenticationError(self.platform, "no Admin API access token configured")
        await self._wait_for_budget(operation)
        response = await self.http.request(
            "POST",
            self._endpoint,
            json_body={"query": query, "variables": dict(variables)},
            headers={"X-Shopify-Access-Token": token},
            idempotent=idempotent,
            throttle_probe=self._throttle_wait,
        )
        body = self._checked_body(response)
        self._remember_cost(operation, body)
        if body.get("errors"):
            message, code = error_summary(body["errors"])
            raise PlatformError(self.platform, message, status=response.status, code=code)
        data = body.get("data")
        if not isinstance(data, dict):
            raise PlatformError(self.platform, "GraphQL response has no data", status=200)
        return data

    def _checked_body(self, response: HttpResponse) -> dict[str, Any]:
        try:
            body = response.json() if response.body else {}
        except PlatformError:
            if response.status < 400:
                raise
            body = {}  # an error page that is not JSON: the status says enough
        if response.status in (401, 403):
            message = body.get("errors") if isinstance(body, dict) else None
            raise AuthenticationError(
                self.platform,
                str(message or "access denied"),
                status=response.status,
                code="unauthorized" if response.status == 401 else "forbidden",
            )
        if response.status >= 400 or not isinstance(body, dict):
            raise PlatformError(
                self.platform, f"unexpected reply: {str(body)[:200]}", status=response.status
            )
        return body

    def _remember_cost(self, operation: str, body: Mapping[str, Any]) -> None:
        cost = body.get("extensions", {}).get("cost") if isinstance(body, dict) else None
        if not isinstance(cost, dict):
            return
        status = cost.get("throttleStatus") or {}
        try:
            self._costs[operation] = float(cost["requestedQueryCost"])
            self._bucket = (
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                self.clock.time(),
            )
        except (KeyError, TypeError, ValueError):
            return

    async def _wait_for_budget(self, operation: str) -> None:
        if self._bucket is None or operation not in self._costs:
            return
        available, rate, seen_at = self._bucket
        if rate <= 0:
            return
        available += rate * max(0.0, self.clock.time() - seen_at)
        needed = self._costs[operation]
        if available < needed:
            await self.clock.sleep((needed - available) / rate + _MARGIN)

    def _throttle_wait(self, response: HttpResponse) -> float | None:
        body = response.json_or_none()
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not any(
            isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
            for e in errors
        ):
            return None
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        try:
            requested = float(cost["requestedQueryCost"])
            available = float(status["currentlyAvailable"])
            rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return 0.0  # THROTTLED without numbers: fall back to exponential backoff
        return max(0.0, (requested - available) / rate) + _MARGIN if rate > 0 else 0.0

    # Listings ------------------------------------------------------------------------

    async def publish_listing(self, listing: Listing) -> PublishedListing:
        self._check_currency(listing.currency)
        location = self.options.get("location_id")
        if not location:
            raise ListingError("Shopify needs options['location_id'] to set stock levels")
        single = len(listing.skus) == 1 and not listing.skus[0].label
        option = "Title" if single else self.options.get("option_name", "Variant")
        values = ["Default Title"] if single else [sku.option for sku in listing.skus]
        variants = [
            {
                "optionValues": [{"optionName": option, "name": value}],
                "price": fen_to_decimal(sku.price_fen),
                "inventoryItem": {"sku": sku.code, "tracked": True},
                "inventoryQuantities": [
                    {
                        "locationId": gid("Location", location),
                        "name": "available",
                        "quantity": sku.stock,
                    }
                ],
            }
            for sku, value in zip(listing.skus, values, strict=True)
        ]
        product_input = {
            "title": listing.title(self.options.get("language", "en")),
            "descriptionHtml": listing.description,
            "status": "ACTIVE",
            "productOptions": [{"name": option, "values": [{"name": v} for v in values]}],
            "files": [
                {"originalSource": url, "contentType": "IMAGE"} for url in listing.image_urls
            ],
            "variants": variants,
        }
        data = await self._graphql(
            "productSet", PRODUCT_SET, {"input": product_input}, idempotent=False
        )
        result = data.get("productSet") or {}
        self._raise_user_errors(result)
        product = result.get("product") or {}
        sku_ids = {
            str(v.get("sku")): str(v.get("legacyResourceId"))
            for v in (product.get("variants") or {}).get("nodes", [])
        }
        return PublishedListing(self.platform, str(product.get("legacyResourceId")), sku_ids)

    async def update_price_stock(self, update: PriceStockUpdate) -> None:
        self._check_currency(update.currency)
        product_gid = gid("Product", update.external_product_id)
        data = await self._graphql("variants", VARIANTS_QUERY, {"id": product_gid})
        product = data.get("product")
        if not product:
            raise UnknownProductError(
                self.platform, f"no product {update.external_product_id}", code="not_found"
            )
        variant = next(
            (v for v in product["variants"]["nodes"] if v.get("sku") == update.sku_code), None
        )
        if variant is None:
            raise UnknownSkuError(
                self.platform,
                f"product {update.external_product_id} has no SKU {update.sku_code!r}",
                code="not_found",
            )
        if update.price_fen is not None:
            variables = {
                "productId": product_gid,
                "variants": [{"id": variant["id"], "price": fen_to_decimal(update.price_fen)}],
            }
            result = await self._graphql("price", PRICE_UPDATE, variables)
            self._raise_user_errors(result.get("productVariantsBulkUpdate") or {})
        if update.stock is not None:
            location = self.options.get("location_id")
            if not location:
                raise ListingError("Shopify needs options['location_id'] to set stock levels")
            stock_input = {
                "name": "available",
                "reason": "correction",
                "ignoreCompareQuantity": True,
                "quantities": [
                    {
                        "inventoryItemId": variant["inventoryItem"]["id"],
                        "locationId": gid("Location", location),
                        "quantity": update.stock,
                    }
                ],
            }
            result = await self._graphql("stock", STOCK_SET, {"input": stock_input})
            self._raise_user_errors(result.get("inventorySetQuantities") or {})

    def _raise_user_errors(self, result: Mapping[str, Any]) -> None:
        errors = result.get("userErrors") or []
        if errors:
            text = "; ".join(
                f"{'.'.join(map(str, e.get('field') or []))}: {e.get('message')}" for e in errors
            )
            raise PlatformError(self.platform, text, status=200, code="user_errors")

    # Orders ----------------------------------------------------------------------------

    async def pull_orders(self, since_cursor: str | None) -> OrderPage:
        variables = {"first": self.page_size, "after": since_cursor or None}
        data = await self._graphql("orders", ORDERS_QUERY, variables)
        connection = data.get("orders") or {}
        page_info = connection.get("pageInfo") or {}
        orders = []
        for node in connection.get("nodes") or []:
            try:
                order = self._order_from_graphql(node)
            except (AmountError, KeyError, TypeError, ValueError) as exc:
                raise PlatformError(self.platform, f"malformed order in response: {exc}") from exc
            if order is not None:
                orders.append(order)
        cursor = page_info.get("endCursor") or since_cursor or ""
        return OrderPage(tuple(orders), cursor, bool(page_info.get("hasNextPage")))

    def _order_from_graphql(self, node: Mapping[str, Any]) -> PlatformOrder | None:
        status = _status(node.get("displayFinancialStatus"), bool(node.get("cancelledAt")))
        if status is None:
            return None
        total = node["totalPriceSet"]["shopMoney"]
        tracking = tracking_from_url(
            ((node.get("customerJourneySummary") or {}).get("lastVisit") or {}).get("landingPage")
        )
        tracking.update(
            tracking_from_pairs(
                (a.get("key"), a.get("value")) for a in node.get("customAttributes") or []
            )
        )
        lines = tuple(
            LineItem(
                external_product_id=str((item.get("product") or {}).get("legacyResourceId", "")),
                external_sku_id=(item.get("variant") or {}).get("legacyResourceId"),
                sku_code=item.get("sku") or None,
                quantity=int(item["quantity"]),
                amount_fen=to_fen(
                    item["discountedTotalSet"]["shopMoney"]["amount"], what="line total"
                ),
                title=str(item.get("title") or ""),
            )
            for item in (node.get("lineItems") or {}).get("nodes") or []
        )
        customer = (node.get("customer") or {}).get("legacyResourceId")
        return PlatformOrder(
            platform=self.platform,
            platform_order_id=str(node["legacyResourceId"]),
            status=status,
            placed_at=datetime.fromisoformat(node["createdAt"]),
            currency=str(total["currencyCode"]),
            amount_fen=to_fen(total["amount"], what="total"),
            line_items=lines,
            buyer_ref=str(customer) if customer else None,
            tracking=tracking,
        )

    # Webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        presented = header(headers, "X-Shopify-Hmac-Sha256")
        if not presented:
            raise WebhookSignatureError("shopify webhook: missing X-Shopify-Hmac-Sha256 header")
        if not verify_shopify_webhook(self.credentials.reveal_secret(), raw_body, presented):
            raise WebhookSignatureError("shopify webhook: X-Shopify-Hmac-Sha256 does not match")

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        self.verify_webhook(headers, raw_body)
        topic = header(headers, "X-Shopify-Topic")
        delivery_id = header(headers, "X-Shopify-Webhook-Id")
        if not topic or not delivery_id:
            raise WebhookPayloadError("shopify webhook: missing X-Shopify-Topic or -Webhook-Id")
        body = load_json_body(raw_body, self.platform)
        if topic not in ORDER_TOPICS:
            return WebhookDelivery(self.platform, delivery_id, topic)
        if not isinstance(body, dict):
            raise WebhookPayloadError("shopify webhook: order body is not a JSON object")
        try:
            order = self._order_from_rest(body)
        except (AmountError, KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadError(f"shopify webhook: malformed order: {exc!r}") from exc
        return WebhookDelivery(self.platform, delivery_id, topic, (order,) if order else ())

    def _order_from_rest(self, body: Mapping[str, Any]) -> PlatformOrder | None:
        status = _status(body.get("financial_status"), bool(body.get("cancelled_at")))
        if status is None:
            return None
        lines = []
        for item in body.get("line_items") or []:
            quantity = int(item["quantity"])
            allocations = item.get("discount_allocations")
            discount = (
                sum(to_fen(a["amount"], what="discount") for a in allocations)
                if allocations is not None
                else to_fen(item.get("total_discount") or "0", what="discount")
            )
            lines.append(
                LineItem(
                    external_product_id=str(item.get("product_id") or ""),
                    external_sku_id=str(item["variant_id"]) if item.get("variant_id") else None,
                    sku_code=item.get("sku") or None,
                    quantity=quantity,
                    amount_fen=to_fen(item["price"], what="line price") * quantity - discount,
                    title=str(item.get("title") or ""),
                )
            )
        tracking = tracking_from_url(body.get("landing_site"))
        tracking.update(
            tracking_from_pairs(
                (a.get("name"), a.get("value")) for a in body.get("note_attributes") or []
            )
        )
        customer = (body.get("customer") or {}).get("id")
        return PlatformOrder(
            platform=self.platform,
            platform_order_id=str(body["id"]),
            status=status,
            placed_at=datetime.fromisoformat(str(body["created_at"])),
            currency=str(body["currency"]),
            amount_fen=to_fen(body["total_price"], what="total"),
            line_items=tuple(lines),
            buyer_ref=str(customer) if customer else None,
            tracking=tracking,
        )
