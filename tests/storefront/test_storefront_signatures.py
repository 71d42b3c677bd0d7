"""Signature functions against documented examples and independent implementations.

None of the four platforms' documentation prints a full (secret, body, signature) triple,
so each scheme is checked two ways: the HMAC primitive against RFC 4231 test case 2 (a
published vector), and every scheme against `openssl dgst` and a hashlib-only HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from vectors import OPENSSL, hand_hmac_sha256, openssl_digest

from storefront_adapters import signatures as sig

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")

# RFC 4231, section 4.3 (test case 2).
RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HMAC_SHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

BODY = '{"id":820982911946154508,"total_price":"403.00","note":"直播间 lb"}'.encode()


def test_hmac_primitive_matches_rfc4231_case_2() -> None:
    expected = base64.b64encode(bytes.fromhex(RFC4231_HMAC_SHA256)).decode()
    assert sig.hmac_sha256_base64(RFC4231_KEY, RFC4231_DATA) == expected
    assert hand_hmac_sha256(b"Jefe", RFC4231_DATA).hex() == RFC4231_HMAC_SHA256


@pytest.mark.parametrize(
    ("sign", "verify"),
    [
        (sig.shopify_webhook_signature, sig.verify_shopify_webhook),
        (sig.woocommerce_webhook_signature, sig.verify_woocommerce_webhook),
    ],
)
def test_base64_hmac_webhooks_match_independent_implementations(sign: Any, verify: Any) -> None:
    secret = "shpss_0a1b2c3d4e5f"
    expected = base64.b64encode(hand_hmac_sha256(secret.encode(), BODY)).decode()
    assert sign(secret, BODY) == expected
    if OPENSSL:
        assert base64.b64encode(openssl_digest("sha256", BODY, secret)).decode() == expected
    assert verify(secret, BODY, expected)
    assert verify(secret, BODY, f"  {expected}\n")  # header whitespace is not a mismatch
    assert not verify(secret, BODY + b" ", expected)  # one byte of body changes everything
    assert not verify("other-secret", BODY, expected)
    assert not verify(secret, BODY, None)
    assert not verify(secret, BODY, "")


def test_douyin_param_json_is_sorted_compact_and_unescaped() -> None:
    # The plain_text example from the platform's encryption sample: "&<>='/ô汉😀" with the
    # note "附加符号、中日韩、Emoji都不转义" — none of it may be escaped.
    params = {
        "batch_encrypt_list": [
            {"plain_text": "&<>='/ô汉😀", "auth_id": "1234", "is_support_index": False}
        ],
        "a_first": {"z": 1, "b": [2, {"y": "x", "c": None}]},
    }
    assert sig.douyin_param_json(params) == (
        '{"a_first":{"b":[2,{"c":null,"y":"x"}],"z":1},'
        '"batch_encrypt_list":[{"auth_id":"1234","is_support_index":false,'
        '"plain_text":"&<>=\'/ô汉😀"}]}'
    )
    # Go's encoder escapes these two even with HTML escaping off; the SDK signs what it sends.
    assert sig.douyin_param_json({"t": "a\u2028b"}) == '{"t":"a\\u2028b"}'
    with pytest.raises(TypeError, match="float"):
        sig.douyin_param_json({"price": 12.5})


def test_douyin_request_sign_matches_the_documented_concatenation() -> None:
    app_key, secret = "7012345678901234567", "9a8b7c6d-secret"
    param_json = sig.douyin_param_json({"page": 0, "size": 100, "order_by": "update_time"})
    text = (
        f"{secret}app_key{app_key}methodorder.searchListparam_json{param_json}"
        f"timestamp1700000000v2{secret}"
    ).encode()
    expected = hand_hmac_sha256(secret.encode(), text).hex()
    assert (
        sig.douyin_request_sign(app_key, secret, "order.searchList", param_json, "1700000000")
        == expected
    )
    if OPENSSL:
        assert openssl_digest("sha256", text, secret).hex() == expected
    md5 = sig.douyin_request_sign(
        app_key, secret, "order.searchList", param_json, "1700000000", "md5"
    )
    assert md5 == hashlib.md5(text).hexdigest()


def test_douyin_event_sign_is_md5_of_key_body_secret() -> None:
    app_key, secret = "7012345678901234567", "9a8b7c6d-secret"
    body = json.dumps([{"tag": "101", "msg_id": "1", "data": "{}"}]).encode()
    expected = hashlib.md5(app_key.encode() + body + secret.encode()).hexdigest()
    if OPENSSL:
        assert openssl_digest("md5", app_key.encode() + body + secret.encode()).hex() == expected
    assert sig.douyin_event_sign(app_key, secret, body) == expected
    assert sig.verify_douyin_event(app_key, secret, body, expected.upper())
    assert not sig.verify_douyin_event(app_key, secret, body + b"x", expected)
    assert not sig.verify_douyin_event(app_key, secret, body, None)
    hmac_variant = sig.douyin_event_sign(app_key, secret, body, "hmac-sha256")
    text = app_key.encode() + body + secret.encode()
    assert hmac_variant == hand_hmac_sha256(secret.encode(), text).hex()
    with pytest.raises(ValueError, match="sign-method"):
        sig.douyin_event_sign(app_key, secret, body, "sha1")


def test_youzan_push_sign_uses_msg_as_received() -> None:
    client_id, secret = "b8fca94e508ac942de", "youzan-client-secret"
    msg = "%7B%22tid%22%3A%22E20210526105106025604163%22%7D"  # URL-encoded, not decoded
    expected = hashlib.md5((client_id + msg + secret).encode()).hexdigest()
    if OPENSSL:
        assert openssl_digest("md5", (client_id + msg + secret).encode()).hex() == expected
    assert sig.youzan_push_sign(client_id, msg, secret) == expected
    assert sig.verify_youzan_push(client_id, msg, secret, expected)
    decoded = '{"tid":"E20210526105106025604163"}'
    assert not sig.verify_youzan_push(client_id, decoded, secret, expected)
    assert not sig.verify_youzan_push(client_id, msg, secret, None)


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert sig.verify_shopify_webhook("k", b"x", sig.shopify_webhook_signature("k", b"x"))
    assert sig.verify_youzan_push("c", "m", "s", sig.youzan_push_sign("c", "m", "s"))
    assert len(calls) == 2


@needs_openssl
def test_openssl_is_used_when_present() -> None:
    assert openssl_digest("sha256", RFC4231_DATA, RFC4231_KEY).hex() == RFC4231_HMAC_SHA256
