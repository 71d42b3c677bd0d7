from __future__ import annotations

from api_support import Api, World

from livebase.db.models import Role


async def test_health_and_openapi_need_no_token(api: Api) -> None:
    status, body = await api.call("GET", "/healthz", None)
    assert status == 200 and body["status"] == "ok" and body["database"] == "ok"
    status, doc = await api.call("GET", "/openapi.json", None)
    assert status == 200 and doc["openapi"] == "3.1.0"


async def test_product_crud_roundtrip(world: World) -> None:
    api, t, ids = world.api, world.tokens, world.ids
    path = "/api/v1/bases/haifeng/products"
    status, created = await api.call(
        "POST",
        path,
        t["haifeng.merchant"],
        {
            "title_zh": "海丰莲花山茶",
            "title_en": "Lianhuashan tea",
            "price_fen": 12800,
            "stock": 50,
        },
    )
    assert status == 201, created
    assert created["merchant_id"] == ids["haifeng.merchant"]
    assert created["price_fen"] == 12800 and created["currency"] == "CNY"
    pid = created["id"]
    status, got = await api.call("GET", f"{path}/{pid}", t["haifeng.manager"])
    assert status == 200 and got == created
    status, patched = await api.call(
        "PATCH", f"{path}/{pid}", t["haifeng.merchant"], {"stock": 7, "status": "active"}
    )
    assert status == 200 and patched["stock"] == 7 and patched["status"] == "active"
    status, _ = await api.call("DELETE", f"{path}/{pid}", t["haifeng.merchant"])
    assert status == 204
    status, body = await api.call("GET", f"{path}/{pid}", t["admin"])
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_pagination_walks_every_row_once(world: World) -> None:
    api, t = world.api, world.tokens
    path = "/api/v1/bases/luhe/products"
    mid = world.ids["luhe.merchant"]
    for i in range(7):
        status, _ = await api.call(
            "POST",
            path,
            t["luhe.manager"],
            {
                "merchant_id": mid,
                "title_zh": f"青梅 {i}",
                "price_fen": 100 + i,
            },
        )
        assert status == 201
    seen: list[int] = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = await api.call("GET", path + query, t["luhe.manager"])
        assert status == 200
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(set(seen))


async def test_filtering_by_status(world: World) -> None:
    api, t = world.api, world.tokens
    path = "/api/v1/bases/haifeng/products"
    for status_value in ("draft", "active", "active"):
        await api.call(
            "POST",
            path,
            t["haifeng.merchant"],
            {
                "title_zh": "油占米",
                "price_fen": 3990,
                "status": status_value,
            },
        )
    status, page = await api.call("GET", path + "?status=active", t["haifeng.manager"])
    assert status == 200 and [p["status"] for p in page["items"]] == ["active", "active"]


async def test_session_lifecycle_lineup_and_pins(world: World) -> None:
    api, t, ids = world.api, world.tokens, world.ids
    base = "/api/v1/bases/haifeng"
    _, product = await api.call(
        "POST",
        f"{base}/products",
        t["haifeng.merchant"],
        {
            "title_zh": "青梅酒",
            "price_fen": 6800,
            "stock": 3,
            "status": "active",
        },
    )
    status, session = await api.call(
        "POST",
        f"{base}/sessions",
        t["haifeng.host"],
        {
            "room_id": ids["haifeng.room"],
            "title": "海丰好物专场",
        },
    )
    assert status == 201, session
    assert session["status"] == "planned" and session["host_id"] == ids["haifeng.host"]
    sid = session["id"]
    status, body = await api.call(
        "POST", f"{base}/sessions/{sid}/pins", t["haifeng.host"], {"product_id": product["id"]}
    )
    assert status == 409 and body["error"]["code"] == "session_not_live"
    status, lineup = await api.call(
        "PUT", f"{base}/sessions/{sid}/lineup", t["haifeng.host"], {"product_ids": [product["id"]]}
    )
    assert status == 200 and lineup["product_ids"] == [product["id"]]
    status, live = await api.call(
        "PATCH", f"{base}/sessions/{sid}", t["haifeng.host"], {"status": "live"}
    )
    assert status == 200 and live["status"] == "live" and live["started_at"]
    status, pin = await api.call(
        "POST",
        f"{base}/sessions/{sid}/pins",
        t["haifeng.host"],
        {"product_id": product["id"], "stream_offset_ms": 65000},
    )
    assert status == 201 and pin["unpinned_at"] is None
    status, ended = await api.call(
        "POST", f"{base}/sessions/{sid}/pins/{pin['id']}/unpin", t["haifeng.host"]
    )
    assert status == 200 and ended["unpinned_at"] is not None
    status, _ = await api.call(
        "PATCH", f"{base}/sessions/{sid}", t["haifeng.host"], {"status": "ended"}
    )
    assert status == 200
    status, body = await api.call(
        "PATCH", f"{base}/sessions/{sid}", t["haifeng.host"], {"status": "live"}
    )
    assert status == 409 and body["error"]["code"] == "invalid_transition"


async def test_tokens_shown_once_and_revocable(world: World) -> None:
    api, t, ids = world.api, world.tokens, world.ids
    status, issued = await api.call(
        "POST",
        "/api/v1/tokens",
        t["haifeng.manager"],
        {
            "role": "merchant",
            "base": "haifeng",
            "merchant_id": ids["haifeng.merchant"],
        },
    )
    assert status == 201 and issued["token"].startswith("lbt_")
    status, listing = await api.call("GET", "/api/v1/tokens", t["haifeng.manager"])
    assert status == 200 and all("token" not in row for row in listing["items"])
    status, _ = await api.call("GET", "/api/v1/bases/haifeng/products", issued["token"])
    assert status == 200
    status, _ = await api.call("DELETE", f"/api/v1/tokens/{issued['id']}", t["haifeng.manager"])
    assert status == 200
    status, body = await api.call("GET", "/api/v1/bases/haifeng/products", issued["token"])
    assert status == 401 and "revoked" in body["error"]["message"]


async def test_base_manager_cannot_issue_admin_tokens(world: World) -> None:
    status, body = await world.api.call(
        "POST", "/api/v1/tokens", world.tokens["haifeng.manager"], {"role": "admin"}
    )
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_admin_token_helper_roles(api: Api) -> None:
    token = await api.token(Role.ADMIN)
    status, page = await api.call("GET", "/api/v1/bases", token)
    assert status == 200 and {b["slug"] for b in page["items"]} >= {"haifeng", "luhe"}


async def test_destination_scheme_is_case_insensitive_and_key_masked(world: World) -> None:
    status, dest = await world.api.call(
        "POST",
        "/api/v1/bases/haifeng/destinations",
        world.tokens["haifeng.manager"],
        {
            "room_id": world.ids["haifeng.room"],
            "name": "抖音",
            "platform": "douyin",
            "url": "RTMP://push.example.com/live/",
            "stream_key": "stream-1234567890abcdef",
        },
    )
    assert status == 201, dest
    assert dest["url"] == "rtmp://push.example.com/live/" and dest["protocol"] == "rtmp"
    assert dest["stream_key_hint"] == "…cdef" and dest["state"] == "idle"
    assert "1234567890" not in str(dest)


async def test_go_live_kit(world: World) -> None:
    api, t = world.api, world.tokens
    room = "/api/v1/bases/haifeng/rooms/studio-1"
    status, issued = await api.call("POST", room + "/stream-key", t["haifeng.host"])
    assert status == 200, issued
    key = issued["stream_key"]
    assert issued["rtmp"]["stream_key"] == key and issued["whip"]["bearer_token"] == key
    assert issued["srt"]["url"] == f"srt://127.0.0.1:9000?streamid={key}"
    assert issued["obs_service_json"] == {
        "type": "rtmp_custom",
        "settings": {
            "server": "rtmp://127.0.0.1:1935/live",
            "key": key,
            "use_auth": False,
            "bwtest": False,
        },
    }
    assert issued["obs_whip_service_json"]["settings"]["server"].endswith("/whip/haifeng/studio-1")
    status, kit = await api.call("GET", room + "/ingest", t["haifeng.host"])
    assert status == 200 and kit["key_set"] and kit["stream_key_hint"] == "…" + key[-4:]
    assert key not in str(kit) and kit["rtmp"]["stream_key"] == "<stream key>"
    assert kit["encoder"]["keyframe_interval_s"] == 2 and kit["encoder"]["rate_control"] == "CBR"


async def test_srt_destination_secrets_are_masked(world: World) -> None:
    status, dest = await world.api.call(
        "POST",
        "/api/v1/bases/haifeng/destinations",
        world.tokens["haifeng.manager"],
        {
            "room_id": world.ids["haifeng.room"],
            "name": "视频号",
            "platform": "channels",
            "url": "srt://push.example.com:9000?streamid=live-secret-9876&passphrase=verysecret42",
        },
    )
    assert status == 201, dest
    assert dest["protocol"] == "srt" and "secret" not in dest["url"]
    assert dest["url"].endswith("streamid=…9876&passphrase=…et42")
