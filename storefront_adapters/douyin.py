"""Douyin Shop (抖店) open platform.

Requests follow the official SDK (core/doudian_op_api_client.go): POST to /<a>/<b> for
method "a.b", the business parameters as the ``param_json`` body, and app_key, method,
timestamp, v=2, sign, sign_method=hmac-sha256 and access_token in the query string. Replies
are {"code": 10000, "msg": "success", "data": {...}} on success; other codes follow the
platform's error-code summary (30001 no permission, 40003 bad parameter/token/signature,
60000 rate limited, ...). Amounts are integers in fen (分) throughout.

Push messages arrive as a JSON array of {tag, msg_id, data}; ``data`` is a JSON string that
names the order but carries no line items, so parsed orders are marked complete=False.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from storefront_adapters.base import (
    CachedToken,
    StorefrontAdapter,
    decode_cursor,
    encode_cursor,
    header,
    load_json_body,
)
from storefront_adapters.errors import (
    AmountError,
    AuthenticationError,
    ListingError,
    PlatformError,
    ThrottledError,
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
)
from storefront_adapters.money import fen_from_int
from storefront_adapters.signatures import (
    douyin_param_json,
    douyin_request_sign,
    verify_douyin_event,
)
from storefront_adapters.transport import HttpResponse

SUCCESS = 10000
RATE_LIMITED = 60000
_TOKEN_EXPIRED = ("isv.access-token-expired", "isv.access-token-no-existed")
_AUTH_SUB_CODES = (
    "isv.access-token",
    "isv.signature",
    "isv.app-id",
    "dop.authorization",
    "isv.app-permissions",
    "dop.app-forbidden",
)
# order_status: 1 unpaid, 105 paid, 2 awaiting shipment, 101 part shipped, 3 shipped,
# 4 cancelled, 5 completed (order.searchList reference).
_PAID_STATES = frozenset({105, 2, 101, 3, 5})
_REFUND_SUCCESS = 3  # after_sale_info.refund_status
# Push tags: 101 order paid/confirmed, 106 order cancelled, 206 refund succeeded.
_PUSH_STATUS = {"101": OrderStatus.PAID, "106": OrderStatus.CANCELLED, "206": OrderStatus.REFUNDED}
_REQUIRED_FIELDS = ("category_leaf_id", "freight_id", "mobile")


def _at(seconds: object) -> datetime:
    return datetime.fromtimestamp(int(str(seconds)), UTC)


def _id(value: str) -> int | str:
    return int(value) if value.isdigit() else value


class DouyinAdapter(StorefrontAdapter):
    platform = "douyin"
    webhook_ack = b'{"code":0,"msg":"success"}'
    page_size = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configured = self.credentials.reveal_access_token()
        self._token = CachedToken(self.clock, configured, expires_at=float("inf"))
        self._token_is_ours = configured is None  # only tokens we created may be renewed

    # Request plumbing ----------------------------------------------------------------

    async def _access_token(self) -> str:
        if token := self._token.current():
            return token
        data = await self._call(
            "token.create",
            {
                "code": "",
                "grant_type": "authorization_self",
                "shop_id": self.credentials.account_id,
            },
            with_token=False,
        )
        expires_at = self.clock.time() + float(data.get("expires_in", 0))
        return self._token.keep(str(data["access_token"]), expires_at)

    async def _call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        with_token: bool = True,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        app_key, secret = self.credentials.reveal_key(), self.credentials.reveal_secret()
        param_json = douyin_param_json(params)
        for renewal in (False, True):
            timestamp = str(int(self.clock.time()))
            query = {
                "app_key": app_key,
                "method": method,
                "timestamp": timestamp,
                "v": "2",
                "sign": douyin_request_sign(app_key, secret, method, param_json, timestamp),
                "sign_method": "hmac-sha256",
            }
            if with_token:
                query["access_token"] = await self._access_token()
            response = await self.http.request(
                "POST",
                f"{self.base_url}/{method.replace('.', '/')}",
                params=query,
                data=param_json.encode(),
                headers={"Content-Type": "application/json"},
                idempotent=idempotent,
                throttle_probe=self._rate_limited,
            )
            if response.status >= 400:
                raise PlatformError(self.platform, f"{method}: HTTP error", status=response.status)
            body = response.json()
            if not isinstance(body, dict):
                raise PlatformError(self.platform, f"{method}: reply is not an object", status=200)
            if body.get("code") == SUCCESS:
                data = body.get("data")
                return data if isinstance(data, dict) else {}
            sub_code = str(body.get("sub_code") or "")
            if sub_code in _TOKEN_EXPIRED and self._token_is_ours and not renewal:
                self._token.drop()
                continue
            message = f"{method}: {body.get('msg')}" + (
                f": {body.get('sub_msg')}" if body.get("sub_msg") else ""
            )
            code = f"{body.get('code')}/{sub_code}" if sub_code else str(body.get("code"))
            auth = body.get("code") in (30001, 30002) or sub_code.startswith(_AUTH_SUB_CODES)
            kind = AuthenticationError if auth else PlatformError
            raise kind(self.platform, message, status=response.status, code=code)
        raise AuthenticationError(self.platform, f"{method}: access token rejected after renewal")

    def _rate_limited(self, response: HttpResponse) -> float | None:
        body = response.json_or_none()
        # No wait time is documented for 60000, so back off exponentially.
        return 0.0 if isinstance(body, dict) and body.get("code") == RATE_LIMITED else None

    # Listings ------------------------------------------------------------------------

    async def publish_listing(self, listing: Listing) -> PublishedListing:
        if listing.currency != "CNY":
            raise ListingError(f"Douyin Shop prices are CNY fen; listing is in {listing.currency}")
        missing = [name for name in _REQUIRED_FIELDS if name not in listing.platform_fields]
        if missing:
            raise ListingError(f"Douyin Shop needs platform_fields {', '.join(missing)}")
        if not listing.image_urls:
            raise ListingError("Douyin Shop needs at least one product image")
        fields = listing.platform_fields
        spec = self.options.get("option_name", "规格")
        spec_prices = [
            {
                "spec_detail_name1": s.option,
                "stock_num": s.stock,
                "price": s.price_fen,
                "code": s.code,
            }
            for s in listing.skus
        ]
        params = {
            "name": listing.title("zh"),
            "recommend_remark": listing.description,
            "pic": "|".join(listing.image_urls[:5]),
            "description": "|".join(listing.image_urls),  # the detail field takes images only
            "product_type": 0,
            "reduce_type": 1,
            "pay_type": 1,
            "commit": True,
            "category_leaf_id": int(fields["category_leaf_id"]),
            "freight_id": int(fields["freight_id"]),
            "mobile": str(fields["mobile"]),
            "specs": f"{spec}|{','.join(s.option for s in listing.skus)}",
            "spec_prices": json.dumps(spec_prices, ensure_ascii=False, separators=(",", ":")),
        }
        data = await self._call("product.addV2", params, idempotent=False)
        sku_ids = {str(s.get("code")): str(s.get("sku_id")) for s in data.get("sku") or []}
        return PublishedListing(self.platform, str(data.get("product_id")), sku_ids)

    async def update_price_stock(self, update: PriceStockUpdate) -> None:
        if update.currency != "CNY":
            raise ListingError(f"Douyin Shop prices are CNY fen; update is in {update.currency}")
        product_id = _id(update.external_product_id)
        try:
            detail = await self._call("product.detail", {"product_id": product_id})
        except (AuthenticationError, ThrottledError):
            raise
        except PlatformError as exc:
            if exc.status != 200:  # transport trouble, not the platform's verdict
                raise
            # The platform reports an unknown product as a business error on this call.
            raise UnknownProductError(
                self.platform, exc.message, status=exc.status, code=exc.code
            ) from exc
        sku = next(
            (s for s in detail.get("spec_prices") or [] if s.get("code") == update.sku_code), None
        )
        if sku is None:
            raise UnknownSkuError(
                self.platform,
                f"product {update.external_product_id} has no SKU {update.sku_code!r}",
            )
        sku_id = _id(str(sku["sku_id"]))
        if update.price_fen is not None:
            await self._call(
                "sku.editPrice",
                {"price": update.price_fen, "sku_id": sku_id, "product_id": product_id},
            )
        if update.stock is not None:
            await self._call(
                "sku.syncStock",
                {
                    "sku_id": sku_id,
                    "product_id": product_id,
                    "stock_num": update.stock,
                    "incremental": False,
                },
            )

    # Orders ----------------------------------------------------------------------------

    async def pull_orders(self, since_cursor: str | None) -> OrderPage:
        state = decode_cursor(since_cursor)
        now = int(self.clock.time())
        lookback = int(self.options.get("lookback_days", "7")) * 86_400
        start, end = int(state.get("start", now - lookback)), int(state.get("end", now))
        page = int(state.get("page", 0))
        data = await self._call(
            "order.searchList",
            {
                "update_time_start": start,
                "update_time_end": end,
                "page": page,
                "size": self.page_size,
                "order_by": "update_time",
                "order_asc": True,
            },
        )
        orders, newest = [], int(state.get("newest", 0))
        for raw in data.get("shop_order_list") or []:
            try:
                order = self._order(raw)
                newest = max(newest, int(raw.get("update_time") or 0))
            except (AmountError, KeyError, TypeError, ValueError) as exc:
                raise PlatformError(self.platform, f"malformed order in response: {exc!r}") from exc
            if order is not None:
                orders.append(order)
        if (page + 1) * self.page_size < int(data.get("total") or 0):
            cursor = {"start": start, "end": end, "page": page + 1, "newest": newest}
            return OrderPage(tuple(orders), encode_cursor(cursor), True)
        # Step back a second: orders updated within the boundary second are re-read, not lost.
        next_start = newest - 1 if newest else end
        return OrderPage(tuple(orders), encode_cursor({"start": next_start}), False)

    def _order(self, raw: Mapping[str, Any]) -> PlatformOrder | None:
        skus = raw.get("sku_order_list") or []
        refunded = bool(skus) and all(
            (s.get("after_sale_info") or {}).get("refund_status") == _REFUND_SUCCESS for s in skus
        )
        state = int(raw["order_status"])
        if refunded and raw.get("pay_time"):
            status = OrderStatus.REFUNDED
        elif state == 4:
            status = OrderStatus.CANCELLED
        elif state in _PAID_STATES:
            status = OrderStatus.PAID
        else:
            return None
        lines = tuple(
            LineItem(
                external_product_id=str(s.get("product_id_str") or s["product_id"]),
                external_sku_id=str(s["sku_id"]),
                sku_code=s.get("code") or None,
                quantity=int(s["item_num"]),
                amount_fen=fen_from_int(s["pay_amount"]),
                title=str(s.get("product_name") or ""),
            )
            for s in skus
        )
        tracking: dict[str, str] = {}
        for s in skus:  # live-room attribution: which room and which host sold it
            if s.get("room_id_str") or s.get("room_id"):
                tracking.setdefault("douyin_room_id", str(s.get("room_id_str") or s["room_id"]))
            if s.get("author_id"):
                tracking.setdefault("douyin_author_id", str(s["author_id"]))
        return PlatformOrder(
            platform=self.platform,
            platform_order_id=str(raw["order_id"]),
            status=status,
            placed_at=_at(raw["create_time"]),
            currency="CNY",
            amount_fen=fen_from_int(raw["pay_amount"]),
            line_items=lines,
            buyer_ref=str(raw.get("doudian_open_id") or "") or None,
            tracking=tracking,
        )

    # Webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        app_key = self.credentials.reveal_key()
        app_id = header(headers, "app-id")
        if app_id is not None and app_id.strip() != app_key:
            raise WebhookSignatureError("douyin push: app-id header names another app")
        presented = header(headers, "event-sign")
        if not presented:
            raise WebhookSignatureError("douyin push: missing event-sign header")
        method = header(headers, "sign-method") or "md5"
        try:
            valid = verify_douyin_event(
                app_key, self.credentials.reveal_secret(), raw_body, presented, method
            )
        except ValueError as exc:
            raise WebhookSignatureError(f"douyin push: unsupported sign-method {method!r}") from exc
        if not valid:
            raise WebhookSignatureError("douyin push: event-sign does not match the body")

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        self.verify_webhook(headers, raw_body)
        body = load_json_body(raw_body, self.platform)
        if not isinstance(body, list) or not body:
            raise WebhookPayloadError("douyin push: body must be a non-empty JSON array")
        ids, tags, orders = [], set(), []
        for message in body:
            if not isinstance(message, dict) or not {"tag", "msg_id", "data"} <= message.keys():
                raise WebhookPayloadError("douyin push: each message needs tag, msg_id and data")
            tag = str(message["tag"])
            ids.append(str(message["msg_id"]))
            tags.add(tag)
            if tag in _PUSH_STATUS:
                orders.append(self._order_from_push(tag, message["data"]))
        delivery_id = (
            ids[0] if len(ids) == 1 else hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
        )
        return WebhookDelivery(self.platform, delivery_id, ",".join(sorted(tags)), tuple(orders))

    def _order_from_push(self, tag: str, raw: object) -> PlatformOrder:
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(data, dict):
                raise TypeError("data is not a JSON object")
            if tag == "101":
                amount, at = fen_from_int(data["pay_amount"]), data["pay_time"]
            elif tag == "106":
                amount, at = 0, data["cancel_time"]
            else:
                amount, at = fen_from_int(data["refund_amount"]), data["success_time"]
            return PlatformOrder(
                platform=self.platform,
                platform_order_id=str(data["p_id"]),
                status=_PUSH_STATUS[tag],
                placed_at=_at(at),
                currency="CNY",
                amount_fen=amount,
                complete=False,
            )
        except (AmountError, KeyError, TypeError, ValueError) as exc:
            raise WebhookPayloadError(f"douyin push: malformed tag {tag} data: {exc!r}") from exc
