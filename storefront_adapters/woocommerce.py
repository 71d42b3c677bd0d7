"""WooCommerce, through the REST API v3 (``/wp-json/wc/v3``).

Paging follows the documented X-WP-Total / X-WP-TotalPages headers; authentication is HTTP
Basic with the consumer key and secret (the documented method over HTTPS). Webhooks are
signed as in WC_Webhook::generate_signature: base64(HMAC-SHA256(raw body, webhook secret)).

X-WC-Webhook-Delivery-ID is wp_hash(webhook id . time()), new for every send, so a
re-sent event would get a new id; the dedup key is therefore built from the webhook id,
topic, resource id and its date_modified_gmt, which a replay or re-send repeats exactly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from storefront_adapters.base import (
    StorefrontAdapter,
    decode_cursor,
    encode_cursor,
    header,
    load_json_body,
)
from storefront_adapters.errors import (
    AmountError,
    AuthenticationError,
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
from storefront_adapters.signatures import verify_woocommerce_webhook
from storefront_adapters.transport import HttpResponse

_STATUS = {
    "processing": OrderStatus.PAID,
    "completed": OrderStatus.PAID,
    "refunded": OrderStatus.REFUNDED,
    "cancelled": OrderStatus.CANCELLED,
}  # pending, on-hold, failed, checkout-draft, trash: no sale to record
_PING = re.compile(rb"webhook_id=\d+")
# WooCommerce order attribution keeps the landing page in this order meta key.
_ATTRIBUTION_ENTRY = "_wc_order_attribution_session_entry"


def _gmt(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class WooCommerceAdapter(StorefrontAdapter):
    platform = "woocommerce"
    page_size = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api = f"{self.base_url}/wp-json/wc/v3"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> tuple[Any, HttpResponse]:
        # Basic auth, built by hand: aiohttp's BasicAuth helper is deprecated in newer versions.
        pair = f"{self.credentials.reveal_key()}:{self.credentials.reveal_secret()}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        response = await self.http.request(
            method,
            f"{self._api}{path}",
            params=params,
            json_body=body,
            headers={"Authorization": authorization},
            idempotent=idempotent,
        )
        if response.status >= 400:
            error = response.json_or_none()
            if not isinstance(error, dict):
                error = {}  # none, or an HTML error page from a proxy: the status says enough
            code = str(error.get("code") or "")
            message = str(error.get("message") or f"HTTP {response.status}")
            kind: type[PlatformError] = PlatformError
            if response.status in (401, 403):
                kind = AuthenticationError
            elif code.endswith("_invalid_id"):  # e.g. woocommerce_rest_product_invalid_id
                kind = UnknownProductError
            raise kind(self.platform, message, status=response.status, code=code or None)
        return (response.json() if response.body else None), response

    # Listings ------------------------------------------------------------------------

    async def publish_listing(self, listing: Listing) -> PublishedListing:
        self._check_currency(listing.currency)
        product: dict[str, Any] = {
            "name": listing.title(self.options.get("language", "en")),
            "status": "publish",
            "description": listing.description,
            "images": [{"src": url} for url in listing.image_urls],
        }
        single = len(listing.skus) == 1 and not listing.skus[0].label
        attribute = self.options.get("option_name", "Variant")
        if single:
            sku = listing.skus[0]
            product.update(
                type="simple",
                sku=sku.code,
                manage_stock=True,
                regular_price=fen_to_decimal(sku.price_fen),
                stock_quantity=sku.stock,
            )
        else:
            product.update(
                type="variable",
                attributes=[
                    {
                        "name": attribute,
                        "options": [s.option for s in listing.skus],
                        "variation": True,
                        "visible": True,
                    }
                ],
            )
        created, _ = await self._call("POST", "/products", body=product, idempotent=False)
        product_id = str(created["id"])
        if single:
            return PublishedListing(self.platform, product_id, {listing.skus[0].code: product_id})
        batch = {
            "create": [
                {
                    "sku": s.code,
                    "regular_price": fen_to_decimal(s.price_fen),
                    "manage_stock": True,
                    "stock_quantity": s.stock,
                    "attributes": [{"name": attribute, "option": s.option}],
                }
                for s in listing.skus
            ]
        }
        result, _ = await self._call(
            "POST", f"/products/{product_id}/variations/batch", body=batch, idempotent=False
        )
        sku_ids: dict[str, str] = {}
        for item in result.get("create") or []:
            if item.get("error"):
                error = item["error"]
                raise PlatformError(
                    self.platform, str(error.get("message")), code=str(error.get("code"))
                )
            sku_ids[str(item["sku"])] = str(item["id"])
        return PublishedListing(self.platform, product_id, sku_ids)

    async def update_price_stock(self, update: PriceStockUpdate) -> None:
        self._check_currency(update.currency)
        product_id = update.external_product_id
        product, _ = await self._call("GET", f"/products/{product_id}")
        changes: dict[str, Any] = {}
        if update.price_fen is not None:
            changes["regular_price"] = fen_to_decimal(update.price_fen)
        if update.stock is not None:
            changes.update(manage_stock=True, stock_quantity=update.stock)
        if product.get("type") != "variable":
            if product.get("sku") != update.sku_code:
                raise UnknownSkuError(
                    self.platform,
                    f"product {product_id} has SKU {product.get('sku')!r}, not {update.sku_code!r}",
                )
            await self._call("PUT", f"/products/{product_id}", body=changes)
            return
        variations, _ = await self._call(
            "GET",
            f"/products/{product_id}/variations",
            params={"sku": update.sku_code, "per_page": "100"},
        )
        match = next((v for v in variations or [] if v.get("sku") == update.sku_code), None)
        if match is None:
            raise UnknownSkuError(
                self.platform, f"product {product_id} has no SKU {update.sku_code!r}"
            )
        await self._call("PUT", f"/products/{product_id}/variations/{match['id']}", body=changes)

    # Orders ----------------------------------------------------------------------------

    async def pull_orders(self, since_cursor: str | None) -> OrderPage:
        state = decode_cursor(since_cursor)
        page = int(state.get("page", 1))
        after = state.get("after")
        params = {
            "page": str(page),
            "per_page": str(self.page_size),
            "orderby": "modified",
            "order": "asc",
            "dates_are_gmt": "true",
        }
        if after:
            params["modified_after"] = after
        payload, response = await self._call("GET", "/orders", params=params)
        if not isinstance(payload, list):
            raise PlatformError(self.platform, "orders reply is not a list", status=200)
        orders, newest = [], None
        for raw in payload:
            try:
                order = self._order(raw)
                modified = _gmt(raw["date_modified_gmt"])
            except (AmountError, KeyError, TypeError, ValueError) as exc:
                raise PlatformError(self.platform, f"malformed order in response: {exc!r}") from exc
            newest = modified if newest is None or modified > newest else newest
            if order is not None:
                orders.append(order)
        try:
            total_pages = int(header(response.headers, "X-WP-TotalPages") or "0")
        except ValueError as exc:
            raise PlatformError(self.platform, "X-WP-TotalPages is not a number") from exc
        newest_seen = max(
            filter(None, [state.get("newest"), newest.isoformat() if newest else None]),
            default=None,
        )
        if page < total_pages:
            cursor = {"after": after, "page": page + 1, "newest": newest_seen}
            return OrderPage(tuple(orders), encode_cursor(cursor), True)
        next_after = after
        if newest_seen:
            # modified_after is exclusive and second-granular: step back one second so an
            # order saved later within that second is not skipped (the wiring upserts by id).
            watermark = datetime.fromisoformat(newest_seen) - timedelta(seconds=1)
            next_after = watermark.replace(tzinfo=None).isoformat(timespec="seconds")
        return OrderPage(tuple(orders), encode_cursor({"after": next_after, "page": 1}), False)

    def _order(self, raw: Mapping[str, Any]) -> PlatformOrder | None:
        status = _STATUS.get(str(raw.get("status")))
        if status is None:
            return None
        meta = [(m.get("key"), m.get("value")) for m in raw.get("meta_data") or []]
        tracking = tracking_from_url(dict(meta).get(_ATTRIBUTION_ENTRY))
        tracking.update(tracking_from_pairs(meta))
        lines = tuple(
            LineItem(
                external_product_id=str(item["product_id"]),
                external_sku_id=str(item.get("variation_id") or item["product_id"]),
                sku_code=item.get("sku") or None,
                quantity=int(item["quantity"]),
                amount_fen=to_fen(item["total"], what="line total"),
                title=str(item.get("name") or ""),
            )
            for item in raw.get("line_items") or []
        )
        customer = raw.get("customer_id")
        return PlatformOrder(
            platform=self.platform,
            platform_order_id=str(raw["id"]),
            status=status,
            placed_at=_gmt(raw["date_created_gmt"]),
            currency=str(raw["currency"]),
            amount_fen=to_fen(raw["total"], what="total"),
            line_items=lines,
            buyer_ref=str(customer) if customer else None,
            tracking=tracking,
        )

    # Webhooks --------------------------------------------------------------------------

    def is_handshake(self, headers: Mapping[str, str], raw_body: bytes) -> bool:
        # WC_Webhook::deliver_ping posts "webhook_id=N" unsigned and wants a 200 back.
        return header(headers, "X-WC-Webhook-Topic") is None and bool(_PING.fullmatch(raw_body))

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        secret = self.credentials.reveal_webhook_secret()
        if not secret:
            raise WebhookSignatureError("woocommerce webhook: no webhook secret configured")
        presented = header(headers, "X-WC-Webhook-Signature")
        if not presented:
            raise WebhookSignatureError("woocommerce webhook: missing X-WC-Webhook-Signature")
        if not verify_woocommerce_webhook(secret, raw_body, presented):
            raise WebhookSignatureError("woocommerce webhook: X-WC-Webhook-Signature mismatch")

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        self.verify_webhook(headers, raw_body)
        topic = header(headers, "X-WC-Webhook-Topic")
        webhook_id = header(headers, "X-WC-Webhook-ID")
        if not topic or not webhook_id:
            raise WebhookPayloadError("woocommerce webhook: missing X-WC-Webhook-Topic or -ID")
        body = load_json_body(raw_body, self.platform)
        if not isinstance(body, dict) or "id" not in body:
            raise WebhookPayloadError("woocommerce webhook: body is not a resource object")
        delivery_id = f"{webhook_id}:{topic}:{body['id']}:{body.get('date_modified_gmt', '')}"
        if not topic.startswith("order."):
            return WebhookDelivery(self.platform, delivery_id, topic)
        try:
            order = self._order(body) if topic != "order.deleted" else None
        except (AmountError, KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadError(f"woocommerce webhook: malformed order: {exc!r}") from exc
        return WebhookDelivery(self.platform, delivery_id, topic, (order,) if order else ())
