"""Listings over the API: SKUs, themes, images, GI claims, going live and pinning."""

from __future__ import annotations

import io

import aiohttp
from api_support import World
from listings_support import (
    HF,
    PRODUCTS,
    REAL_CODES,
    db_dump,
    envelope,
    gi_claim,
    image_bytes,
    ok,
    send,
)
from PIL import Image
from sqlalchemy import text

from livebase.api.state import DB_SESSIONS, SETTINGS
from livebase.db.engine import create_engine
from livebase.db.migrate import upgrade


async def test_a_full_listing_round_trips(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    body = {
        "merchant_id": world.ids["haifeng.merchant"],
        "title_zh": "海丰莲花山茶",
        "title_en": "Lianhuashan tea",
        "category": "tea",
        "themes": ["gi-produce", "culture-tourism-wellness", "gi-produce"],
        "images": ["https://img.example.com/tea.jpg?w=800,h=600"],
        "price_fen": 12800,
        "skus": [
            {"sku": "250g", "spec_zh": "250g 罐装", "stock": 10},
            {
                "sku": "gift",
                "spec_zh": " 礼盒 ",
                "spec_en": "Gift box",
                "price_fen": 9900,
                "stock": 2,
            },
        ],
        "gi": gi_claim(),
        "status": "active",
    }
    created = await ok(api, "POST", PRODUCTS, m, body)
    assert created["price_fen"] == 9900 and created["stock"] == 12  # lowest price, total stock
    assert [(s["sku"], s["spec_zh"], s["price_fen"], s["stock"]) for s in created["skus"]] == [
        ("250g", "250g 罐装", 12800, 10),
        ("gift", "礼盒", 9900, 2),
    ]
    assert created["themes"] == ["culture-tourism-wellness", "gi-produce"]
    assert created["images"][0]["url"] == body["images"][0] and not created["images"][0]["uploaded"]
    assert created["gi"]["system_zh"] == "农产品地理标志" and created["gi_complete"] is True
    assert created["gi_missing"] == [] and created["category"] == "tea"
    got = await ok(api, "GET", f"{PRODUCTS}/{created['id']}", world.tokens["haifeng.host"])
    assert got == created
    page = await ok(api, "GET", PRODUCTS + "?category=tea", m)
    assert [p["id"] for p in page["items"]] == [created["id"]]


async def test_product_price_and_stock_are_the_default_skus(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    created = await ok(api, "POST", PRODUCTS, t, {"title_zh": "青梅", "price_fen": 100, "stock": 3})
    pid = created["id"]
    assert [(s["sku"], s["price_fen"], s["stock"], s["currency"]) for s in created["skus"]] == [
        ("default", 100, 3, "CNY")
    ]
    patched = await ok(api, "PATCH", f"{PRODUCTS}/{pid}", t, {"price_fen": 250, "stock": 0})
    assert (patched["price_fen"], patched["stock"]) == (250, 0)
    assert patched["skus"][0] | {"price_fen": 250, "stock": 0} == patched["skus"][0]
    patched = await ok(api, "PATCH", f"{PRODUCTS}/{pid}", t, {"currency": "HKD"})
    assert {s["currency"] for s in patched["skus"]} == {"HKD"}
    skus = {"skus": [{"sku": "a", "price_fen": 300, "stock": 1}, {"sku": "b", "price_fen": 200}]}
    listed = await ok(api, "PUT", f"{PRODUCTS}/{pid}/skus", t, skus)
    assert [s["sku"] for s in listed["skus"]] == ["a", "b"]
    status, payload = await api.call("PATCH", f"{PRODUCTS}/{pid}", t, {"stock": 9})
    assert status == 409 and envelope(status, payload)["code"] == "several_skus"
    listed = await ok(api, "PATCH", f"{PRODUCTS}/{pid}/skus", t, {"sku": "b", "stock": 4})
    assert [s["stock"] for s in listed["skus"]] == [1, 4]
    got = await ok(api, "GET", f"{PRODUCTS}/{pid}", t)
    assert (got["price_fen"], got["stock"], got["currency"]) == (200, 5, "HKD")
    assert await ok(api, "GET", f"{PRODUCTS}/{pid}/skus", t) == listed


async def test_a_gi_claim_must_be_complete_to_go_live(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    draft = gi_claim(holder=None, authorisation_ref=None, credit_code=None)
    created = await ok(
        api, "POST", PRODUCTS, t, {"title_zh": "茶", "price_fen": 1, "stock": 1, "gi": draft}
    )
    pid = created["id"]
    assert created["gi_complete"] is False
    missing = {f["field"] for f in created["gi_missing"]}
    assert missing == {"gi.holder", "gi.authorisation_ref", "gi.credit_code"}
    before = await db_dump(api)
    status, payload = await api.call("PATCH", f"{PRODUCTS}/{pid}", t, {"status": "active"})
    err = envelope(status, payload)
    assert status == 422 and err["code"] == "gi_incomplete"
    assert {f["field"] for f in err["fields"]} == missing
    assert await db_dump(api) == before
    live = await ok(api, "PATCH", f"{PRODUCTS}/{pid}", t, {"status": "active", "gi": gi_claim()})
    assert live["status"] == "active" and live["gi_complete"] is True
    # An active listing cannot lose what its claim needs …
    status, payload = await api.call("PATCH", f"{PRODUCTS}/{pid}", t, {"gi": draft})
    assert status == 422 and envelope(status, payload)["code"] == "gi_incomplete"
    # … but it can stop claiming a GI at all.
    plain = await ok(api, "PATCH", f"{PRODUCTS}/{pid}", t, {"gi": None})
    assert plain["gi"] is None and plain["gi_complete"] is None and plain["gi_missing"] == []
    body = {"title_zh": "茶", "price_fen": 1, "status": "active", "gi": {"system": "trademark"}}
    status, payload = await api.call("POST", PRODUCTS, t, body)
    assert status == 422 and len(envelope(status, payload)["fields"]) == 6


async def test_merchant_credit_codes_are_checked(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    created = await ok(
        api,
        "POST",
        HF + "/merchants",
        m,
        {"name": "汕尾商家", "credit_code": REAL_CODES[1].lower()},
    )
    assert created["credit_code"] == REAL_CODES[1]
    for bad in ("9144030071526726XH", "914403007152672", "9144030071526726OG"):
        before = await db_dump(api)
        status, payload = await api.call(
            "PATCH", f"{HF}/merchants/{created['id']}", m, {"credit_code": bad}
        )
        err = envelope(status, payload)
        assert status == 422 and [f["field"] for f in err["fields"]] == ["credit_code"]
        assert await db_dump(api) == before


async def test_uploaded_images_are_checked_stored_once_and_served(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    pid = (await ok(api, "POST", PRODUCTS, t, {"title_zh": "米", "price_fen": 1}))["id"]
    png = image_bytes("PNG", (12, 7))
    first = await ok(
        api, "POST", f"{PRODUCTS}/{pid}/images", t, data=png, headers={"Content-Type": "image/png"}
    )
    assert first["uploaded"] and (first["width"], first["height"]) == (12, 7)
    assert first["content_type"] == "image/png" and first["url"].startswith("/media/images/")
    form = aiohttp.FormData()
    form.add_field("file", png, filename="same.png", content_type="image/png")
    again = await ok(api, "POST", f"{PRODUCTS}/{pid}/images", t, data=form)
    assert again["url"] == first["url"] and again["id"] != first["id"]
    form = aiohttp.FormData()
    form.add_field("note", "the file is the second part")
    form.add_field("photo", image_bytes("JPEG"), filename="p.jpg", content_type="image/jpeg")
    jpeg = await ok(api, "POST", f"{PRODUCTS}/{pid}/images", t, data=form)
    assert jpeg["content_type"] == "image/jpeg" and jpeg["url"].endswith(".jpg")
    webp = await ok(
        api,
        "POST",
        f"{PRODUCTS}/{pid}/images",
        t,
        data=image_bytes("WEBP"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert webp["content_type"] == "image/webp"
    directory = api.app[SETTINGS].data_dir / "images"
    assert sorted(p.suffix for p in directory.iterdir()) == [".jpg", ".png", ".webp"]
    assert (directory / first["url"].rsplit("/", 1)[1]).read_bytes() == png
    resp = await api.client.get(first["url"])
    assert resp.status == 200 and await resp.read() == png
    assert (
        resp.headers["Content-Type"] == "image/png" and "immutable" in resp.headers["Cache-Control"]
    )
    resp = await api.client.get("/media/images/" + "0" * 64 + ".png")
    assert resp.status == 404 and envelope(404, await resp.json())["code"] == "not_found"
    resp = await api.client.get("/media/images/..%2F..%2Fetc%2Fpasswd")
    assert resp.status == 404
    order = [jpeg["url"], "https://img.example.com/x.png", first["url"]]
    patched = await ok(api, "PATCH", f"{PRODUCTS}/{pid}", t, {"images": order})
    assert [i["url"] for i in patched["images"]] == order
    assert [i["uploaded"] for i in patched["images"]] == [True, False, True]
    assert patched["images"][0]["id"] == jpeg["id"]  # kept, not replaced


async def test_uploads_may_be_larger_than_json_bodies(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    pid = (await ok(api, "POST", PRODUCTS, t, {"title_zh": "米", "price_fen": 1}))["id"]
    out = io.BytesIO()
    Image.effect_noise((1100, 1100), 80).convert("RGB").save(out, "PNG")
    photo = out.getvalue()
    assert len(photo) > api.app[SETTINGS].max_request_bytes
    status, image = await send(api, "POST", f"{PRODUCTS}/{pid}/images", t, photo, "image/png")
    assert status == 201 and (image["width"], image["height"]) == (1100, 1100), image


async def test_pins_refuse_sold_out_and_incomplete_gi_products(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    mid = world.ids["haifeng.merchant"]
    sold_out = await ok(
        api, "POST", PRODUCTS, m, {"merchant_id": mid, "title_zh": "售罄", "price_fen": 1}
    )
    draft_gi = gi_claim(holder=None)
    unclaimed = await ok(
        api,
        "POST",
        PRODUCTS,
        m,
        {"merchant_id": mid, "title_zh": "未完成", "price_fen": 1, "stock": 4, "gi": draft_gi},
    )
    session = await ok(
        api, "POST", HF + "/sessions", m, {"room_id": world.ids["haifeng.room"], "title": "直播"}
    )
    sp = f"{HF}/sessions/{session['id']}"
    await ok(api, "PUT", sp + "/lineup", m, {"product_ids": [sold_out["id"], unclaimed["id"]]})
    await ok(api, "PATCH", sp, m, {"status": "live"})
    before = await db_dump(api)
    status, payload = await api.call("POST", sp + "/pins", m, {"product_id": sold_out["id"]})
    assert status == 409 and envelope(status, payload)["code"] == "out_of_stock"
    status, payload = await api.call("POST", sp + "/pins", m, {"product_id": unclaimed["id"]})
    err = envelope(status, payload)
    assert status == 422 and err["code"] == "gi_incomplete"
    assert [f["field"] for f in err["fields"]] == ["gi.holder"]
    assert await db_dump(api) == before
    await ok(api, "PATCH", f"{PRODUCTS}/{sold_out['id']}/skus", m, {"sku": "default", "stock": 1})
    await ok(api, "POST", sp + "/pins", m, {"product_id": sold_out["id"]})
    await ok(api, "PATCH", f"{PRODUCTS}/{unclaimed['id']}", m, {"gi": gi_claim()})
    await ok(api, "POST", sp + "/pins", m, {"product_id": unclaimed["id"]})


async def test_deleting_a_product_or_theme_takes_its_rows_along(world: World) -> None:
    api, m, admin = world.api, world.tokens["haifeng.manager"], world.tokens["admin"]
    await ok(
        api,
        "POST",
        "/api/v1/themes",
        admin,
        {"slug": "seasonal", "name_zh": "时令", "name_en": "Seasonal"},
    )
    body = {
        "merchant_id": world.ids["haifeng.merchant"],
        "title_zh": "茶",
        "price_fen": 1,
        "themes": ["seasonal", "gi-produce"],
        "images": ["https://a.example/1.png"],
        "gi": gi_claim(),
        "skus": [{"sku": "a"}, {"sku": "b"}],
    }
    product = await ok(api, "POST", PRODUCTS, m, body)
    await ok(api, "DELETE", "/api/v1/themes/seasonal", admin)
    got = await ok(api, "GET", f"{PRODUCTS}/{product['id']}", m)
    assert got["themes"] == ["gi-produce"]
    await ok(api, "DELETE", f"{PRODUCTS}/{product['id']}", m)
    dump = await db_dump(api)
    for table in ("product_skus", "product_images", "product_themes", "product_gi_claims"):
        assert dump[table] == [], table


async def test_migration_gives_existing_products_a_default_sku(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0002")
        async with engine.begin() as conn:
            now = "2025-05-01 12:00:00+00:00"
            await conn.execute(
                text(
                    "INSERT INTO bases (slug, name_zh, name_en, timezone, created_at, updated_at) "
                    f"VALUES ('b', 'b', 'b', 'UTC', '{now}', '{now}')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO merchants (base_id, name, created_at, updated_at) "
                    f"VALUES (1, 'm', '{now}', '{now}')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO products (base_id, merchant_id, title_zh, price_fen, currency, "
                    f"stock, status, created_at, updated_at) VALUES (1, 1, '青梅', 3980, 'CNY', 7, "
                    f"'active', '{now}', '{now}')"
                )
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT product_id, sku, price_fen, stock, currency FROM product_skus")
                )
            ).all()
        assert [tuple(r) for r in rows] == [(1, "default", 3980, 7, "CNY")]
    finally:
        await engine.dispose()


async def test_db_session_sees_derived_columns(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    body = {
        "title_zh": "米",
        "price_fen": 500,
        "skus": [{"sku": "a", "stock": 2}, {"sku": "b", "price_fen": 50}],
    }
    created = await ok(api, "POST", PRODUCTS, t, body)
    async with api.app[DB_SESSIONS]() as db:
        row = (
            await db.execute(
                text("SELECT price_fen, stock FROM products WHERE id = :i"), {"i": created["id"]}
            )
        ).one()
    assert tuple(row) == (50, 2)
