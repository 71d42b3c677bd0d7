"""Youzan (有赞云).

Token flow per the developer guide (doc.youzanyun.com, "API调用说明"): POST /auth/token with
client_id, client_secret, authorize_type "silent" and grant_id (the shop's kdt_id); the token
goes in the ``access_token`` query parameter of POST /api/<name>/<version>, parameters in a
JSON body. Gateway failures come back as HTTP 200 with ``gw_err_resp``.

Money: the trade APIs (youzan.trades.sold.get) report yuan as decimals ("0.01");
youzan.item.create takes fen; youzan.item.sku.update takes yuan with two decimals.

Pushes carry ``msg`` URL-encoded and ``sign`` = MD5(client_id + msg + client_secret) over the
``msg`` value exactly as received ("消息推送数据 MD5 校验示例"); the ``Event-Sign`` header, when
present, is the same MD5 over the whole body and is checked too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

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
    tracking_from_url,
)
from storefront_adapters.money import fen_to_decimal, to_fen
from storefront_adapters.signatures import (
    constant_time_equal,
    verify_youzan_push,
    youzan_event_sign,
)

BEIJING = timezone(timedelta(hours=8))  # Youzan timestamps are Beijing wall-clock time
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Gateway codes treated as "token missing/expired/invalid": renew the token once. The exact
# list is not in the documentation we could read; anything else is reported as is.
_TOKEN_ERRORS = frozenset({4201, 4202, 4203})
_PAID_STATES = frozenset(
    {
        "TRADE_PAID",
        "WAIT_CONFIRM",
        "WAIT_SELLER_SEND_GOODS",
        "WAIT_BUYER_CONFIRM_GOODS",
        "TRADE_SUCCESS",
    }
)
_FULL_REFUND = 12  # order_info.refund_state: 全额退款成功
_MAX_PAGE = 100  # trades.sold.get: page_no may not exceed 100


def _beijing(value: str) -> datetime:
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=BEIJING)


class YouzanAdapter(StorefrontAdapter):
    platform = "youzan"
    webhook_ack = b'{"code":0,"msg":"success"}'
    page_size = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token = CachedToken(self.clock)

    # Request plumbing ----------------------------------------------------------------

    async def _access_token(self, *, renew: bool = False) -> str:
        if not renew and (token := self._token.current()):
            return token
        response = await self.http.request(
            "POST",
            f"{self.base_url}/auth/token",
            json_body={
                "client_id": self.credentials.reveal_key(),
                "client_secret": self.credentials.reveal_secret(),
                "authorize_type": "silent",
                "grant_id": self.credentials.account_id,
                "refresh": renew,
            },
        )
        body = response.json() if response.body else {}
        data = body.get("data") if isinstance(body, dict) else None
        if response.status >= 400 or not isinstance(data, dict) or not body.get("success"):
            message = body.get("message") if isinstance(body, dict) else None
            raise AuthenticationError(
                self.platform,
                f"token request refused: {message}",
                status=response.status,
                code=str(body.get("code")) if isinstance(body, dict) else None,
            )
        expires_at = int(data.get("expires", 0)) / 1000  # epoch milliseconds
        return self._token.keep(str(data["access_token"]), expires_at)

    async def _call(
        self, api: str, version: str, params: Mapping[str, Any], *, idempotent: bool = True
    ) -> dict[str, Any]:
        for renewal in (False, True):
            token = await self._access_token(renew=renewal)
            response = await self.http.request(
                "POST",
                f"{self.base_url}/api/{api}/{version}",
                params={"access_token": token},
                json_body=dict(params),
                idempotent=idempotent,
            )
            if response.status >= 400:
                kind = AuthenticationError if response.status == 401 else PlatformError
                raise kind(self.platform, f"{api}: HTTP error", status=response.status)
            body = response.json() if response.body else None
            if not isinstance(body, dict):
                raise PlatformError(self.platform, f"{api}: reply is not an object", status=200)
            gateway = body.get("gw_err_resp")
            if isinstance(gateway, dict):
                code = gateway.get("err_code")
                if code in _TOKEN_ERRORS and not renewal:
                    continue
                kind = AuthenticationError if code in _TOKEN_ERRORS else PlatformError
                raise kind(
                    self.platform,
                    f"{api}: {gateway.get('err_msg')}",
                    status=response.status,
                    code=str(code),
                )
            error = body.get("error_response")
            if isinstance(error, dict):
                raise PlatformError(
                    self.platform,
                    f"{api}: {error.get('msg')}",
                    status=response.status,
                    code=str(error.get("code")),
                )
            if body.get("success") is False:
                raise PlatformError(
                    self.platform,
                    f"{api}: {body.get('message')}",
                    status=response.status,
                    code=str(body.get("code")),
                )
            data = body.get("data", body.get("response"))
            return data if isinstance(data, dict) else {}
        raise AuthenticationError(self.platform, f"{api}: access token rejected after renewal")

    # Listings ------------------------------------------------------------------------

    async def publish_listing(self, listing: Listing) -> PublishedListing:
        if listing.currency != "CNY":
            raise ListingError(f"Youzan prices are CNY; listing is in {listing.currency}")
        image_ids = listing.platform_fields.get("image_ids")
        if not image_ids:
            raise ListingError("Youzan needs platform_fields['image_ids'] (uploaded image ids)")
        spec = self.options.get("option_name", "规格")
        sku_stocks = [
            {
                "price": s.price_fen,
                "quantity": s.stock,
                "item_no": s.code,
                "skus": [{"k": spec, "v": s.option}],
            }
            for s in listing.skus
        ]
        params = {
            "title": listing.title("zh"),
            "desc": listing.description,
            "price": min(s.price_fen for s in listing.skus),  # fen, per item.create
            "quantity": sum(s.stock for s in listing.skus),
            "image_ids": str(image_ids),
            "sku_stocks": json.dumps(sku_stocks, ensure_ascii=False, separators=(",", ":")),
        }
        data = await self._call("youzan.item.create", "3.0.0", params, idempotent=False)
        item = data.get("item") or {}
        sku_ids = {str(s.get("item_no")): str(s.get("sku_id")) for s in item.get("skus") or []}
        return PublishedListing(self.platform, str(item.get("item_id")), sku_ids)

    async def update_price_stock(self, update: PriceStockUpdate) -> None:
        if update.currency != "CNY":
            raise ListingError(f"Youzan prices are CNY; update is in {update.currency}")
        item_id = update.external_product_id
        try:
            data = await self._call("youzan.item.get", "3.0.0", {"item_id": item_id})
        except (AuthenticationError, ThrottledError):
            raise
        except PlatformError as exc:
            if exc.status != 200:  # transport trouble, not the platform's verdict
                raise
            raise UnknownProductError(
                self.platform, exc.message, status=exc.status, code=exc.code
            ) from exc
        skus = (data.get("item") or {}).get("skus") or []
        sku = next((s for s in skus if s.get("item_no") == update.sku_code), None)
        if sku is None:
            raise UnknownSkuError(self.platform, f"item {item_id} has no SKU {update.sku_code!r}")
        params: dict[str, Any] = {"item_id": item_id, "sku_id": sku["sku_id"]}
        if update.price_fen is not None:
            # Yuan with two decimals as a JSON number; float(Decimal("12.50")) prints "12.5",
            # the same decimal, because every 2-decimal value has an exact shortest repr.
            params["price"] = float(Decimal(fen_to_decimal(update.price_fen)))
        if update.stock is not None:
            params["quantity"] = str(update.stock)
        await self._call("youzan.item.sku.update", "3.0.0", params)

    # Orders ----------------------------------------------------------------------------

    async def pull_orders(self, since_cursor: str | None) -> OrderPage:
        state = decode_cursor(since_cursor)
        now = datetime.fromtimestamp(self.clock.time(), BEIJING)
        lookback = timedelta(days=int(self.options.get("lookback_days", "7")))
        start = state.get("start") or (now - lookback).strftime(_TIME_FORMAT)
        end = state.get("end") or now.strftime(_TIME_FORMAT)
        page = int(state.get("page", 1))
        data = await self._call(
            "youzan.trades.sold.get",
            "4.0.4",
            {
                "start_update": start,
                "end_update": end,
                "page_no": page,
                "page_size": self.page_size,
            },
        )
        orders, newest = [], str(state.get("newest") or "")
        for entry in data.get("full_order_info_list") or []:
            try:
                info = entry["full_order_info"]
                newest = max(newest, str(info["order_info"].get("update_time") or ""))
                order = self._order(info)
            except (AmountError, KeyError, TypeError, ValueError) as exc:
                raise PlatformError(self.platform, f"malformed order in response: {exc!r}") from exc
            if order is not None:
                orders.append(order)
        if page * self.page_size < int(data.get("total_results") or 0):
            if page < _MAX_PAGE:
                cursor = {"start": start, "end": end, "page": page + 1, "newest": newest}
            else:  # the 100-page ceiling: narrow the window to what we have not read yet
                cursor = {"start": newest or start, "end": end, "page": 1}
            return OrderPage(tuple(orders), encode_cursor(cursor), True)
        # Step back a second so same-second updates are re-read, never skipped.
        step_back = _beijing(newest) - timedelta(seconds=1) if newest else None
        start = step_back.strftime(_TIME_FORMAT) if step_back else end
        return OrderPage(tuple(orders), encode_cursor({"start": start}), False)

    def _order(self, info: Mapping[str, Any]) -> PlatformOrder | None:
        order_info = info["order_info"]
        state = str(order_info["status"])
        if int(order_info.get("refund_state") or 0) == _FULL_REFUND:
            status = OrderStatus.REFUNDED
        elif state == "TRADE_CLOSED":
            status = OrderStatus.CANCELLED
        elif state in _PAID_STATES:
            status = OrderStatus.PAID
        else:
            return None
        tracking: dict[str, str] = {}
        lines = []
        for item in info.get("orders") or []:
            tracking.update(tracking_from_url(item.get("goods_url")))
            lines.append(
                LineItem(
                    external_product_id=str(item["item_id"]),
                    external_sku_id=str(item["sku_id"]) if item.get("sku_id") else None,
                    sku_code=item.get("outer_sku_id") or None,
                    quantity=int(item["num"]),
                    amount_fen=to_fen(item["payment"], what="line payment"),
                    title=str(item.get("title") or ""),
                )
            )
        buyer = info.get("buyer_info") or {}
        buyer_ref = buyer.get("yz_open_id") or buyer.get("buyer_id") or buyer.get("fans_id")
        return PlatformOrder(
            platform=self.platform,
            platform_order_id=str(order_info["tid"]),
            status=status,
            placed_at=_beijing(str(order_info["created"])),
            currency="CNY",
            amount_fen=to_fen((info.get("pay_info") or {})["payment"], what="payment"),
            line_items=tuple(lines),
            buyer_ref=str(buyer_ref) if buyer_ref else None,
            tracking=tracking,
        )

    # Webhooks --------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        client_id, secret = self.credentials.reveal_key(), self.credentials.reveal_secret()
        event_sign = header(headers, "Event-Sign")
        if event_sign is not None and not constant_time_equal(
            youzan_event_sign(client_id, raw_body, secret), event_sign.lower()
        ):
            raise WebhookSignatureError("youzan push: Event-Sign header does not match the body")
        try:
            body = json.loads(raw_body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            if event_sign is not None:
                return  # signed body that is not JSON: parse_webhook reports it
            raise WebhookSignatureError("youzan push: unreadable body, no sign to check") from None
        sign = body.get("sign") if isinstance(body, dict) else None
        msg = body.get("msg") if isinstance(body, dict) else None
        if not isinstance(sign, str) or not sign:
            raise WebhookSignatureError("youzan push: missing sign")
        if not isinstance(msg, str) or not verify_youzan_push(client_id, msg, secret, sign):
            raise WebhookSignatureError("youzan push: sign does not match client_id+msg+secret")

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookDelivery:
        self.verify_webhook(headers, raw_body)
        body = load_json_body(raw_body, self.platform)
        if not isinstance(body, dict) or not body.get("msg_id") or not body.get("type"):
            raise WebhookPayloadError("youzan push: body needs msg_id, type and msg")
        topic = str(body["type"])
        try:
            message = json.loads(unquote_plus(str(body["msg"])), parse_float=Decimal)
        except (KeyError, json.JSONDecodeError) as exc:
            raise WebhookPayloadError(f"youzan push: msg is not URL-encoded JSON ({exc})") from exc
        orders: tuple[PlatformOrder, ...] = ()
        if isinstance(message, dict) and "full_order_info" in message:
            try:
                order = self._order(message["full_order_info"])
            except (AmountError, KeyError, TypeError, ValueError) as exc:
                raise WebhookPayloadError(f"youzan push: malformed order: {exc!r}") from exc
            orders = (order,) if order else ()
        return WebhookDelivery(self.platform, str(body["msg_id"]), topic, orders)
