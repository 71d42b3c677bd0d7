"""Bad input gets a clear 4xx in the one error envelope, never a 500, and changes nothing.

Every refused case compares a full dump of the database before and after the request.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from api_support import Api, World
from sqlalchemy import select, text

from livebase import credentials, stream_keys
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Model, Role, Room

HF = "/api/v1/bases/haifeng"
PRODUCTS = HF + "/products"
DESTS = HF + "/destinations"
LIMIT = 1_048_576  # settings.max_request_bytes default
DROP = object()


@pytest.fixture(autouse=True)
def _no_unhandled_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Nothing may reach the 500 handler, whether or not a test looked at that response."""
    yield
    if request.node.get_closest_marker("xfail") is None:
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, errors


@dataclass
class Env:
    world: World
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> Api:
        return self.world.api


async def db_dump(api: Api) -> dict[str, list[str]]:
    async with api.app[DB_SESSIONS]() as db:
        return {
            t.name: sorted(repr(tuple(r)) for r in (await db.execute(select(t))).all())
            for t in Model.metadata.sorted_tables
        }


def check_envelope(status: int, payload: Any) -> dict[str, Any]:
    assert status != 500, payload
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    err = payload["error"]
    assert set(err) == {"status", "code", "message", "fields"}, err
    assert err["status"] == status and isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"].strip()
    assert all(set(f) == {"field", "message"} for f in err["fields"]), err
    return err


async def ok(api: Api, method: str, path: str, token: str, body: Any = None) -> Any:
    status, payload = await api.call(method, path, token, body)
    assert status < 300, (method, path, status, payload)
    return payload


@pytest.fixture
async def env(world: World) -> Env:
    """A product, a live session with a lineup and pin, a destination, an order, bad tokens."""
    api, t, ids = world.api, world.tokens, world.ids
    m = t["haifeng.manager"]
    e = Env(world, {"M": ids["haifeng.merchant"], "R": ids["haifeng.room"], "manager": m})
    product = await ok(api, "POST", PRODUCTS, m, {"merchant_id": e.ids["M"], "title_zh": "茶",
                                                  "price_fen": 100, "stock": 10})  # fmt: skip
    session = await ok(api, "POST", HF + "/sessions", m, {"room_id": e.ids["R"], "title": "t"})
    sp = f"{HF}/sessions/{session['id']}"
    await ok(api, "PUT", sp + "/lineup", m, {"product_ids": [product["id"]]})
    await ok(api, "PATCH", sp, m, {"status": "live"})
    pin = await ok(api, "POST", sp + "/pins", m, {"product_id": product["id"]})
    dest = await ok(api, "POST", DESTS, m, {"room_id": e.ids["R"], "name": "d",
                                            "url": "rtmp://push.example.com/live"})  # fmt: skip
    order_body = {"platform": "douyin", "platform_order_id": "DY-1", "amount_fen": 1,
                  "placed_at": "2025-05-01T12:00:00Z"}  # fmt: skip
    order = await ok(api, "POST", HF + "/orders", m, order_body)
    async with api.app[DB_SESSIONS]() as db, db.begin():
        base_id = await db.scalar(text("SELECT id FROM bases WHERE slug='haifeng'"))
        past = datetime.now(UTC) - timedelta(seconds=1)
        expired = await issue_token(db, Role.BASE_MANAGER, base_id=base_id, expires_at=past)
    revoked = await ok(api, "POST", "/api/v1/tokens", t["admin"],
                       {"role": "base_manager", "base": "haifeng"})  # fmt: skip
    await ok(api, "DELETE", f"/api/v1/tokens/{revoked['id']}", t["admin"])
    e.ids |= {"P": product["id"], "S": session["id"], "pin": pin["id"], "D": dest["id"],
              "O": order["id"], "expired": expired.token, "revoked": revoked["token"]}  # fmt: skip
    return e


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def product(**over: Any) -> Callable[[Env], dict[str, Any]]:
    def build(e: Env) -> dict[str, Any]:
        body = {"merchant_id": e.ids["M"], "title_zh": "茶", "price_fen": 100, **over}
        return {k: v for k, v in body.items() if v is not DROP}

    return build


def dest(url: str) -> Callable[[Env], dict[str, Any]]:
    return lambda e: {"room_id": e.ids["R"], "name": "d", "url": url}


@dataclass(frozen=True)
class Bad:
    method: str
    path: str  # formatted with Env.ids
    status: int
    code: str | None = None
    field: str | None = None
    json: Any = None  # a body, or a callable of the Env
    raw: bytes | None = None
    ctype: str = "application/json"
    auth: str | None = "Bearer {manager}"  # formatted with Env.ids; None sends no header
    actor: str | None = None  # a World token name instead of the manager's
    message: str = ""  # a substring the message must contain


def c(case_id: str, method: str, path: str, status: int, code: str | None = None, *,
      marks: Any = (), **kw: Any) -> Any:  # fmt: skip
    return pytest.param(Bad(method, path, status, code, **kw), id=case_id, marks=marks)


HUGE = "99999999999"  # 11 digits: accepted by the id parser, beyond int4

CASES = [
    # malformed and non-object JSON
    c("malformed-json", "POST", PRODUCTS, 400, "malformed_json", raw=b'{"title_zh": '),
    c("trailing-garbage", "POST", PRODUCTS, 400, "malformed_json", raw=b"{} {}"),
    c("empty-body", "POST", PRODUCTS, 400, "malformed_json", raw=b""),
    c("invalid-utf8", "POST", PRODUCTS, 400, "malformed_json", raw=b'{"title_zh": "\xff"}'),
    c("nan", "POST", PRODUCTS, 400, "malformed_json", raw=b'{"price_fen": NaN}'),
    c("patch-malformed", "PATCH", PRODUCTS + "/{P}", 400, "malformed_json", raw=b"{'stock': 1}"),
    *[c(f"non-object-{i}", "POST", PRODUCTS, 422, "validation_error", raw=raw)
      for i, raw in enumerate([b"[]", b'"text"', b"42", b"null", b"true", b"[{}]"])],
    # wrong types, unknown and missing fields, out-of-range values
    c("price-string", "POST", PRODUCTS, 422, "validation_error", field="price_fen",
      json=product(price_fen="abc")),
    c("price-float", "POST", PRODUCTS, 422, field="price_fen", json=product(price_fen=1.5)),
    c("price-list", "POST", PRODUCTS, 422, field="price_fen", json=product(price_fen=[])),
    c("price-bool", "POST", PRODUCTS, 422, field="price_fen", json=product(price_fen=True)),
    c("title-int", "POST", PRODUCTS, 422, field="title_zh", json=product(title_zh=123)),
    c("title-object", "POST", PRODUCTS, 422, field="title_zh", json=product(title_zh={})),
    c("merchant-string", "POST", PRODUCTS, 422, field="merchant_id", json=product(merchant_id="x")),
    c("status-unknown", "POST", PRODUCTS, 422, field="status", json=product(status="bogus")),
    c("currency-lower", "POST", PRODUCTS, 422, field="currency", json=product(currency="cny")),
    c("unknown-field", "POST", PRODUCTS, 422, field="colour", json=product(colour="red")),
    c("patch-unknown-field", "PATCH", PRODUCTS + "/{P}", 422, field="merchant_id",
      json={"merchant_id": 1}),
    c("patch-wrong-type", "PATCH", PRODUCTS + "/{P}", 422, field="stock", json={"stock": "many"}),
    c("missing-title", "POST", PRODUCTS, 422, field="title_zh", json=product(title_zh=DROP)),
    c("blank-title", "POST", PRODUCTS, 422, field="title_zh", json=product(title_zh="   ")),
    c("title-too-long", "POST", PRODUCTS, 422, field="title_zh", json=product(title_zh="x" * 201)),
    c("description-too-long", "POST", PRODUCTS, 422, field="description_zh",
      json=product(description_zh="x" * 20_001)),
    c("negative-price", "POST", PRODUCTS, 422, field="price_fen", json=product(price_fen=-1)),
    c("huge-price", "POST", PRODUCTS, 422, field="price_fen", json=product(price_fen=10**14)),
    c("negative-stock", "POST", PRODUCTS, 422, field="stock", json=product(stock=-5)),
    c("patch-negative-price", "PATCH", PRODUCTS + "/{P}", 422, field="price_fen",
      json={"price_fen": -100}),
    c("patch-null-title", "PATCH", PRODUCTS + "/{P}", 422, "validation_error",
      json={"title_zh": None}),
    c("order-negative-amount", "POST", HF + "/orders", 422, field="amount_fen",
      json={"platform": "x", "platform_order_id": "2", "amount_fen": -1,
            "placed_at": "2025-05-01T12:00:00Z"}),
    c("order-zero-quantity", "POST", HF + "/orders", 422, field="quantity",
      json={"platform": "x", "platform_order_id": "2", "amount_fen": 1, "quantity": 0,
            "placed_at": "2025-05-01T12:00:00Z"}),
    c("lineup-not-a-list", "PUT", HF + "/sessions/{S}/lineup", 422, field="product_ids",
      json={"product_ids": "1,2"}),
    c("lineup-duplicates", "PUT", HF + "/sessions/{S}/lineup", 422, field="product_ids",
      json=lambda e: {"product_ids": [e.ids["P"], e.ids["P"]]}),
    c("session-status-unknown", "PATCH", HF + "/sessions/{S}", 422, field="status",
      json={"status": "paused"}),
    c("bad-timezone", "POST", "/api/v1/bases", 422, field="timezone", actor="admin",
      json={"slug": "x", "name_zh": "x", "name_en": "x", "timezone": "../../etc/passwd"}),
    c("naive-placed-at", "POST", HF + "/orders", 422, field="placed_at",
      json={"platform": "x", "platform_order_id": "3", "amount_fen": 1,
            "placed_at": "2025-05-01T12:00:00"}),
    c("naive-token-expiry", "POST", "/api/v1/tokens", 422, field="expires_at",
      json=lambda e: {"role": "merchant", "base": "haifeng",
      "merchant_id": e.ids["M"], "expires_at": "2030-01-01T00:00:00"}),
    c("ref-beyond-int4", "POST", PRODUCTS, 422, field="merchant_id",
      json=product(merchant_id=2**40)),
    # content type and size
    c("text-plain", "POST", PRODUCTS, 415, "unsupported_media_type", raw=b"{}", ctype="text/plain"),
    c("form", "POST", PRODUCTS, 415, raw=b"a=1", ctype="application/x-www-form-urlencoded"),
    c("octet-stream", "POST", PRODUCTS, 415, raw=b"{}", ctype="application/octet-stream"),
    c("patch-text-plain", "PATCH", PRODUCTS + "/{P}", 415, raw=b"{}", ctype="text/plain"),
    c("oversized", "POST", PRODUCTS, 413, "payload_too_large", message=str(LIMIT),
      raw=b'{"title_zh": "' + b"x" * LIMIT + b'"}'),
    c("patch-oversized", "PATCH", PRODUCTS + "/{P}", 413, raw=b" " * (LIMIT + 1)),
    # query parameters and cursors
    c("repeated-param", "GET", PRODUCTS + "?limit=1&limit=2", 400, "bad_query", message="limit"),
    c("unknown-param", "GET", PRODUCTS + "?colour=red", 400, "bad_query", field="colour"),
    c("param-on-paramless", "GET", HF + "?x=1", 400, "bad_query"),
    *[c(f"limit-{v or 'empty'}", "GET", f"{PRODUCTS}?limit={v}", 400, "bad_query", field="limit")
      for v in ("0", "-1", "1001", "abc", "1.5", "")],
    c("status-filter", "GET", PRODUCTS + "?status=bogus", 400, "bad_query", field="status"),
    c("id-filter", "GET", PRODUCTS + "?merchant_id=abc", 400, "bad_query", field="merchant_id"),
    c("date-filter", "GET", HF + "/orders?placed_from=yesterday", 400, field="placed_from"),
    c("cursor-too-long", "GET", PRODUCTS + "?cursor=" + "a" * 201, 400, "bad_query",
      field="cursor"),
    *[c(f"cursor-{i}", "GET", f"{PRODUCTS}?cursor={cur}", 400, "invalid_cursor")
      for i, cur in enumerate(["!!!", "abc", "%C3%A9", b64(b'{"before": 3}'), b64(b"[1]"),
                               b64(b"null"), b64(b'{"after": -1}'), b64(b'{"after": "3"}'),
                               b64(b'{"after": true}'), b64(b'{"after": 1.5}'),
                               b64(b'{"after": 1' + b"0" * 30 + b"}"), b64(b"not json")])],
    c("cursor-beyond-int4", "GET", PRODUCTS + "?cursor=" + b64(b'{"after": 2147483648}'), 400,
      "invalid_cursor"),
    # unknown bases, rooms and ids
    c("unknown-base", "GET", "/api/v1/bases/nowhere", 404, "not_found"),
    c("unknown-base-list", "GET", "/api/v1/bases/nowhere/products", 404, "not_found"),
    c("unknown-base-create", "POST", "/api/v1/bases/nowhere/products", 404, json=product()),
    c("unknown-room", "GET", HF + "/rooms/nowhere", 404, "not_found"),
    c("unknown-room-key", "POST", HF + "/rooms/nowhere/stream-key", 404),
    c("unknown-room-ingest", "GET", HF + "/rooms/nowhere/ingest", 404),
    c("unknown-theme", "GET", "/api/v1/themes/nowhere", 404),
    c("unknown-product", "GET", PRODUCTS + "/999999999", 404, "not_found"),
    c("unknown-product-patch", "PATCH", PRODUCTS + "/999999999", 404, json={"stock": 1}),
    c("unknown-session-delete", "DELETE", HF + "/sessions/999999999", 404),
    c("unknown-session-lineup", "PUT", HF + "/sessions/999999999/lineup", 404,
      json={"product_ids": []}),
    c("unknown-token", "DELETE", "/api/v1/tokens/999999999", 404),
    c("non-numeric-token", "DELETE", "/api/v1/tokens/abc", 404),
    c("non-numeric-pin", "POST", HF + "/sessions/{S}/pins/abc/unpin", 404),
    *[c(f"product-id-{i}", "GET", f"{PRODUCTS}/{raw}", 404, "not_found")
      for i, raw in enumerate(["abc", "1.5", "-1", "1e3", "0x1", "+1", "%201", "0", "9" * 16,
                               "%D9%A1%D9%A2"])],
    c("product-id-superscript", "GET", PRODUCTS + "/%C2%B2", 404),
    c("token-id-superscript", "DELETE", "/api/v1/tokens/%C2%B2", 404),
    c("pin-id-superscript", "POST", HF + "/sessions/{S}/pins/%C2%B2/unpin", 404),
    c("product-id-beyond-int4", "GET", f"{PRODUCTS}/{HUGE}", 404),
    c("token-id-beyond-int4", "DELETE", f"/api/v1/tokens/{HUGE}", 404),
    c("slug-with-nul", "GET", HF + "/rooms/studio%00-1", 404),
    *[c(f"public-path-with-nul-{i}", "GET", path, 404, "not_found", auth=None)
      for i, path in enumerate(["/watch/haifeng/studio%00-1", "/static/player/a%00.js",
                                "/hls/haifeng/studio%00-1/live.m3u8", "/hls/a%00b.m3u8",
                                "/live/haifeng/studio%00-1/pins"])],
    # unknown routes and methods
    c("no-route", "GET", "/api/v1/nowhere", 404, "not_found"),
    c("no-version", "GET", "/api/v2/bases", 404, "not_found"),
    c("route-too-deep", "GET", PRODUCTS + "/{P}/extra", 404, "not_found"),
    c("wrong-method", "PUT", PRODUCTS, 405, "method_not_allowed", json={}),
    c("wrong-method-item", "POST", PRODUCTS + "/{P}", 405, "method_not_allowed", json={}),
    c("wrong-method-root", "DELETE", "/api/v1/bases", 405, "method_not_allowed"),
    # SQL-looking strings where they cannot be stored
    c("sql-base", "GET", "/api/v1/bases/haifeng'%20OR%20'1'='1/products", 404, "not_found"),
    c("sql-room", "GET", HF + "/rooms/x'%20OR%20'1'='1", 404, "not_found"),
    c("sql-id", "GET", PRODUCTS + "/1%20OR%201=1", 404, "not_found"),
    c("sql-id-delete", "DELETE", PRODUCTS + "/1;%20DROP%20TABLE%20products", 404),
    c("sql-query-enum", "GET", PRODUCTS + "?status=active'%20OR%20'1'='1", 400, field="status"),
    c("sql-query-id", "GET", PRODUCTS + "?merchant_id=1%20OR%201=1", 400, field="merchant_id"),
    c("sql-cursor", "GET", PRODUCTS + "?cursor='%20OR%201=1%20--", 400, "invalid_cursor"),
    c("sql-token", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer ' OR '1'='1"),
    c("sql-slug", "POST", HF + "/rooms", 422, field="slug",
      json={"slug": "x'; DROP TABLE rooms; --", "name_zh": "x", "name_en": "x"}),
    c("sql-token-base", "POST", "/api/v1/tokens", 422, field="base",
      json={"role": "host", "base": "haifeng' --", "host_id": 1}),
    # authentication
    c("no-auth", "GET", PRODUCTS, 401, "unauthenticated", auth=None, message="Authorization"),
    c("no-auth-write", "POST", PRODUCTS, 401, "unauthenticated", auth=None, json=product()),
    c("bearer-only", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer"),
    c("bearer-blank", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer    "),
    c("basic", "GET", PRODUCTS, 401, "unauthenticated", auth="Basic dXNlcjpwYXNz"),
    c("token-scheme", "GET", PRODUCTS, 401, "unauthenticated", auth="Token {manager}"),
    c("garbage-token", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer lbt_nope"),
    c("token-with-suffix", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer {manager} x"),
    c("expired", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer {expired}",
      message="expired"),
    c("expired-write", "POST", PRODUCTS, 401, auth="Bearer {expired}", json=product()),
    c("revoked", "GET", PRODUCTS, 401, "unauthenticated", auth="Bearer {revoked}",
      message="revoked"),
    c("revoked-write", "DELETE", PRODUCTS + "/{P}", 401, auth="Bearer {revoked}"),
    # destination push URLs: nothing ffmpeg could read as a file, another protocol or an option
    *[c(f"url-{i}", "POST", DESTS, 422, "validation_error", field="url", json=dest(url))
      for i, url in enumerate(["file:///etc/passwd", "concat:/etc/passwd|/etc/hosts",
                               "concat:rtmp://a.example/x", "pipe:1", "pipe:123456",
                               "http://example.com/live", "https://example.com/live",
                               "-i /etc/passwd", "-y rtmp://a.example/live", "rtmp:///live",
                               "rtmp://", "srt://:9000", "rtmp:host/live",
                               "rtmp://a.example/live key", "rtmp://a.example/live\n-y",
                               "rtmp://a.example/a|b", "rtmp://a.example/\x00", "tcp://a:9",
                               "udp://a.example:9000", "rtp://a.example:5004", "tee:x|y"])],
    c("url-patch", "PATCH", DESTS + "/{D}", 422, field="url", json={"url": "file:///etc/passwd"}),
    # URL schemes are case-insensitive (RFC 3986): accepted, stored in lower case
    c("url-upper-scheme", "POST", DESTS, 201, json=dest("RTMP://a.example/live")),
    # duplicates
    c("dup-room", "POST", HF + "/rooms", 409, "conflict",
      json={"slug": "studio-1", "name_zh": "x", "name_en": "x"}),
    c("dup-base", "POST", "/api/v1/bases", 409, "conflict", actor="admin",
      json={"slug": "haifeng", "name_zh": "x", "name_en": "x"}),
    c("dup-theme", "POST", "/api/v1/themes", 409, "conflict", actor="admin",
      json={"slug": "animation", "name_zh": "x", "name_en": "x"}),
    c("dup-order", "POST", HF + "/orders", 409, "conflict",
      json={"platform": "douyin", "platform_order_id": "DY-1", "amount_fen": 1,
            "placed_at": "2025-05-01T12:00:00Z"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_bad_input_is_refused_cleanly(
    env: Env, case: Bad, database_url: str, request: pytest.FixtureRequest
) -> None:
    api = env.api
    headers = {}
    if case.actor:
        headers["Authorization"] = f"Bearer {env.world.tokens[case.actor]}"
    elif case.auth is not None:
        headers["Authorization"] = case.auth.format(**env.ids)
    kw: dict[str, Any] = {"headers": headers}
    if case.raw is not None:
        kw |= {"data": case.raw}
        headers["Content-Type"] = case.ctype
    elif case.json is not None:
        kw |= {"json": case.json(env) if callable(case.json) else case.json}
    before = await db_dump(api)
    status, payload = await api.call(case.method, case.path.format(**env.ids), None, **kw)
    if case.status < 400:
        assert status == case.status, payload
        return
    err = check_envelope(status, payload)
    assert status == case.status, err
    assert case.code is None or err["code"] == case.code, err
    assert case.field is None or case.field in [f["field"] for f in err["fields"]], err
    assert case.message in err["message"], err
    assert await db_dump(api) == before, "a refused request changed data"


ODD_BUT_VALID = [
    pytest.param(HF + "/hosts", {"display_name": "主" * 150}, id="long-host-name"),
    pytest.param(HF + "/hosts", {"display_name": "x", "handle": "h" * 150},
                 id="long-handle"),
    pytest.param(DESTS, {"name": "d" * 150, "url": "rtmp://a.example/live"},
                 id="long-destination-name"),
    pytest.param(PRODUCTS, {"title_zh": "a\x00b"}, id="nul-in-title"),
    pytest.param(HF + "/merchants", {"name": "\x00"}, id="nul-only-name"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), ODD_BUT_VALID)
async def test_schema_valid_strings_are_stored_or_refused_never_500(
    env: Env, path: str, body: dict[str, Any]
) -> None:  # fmt: skip
    if path == PRODUCTS:
        body = product(**body)(env)
    if path == DESTS:
        body = {**body, "room_id": env.ids["R"]}
    before = await db_dump(env.api)
    status, payload = await env.api.call("POST", path, env.ids["manager"], body)
    if status == 201:
        assert {k: payload[k] for k in body} == body  # stored verbatim
    else:
        assert check_envelope(status, payload) and status == 422
        assert await db_dump(env.api) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(HF + "/orders?placed_from=2025-05-01T00:00:00", None, id="naive-filter"),
        pytest.param(HF + "/sessions", {"title": "t", "scheduled_start": "2025-05-01T20:00:00"},
                     id="naive-schedule"),
    ],
)  # fmt: skip
async def test_naive_datetimes_are_read_as_utc_or_refused(
    env: Env, path: str, body: dict[str, Any] | None
) -> None:
    method = "GET" if body is None else "POST"
    body = None if body is None else {**body, "room_id": env.ids["R"]}
    status, payload = await env.api.call(method, path, env.ids["manager"], body)
    assert status in (200, 201) or check_envelope(status, payload)["status"] in (400, 422)


async def test_accepted_variants(env: Env) -> None:
    """Positive controls: the near misses of the refused cases above do go through."""
    api, m, ids = env.api, env.ids["manager"], env.ids
    raw = orjson.dumps(product()(env))
    headers = {"Authorization": f"Bearer {m}", "Content-Type": "application/json; charset=utf-8"}
    status, _ = await api.call("POST", PRODUCTS, None, data=raw, headers=headers)
    assert status == 201
    status, _ = await api.call("GET", PRODUCTS, None, headers={"Authorization": f"bearer {m}"})
    assert status == 200
    status, page = await api.call("GET", PRODUCTS + "?limit=1000", m)
    assert status == 200 and len(page["items"]) == 2
    status, _ = await api.call("PATCH", f"{PRODUCTS}/{ids['P']}", m, {})
    assert status == 200
    for url in ("rtmp://a.example/live", "rtmps://a.example:443/app/x", "srt://a.example:9000"):
        status, created = await api.call("POST", DESTS, m, dest(url)(env))
        assert status == 201 and created["url"] == url, created
    room = {"slug": "studio-2", "name_zh": "x", "name_en": "x"}  # taken in haifeng, not in luhe
    status, _ = await api.call("POST", "/api/v1/bases/luhe/rooms", env.world.tokens["admin"], room)
    assert status == 201
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"role": "merchant", "base": "haifeng", "merchant_id": ids["M"], "expires_at": future}
    issued = await ok(api, "POST", "/api/v1/tokens", m, body)
    status, _ = await api.call("GET", PRODUCTS, issued["token"])
    assert status == 200


async def test_405_lists_the_allowed_methods(env: Env) -> None:
    resp = await env.api.client.request("PUT", PRODUCTS)
    assert resp.status == 405 and {"GET", "POST"} <= set(resp.headers["Allow"].split(","))
    check_envelope(resp.status, await resp.json())


SQL_LOOKING = [
    "'; DROP TABLE products; --",
    "Robert'); DROP TABLE merchants;--",
    '" OR 1=1 --',
    "1; DELETE FROM api_tokens WHERE 1=1",
    "%' OR title_zh LIKE '%",
    "\\'; SELECT pg_sleep(5); --",
]


@pytest.mark.parametrize("evil", SQL_LOOKING)
async def test_sql_looking_strings_are_stored_verbatim(env: Env, evil: str) -> None:
    api, m = env.api, env.ids["manager"]
    before = await db_dump(api)
    created = await ok(api, "POST", PRODUCTS, m, product(title_zh=evil, description_en=evil)(env))
    assert created["title_zh"] == evil and created["description_en"] == evil
    got = await ok(api, "GET", f"{PRODUCTS}/{created['id']}", m)
    assert got == created
    merchant = await ok(api, "POST", HF + "/merchants", m, {"name": evil})
    assert (await ok(api, "GET", f"{HF}/merchants/{merchant['id']}", m))["name"] == evil
    order = await ok(api, "POST", HF + "/orders", m, {"platform": "x", "platform_order_id": evil,
                     "amount_fen": 1, "placed_at": "2025-05-01T12:00:00Z"})  # fmt: skip
    assert order["platform_order_id"] == evil
    after = await db_dump(api)
    assert set(after) == set(before)  # every table is still there
    for table, grew in (("products", 1), ("merchants", 1), ("orders", 1), ("api_tokens", 0)):
        assert len(after[table]) == len(before[table]) + grew, table
    page = await ok(api, "GET", PRODUCTS + "?limit=1000", env.world.tokens["admin"])
    assert len(page["items"]) == 2 and created in page["items"]


async def test_stream_key_never_appears_whole(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api, t = env.api, env.world.tokens
    room = HF + "/rooms/studio-1"
    keys = []
    for _ in range(2):
        issued = await ok(api, "POST", room + "/stream-key", t["haifeng.manager"])
        keys.append(issued["stream_key"])
    key = keys[-1]
    assert len(key) >= 32 and keys[0] != key
    seen = [caplog.text]
    for token in (t["admin"], t["haifeng.manager"], t["haifeng.host"]):
        for path in (room, room + "/ingest", HF + "/rooms", HF + "/destinations"):
            status, payload = await api.call("GET", path, token)
            assert status == 200
            seen.append(repr(payload))
    seen.append(await (await api.client.get("/metrics")).text())
    async with api.app[DB_SESSIONS]() as db:
        row = await db.get(Room, env.ids["R"])
        assert row is not None and row.slug == "studio-1"
        assert row.stream_key_hash == credentials.digest(key) and row.stream_key_hint == key[-4:]
        assert await stream_keys.room_for_key(db, keys[0]) is None  # rotated out
        opened = await stream_keys.room_for_key(db, key)
        assert opened is not None and opened.room_id == row.id
    status, _ = await api.call("DELETE", room + "/stream-key", t["haifeng.manager"])
    assert status == 204
    async with api.app[DB_SESSIONS]() as db:
        assert await stream_keys.room_for_key(db, key) is None  # revoked
    seen.append(caplog.text)
    for text_ in seen:
        for k in keys:
            assert k not in text_ and k[4:] not in text_


async def test_secrets_are_compared_in_constant_time(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    issued = await ok(env.api, "POST", HF + "/rooms/studio-1/stream-key", env.ids["manager"])
    assert calls, "the API token was not checked with hmac.compare_digest"
    calls.clear()
    async with env.api.app[DB_SESSIONS]() as db:
        assert await stream_keys.room_for_key(db, issued["stream_key"]) is not None
    assert calls, "the stream key was not checked with hmac.compare_digest"
