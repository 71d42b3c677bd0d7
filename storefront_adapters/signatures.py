"""Request and webhook signatures of each platform, as pure functions.

Sources (see the tests for the vectors):
- Shopify: "Verify webhook deliveries", shopify.dev/docs/apps/build/webhooks/verify-deliveries
  (base64 HMAC-SHA256 of the raw body, keyed with the app's client secret).
- WooCommerce: WC_Webhook::generate_signature in woocommerce/includes/class-wc-webhook.php
  (base64 of hash_hmac('sha256', body, secret, true)).
- Douyin Shop (抖店): the official Go SDK's utils/sign_util.go and core/doudian_op_api_client.go
  (sign_method=hmac-sha256 over secret + "app_key…method…param_json…timestamp…v…" + secret,
  param_json re-serialised with sorted keys and HTML escaping off); push ``event-sign`` is
  MD5(app_key + body + app_secret) as in the push-message SDK.
- Youzan (有赞): developers.youzanyun.com "消息推送数据 MD5 校验示例":
  sign = MD5(client_id + msg + client_secret) with ``msg`` exactly as received (not decoded).

Every comparison goes through hmac.compare_digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

DOUYIN_API_VERSION = "2"


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def constant_time_equal(expected: str, presented: str | None) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(_bytes(expected), _bytes(presented.strip()))


def hmac_sha256_base64(secret: str | bytes, raw_body: bytes) -> str:
    digest = hmac.new(_bytes(secret), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# Shopify --------------------------------------------------------------------------------


def shopify_webhook_signature(client_secret: str, raw_body: bytes) -> str:
    return hmac_sha256_base64(client_secret, raw_body)


def verify_shopify_webhook(client_secret: str, raw_body: bytes, header: str | None) -> bool:
    return constant_time_equal(shopify_webhook_signature(client_secret, raw_body), header)


# WooCommerce ----------------------------------------------------------------------------


def woocommerce_webhook_signature(webhook_secret: str, raw_body: bytes) -> str:
    return hmac_sha256_base64(webhook_secret, raw_body)


def verify_woocommerce_webhook(webhook_secret: str, raw_body: bytes, header: str | None) -> bool:
    return constant_time_equal(woocommerce_webhook_signature(webhook_secret, raw_body), header)


# Douyin Shop ----------------------------------------------------------------------------


def douyin_param_json(params: Mapping[str, object]) -> str:
    """Canonical ``param_json``: keys sorted at every level, no spaces, no escaping.

    Mirrors the official SDK's Marshal: Go's encoder with SetEscapeHTML(false) keeps
    "<>&" and non-ASCII text as is but still escapes U+2028/U+2029, so we do too. Floats
    are refused because two languages rarely print them alike.
    """

    def check(value: object) -> None:
        if isinstance(value, float):
            raise TypeError("param_json values must not be floats (send fen as integers)")
        if isinstance(value, Mapping):
            for item in value.values():
                check(item)
        elif isinstance(value, list | tuple):
            for item in value:
                check(item)

    check(params)
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def douyin_sign_string(
    app_key: str, app_secret: str, method: str, param_json: str, timestamp: str
) -> str:
    pattern = (
        f"app_key{app_key}method{method}param_json{param_json}"
        f"timestamp{timestamp}v{DOUYIN_API_VERSION}"
    )
    return f"{app_secret}{pattern}{app_secret}"


def douyin_request_sign(
    app_key: str,
    app_secret: str,
    method: str,
    param_json: str,
    timestamp: str,
    sign_method: str = "hmac-sha256",
) -> str:
    """Hex ``sign`` for an API request; ``sign_method`` is "hmac-sha256" or "md5"."""
    text = _bytes(douyin_sign_string(app_key, app_secret, method, param_json, timestamp))
    if sign_method == "hmac-sha256":
        return hmac.new(_bytes(app_secret), text, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(text, usedforsecurity=False).hexdigest()
    raise ValueError(f"unknown Douyin sign_method {sign_method!r}")


def douyin_event_sign(
    app_key: str, app_secret: str, raw_body: bytes, sign_method: str = "md5"
) -> str:
    """Hex ``event-sign`` of a push: digest of app_key + raw body + app_secret.

    MD5 is what the push SDKs verify. For a ``sign-method: hmac-sha256`` header the same
    string is keyed with app_secret, by analogy with request signing.
    """
    text = _bytes(app_key) + raw_body + _bytes(app_secret)
    method = sign_method.lower()
    if method == "md5":
        return hashlib.md5(text, usedforsecurity=False).hexdigest()
    if method == "hmac-sha256":
        return hmac.new(_bytes(app_secret), text, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown Douyin push sign-method {sign_method!r}")


def verify_douyin_event(
    app_key: str, app_secret: str, raw_body: bytes, header: str | None, sign_method: str = "md5"
) -> bool:
    if header is None:
        return False
    expected = douyin_event_sign(app_key, app_secret, raw_body, sign_method)
    return constant_time_equal(expected, header.lower())


# Youzan ---------------------------------------------------------------------------------


def youzan_push_sign(client_id: str, msg: str, client_secret: str) -> str:
    return hashlib.md5(_bytes(client_id + msg + client_secret), usedforsecurity=False).hexdigest()


def verify_youzan_push(client_id: str, msg: str, client_secret: str, presented: str | None) -> bool:
    if presented is None:
        return False
    return constant_time_equal(youzan_push_sign(client_id, msg, client_secret), presented.lower())


def youzan_event_sign(client_id: str, raw_body: bytes, client_secret: str) -> str:
    """The ``Event-Sign`` header: the same MD5, over the whole request body."""
    text = _bytes(client_id) + raw_body + _bytes(client_secret)
    return hashlib.md5(text, usedforsecurity=False).hexdigest()
