"""Bulk import and export over the API: round trips, encodings, the two modes, scopes."""

from __future__ import annotations

import codecs
from typing import Any

import aiohttp
from api_support import World
from listings_support import (
    PRODUCTS,
    REAL_CODES,
    csv_text,
    db_dump,
    envelope,
    gi_claim,
    image_bytes,
    ok,
    send,
    xlsx_bytes,
)

from livebase.listings.importer import COLUMNS
from livebase.listings.tables import XLSX_MEDIA_TYPE

EXPORT = PRODUCTS + "/export"
IMPORT = PRODUCTS + "/import"
HEADER = ["product", "merchant_id", "title_zh", "sku", "spec_zh", "price_fen", "stock", "status"]


async def listings(world: World) -> list[dict[str, Any]]:
    """Three products in haifeng: several SKUs, a GI claim, themes, an uploaded image."""
    api, m = world.api, world.tokens["haifeng.manager"]
    mid = world.ids["haifeng.merchant"]
    made = [
        await ok(
            api,
            "POST",
            PRODUCTS,
            m,
            {
                "merchant_id": mid,
                "title_zh": "陆河青梅",
                "title_en": "Green plums",
                "description_zh": '第一行\n第二行, 有逗号 "引号"',
                "category": "fruit",
                "themes": ["gi-produce", "culture-tourism-wellness"],
                "price_fen": 3980,
                "skus": [
                    {"sku": "500g", "spec_zh": "500克", "stock": 20},
                    {"sku": "gift", "spec_zh": "礼盒", "spec_en": "Gift", "price_fen": 16800},
                ],
                "gi": gi_claim(
                    system="protected_product",
                    registered_name="陆河青梅",
                    registration_number="国家质检总局2006年第XX号公告",
                    standard_code=None,
                    credit_code=REAL_CODES[3],
                ),
                "status": "active",
                "images": ["https://img.example.com/a.jpg?x=1,2;y=3"],
            },
        ),
        await ok(
            api,
            "POST",
            PRODUCTS,
            m,
            {
                "merchant_id": world.ids["haifeng.other_merchant"],
                "title_zh": "=1+1 不是公式",
                "price_fen": 100,
            },
        ),
        await ok(
            api,
            "POST",
            PRODUCTS,
            world.tokens["haifeng.merchant"],
            {"title_zh": "油占米", "price_fen": 5990, "stock": 3, "currency": "CNY"},
        ),
    ]
    await ok(
        api,
        "POST",
        f"{PRODUCTS}/{made[2]['id']}/images",
        m,
        data=image_bytes(),
        headers={"Content-Type": "image/png"},
    )
    made[2] = await ok(api, "GET", f"{PRODUCTS}/{made[2]['id']}", m)
    return made


async def export(world: World, fmt: str, token: str | None = None, query: str = "") -> bytes:
    token = token or world.tokens["haifeng.manager"]
    resp = await world.api.client.get(
        f"{EXPORT}?format={fmt}{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200, await resp.text()
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith(f'.{fmt}"')
    return await resp.read()


async def test_export_then_import_changes_nothing(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    made = await listings(world)
    for fmt, media in (("csv", "text/csv"), ("xlsx", XLSX_MEDIA_TYPE)):
        data = await export(world, fmt)
        if fmt == "csv":
            text = data.decode("utf-8-sig")
            assert data.startswith(codecs.BOM_UTF8) and text.startswith(",".join(COLUMNS))
            assert len(text.strip().split("\r\n")) >= 5 and "'=1+1 不是公式" in text
        before = await db_dump(api)
        report = await ok(
            api, "POST", f"{IMPORT}?format={fmt}", m, data=data, headers={"Content-Type": media}
        )
        assert report["updated"] == [p["id"] for p in made] and report["created"] == []
        assert report["problems"] == [] and report["rows"] == 4
        assert await export(world, fmt) == data or fmt == "xlsx"
        after = await db_dump(api)
        assert {
            t: rows
            for t, rows in after.items()
            if t not in ("products", "product_skus", "product_gi_claims")
        } == {
            t: rows
            for t, rows in before.items()
            if t not in ("products", "product_skus", "product_gi_claims")
        }
        for product in made:
            assert await ok(api, "GET", f"{PRODUCTS}/{product['id']}", m) == product
    # The XLSX export reads back to the same rows as the CSV one.
    csv_again = await export(world, "csv")
    report = await ok(
        api,
        "POST",
        IMPORT,
        m,
        data=await export(world, "xlsx"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert report["format"] == "xlsx" and report["encoding"] == "xlsx"
    assert await export(world, "csv") == csv_again


async def test_export_follows_scope_and_filters(world: World) -> None:
    made = await listings(world)
    merchant = world.tokens["haifeng.merchant"]
    mine = (await export(world, "csv", merchant)).decode("utf-8-sig").split("\r\n")[1:-1]
    assert {int(line.split(",", 1)[0]) for line in mine} == {made[0]["id"], made[2]["id"]}
    host = world.tokens["haifeng.host"]
    rows = (await export(world, "csv", host, "&status=active")).decode("utf-8-sig")
    assert len(rows.strip().split("\r\n")) == 3  # header and the two SKUs of the active one
    luhe = {"Authorization": f"Bearer {world.tokens['luhe.manager']}"}
    resp = await world.api.client.get(EXPORT, headers=luhe)
    assert resp.status == 404 and envelope(404, await resp.json())["code"] == "not_found"


async def test_new_products_from_a_gbk_csv(world: World) -> None:
    api, m, mid = world.api, world.tokens["haifeng.manager"], world.ids["haifeng.merchant"]
    text = csv_text(
        [
            [
                *HEADER,
                "themes",
                "gi_system",
                "gi_registered_name",
                "gi_registration_number",
                "gi_holder",
                "gi_protected_area",
                "gi_credit_code",
                "gi_authorisation_ref",
            ],
            [
                "new-tea",
                mid,
                "海丰莲花山茶",
                "250g",
                "罐装",
                12800,
                5,
                "active",
                "gi-produce",
                "agricultural",
                "海丰莲花山茶",
                "AGI01459",
                "茶叶协会",
                "海丰县",
                REAL_CODES[0],
                "授权书",
            ],
            ["new-tea", "", "", "500g", "礼盒", 22800, 1, "", "", "", "", "", "", "", "", ""],
            ["new-rice", mid, "海丰油占米", "5kg", "", 5990, 9, "", "", "", "", "", "", "", "", ""],
        ]
    )
    report = await ok(
        api, "POST", IMPORT, m, data=text.encode("gbk"), headers={"Content-Type": "text/csv"}
    )
    assert report["encoding"] == "gbk" and len(report["created"]) == 2 and report["rows"] == 3
    tea = await ok(api, "GET", f"{PRODUCTS}/{report['created'][0]}", m)
    assert tea["title_zh"] == "海丰莲花山茶" and [s["sku"] for s in tea["skus"]] == ["250g", "500g"]
    assert tea["status"] == "active" and tea["gi_complete"] and tea["themes"] == ["gi-produce"]
    rice = await ok(api, "GET", f"{PRODUCTS}/{report['created'][1]}", m)
    assert rice["status"] == "draft" and rice["gi"] is None and rice["stock"] == 9


async def test_columns_left_out_keep_their_values(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    made = await listings(world)
    plum = made[0]
    text = csv_text(
        [
            ["product", "title_zh", "sku", "price_fen", "stock", "description_zh"],
            [plum["id"], "陆河青梅", "500g", 3500, 8, ""],
        ]
    )
    await ok(api, "POST", IMPORT, m, data=text.encode(), headers={"Content-Type": "text/csv"})
    got = await ok(api, "GET", f"{PRODUCTS}/{plum['id']}", m)
    assert [(s["sku"], s["price_fen"], s["stock"]) for s in got["skus"]] == [("500g", 3500, 8)]
    assert got["description_zh"] is None  # a blank cell clears
    assert got["gi"] == plum["gi"] and got["themes"] == plum["themes"]  # left-out columns stay
    assert got["status"] == "active" and got["images"] == plum["images"]


BAD_ROWS = [
    [
        "product",
        "merchant_id",
        "title_zh",
        "sku",
        "price_fen",
        "stock",
        "gi_system",
        "gi_credit_code",
    ],
    ["new-1", "{M}", "好的", "a", 100, 1, "", ""],
    ["new-2", "{M}", "坏价格", "a", -1, 1, "", ""],
    ["new-3", "{M}", "好的", "b", 100, 1, "", ""],
    ["new-4", "{M}", "坏代码", "a", 100, 1, "trademark", "91440300568520498B"],
    ["new-4", "{M}", "坏代码", "a", 100, 1, "", ""],
    ["new-5", "{M}", "未知主题", "a", 100, 1, "", ""],
    ["999999", "", "不存在", "a", 1, 1, "", ""],
    ["new-6", "{OTHER}", "别的基地的商家", "a", 1, 1, "", ""],
]
BAD_FIELDS = [
    "line 3: price_fen",
    "line 5: gi_credit_code",
    "line 6: sku",
    "line 8: product",
    "line 9: merchant_id",
]


def bad_rows(world: World) -> bytes:
    values = {"{M}": world.ids["haifeng.merchant"], "{OTHER}": world.ids["luhe.merchant"]}
    return csv_text([[values.get(str(v), v) for v in row] for row in BAD_ROWS]).encode()


async def test_all_or_nothing_reports_every_bad_row_and_stores_nothing(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    before = await db_dump(api)
    status, payload = await send(api, "POST", IMPORT, m, bad_rows(world), "text/csv")
    err = envelope(status, payload)
    assert status == 422 and err["code"] == "bad_rows" and "nothing was imported" in err["message"]
    assert [f["field"] for f in err["fields"]] == BAD_FIELDS
    assert "no merchant" in err["fields"][-1]["message"]
    assert await db_dump(api) == before


async def test_good_rows_stores_the_good_products_and_reports_the_rest(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    status, report = await send(
        api, "POST", IMPORT + "?mode=good_rows", m, bad_rows(world), "text/csv"
    )
    assert status == 200, report
    assert len(report["created"]) == 3 and report["rows"] == 8
    assert [f"line {p['line']}: {p['column']}" for p in report["problems"]] == BAD_FIELDS
    assert report["skipped_lines"] == [3, 5, 6, 8, 9]
    titles = {
        (await ok(api, "GET", f"{PRODUCTS}/{pid}", m))["title_zh"] for pid in report["created"]
    }
    assert titles == {"好的", "未知主题"}


async def test_a_merchant_imports_only_its_own_listings(world: World) -> None:
    api, t = world.api, world.tokens["haifeng.merchant"]
    made = await listings(world)
    other = made[1]  # the other merchant's
    text = csv_text(
        [
            ["product", "merchant_id", "title_zh", "sku", "price_fen"],
            [other["id"], "", "抢来的", "default", 1],
            ["new-1", world.ids["haifeng.other_merchant"], "我的", "a", 1],
        ]
    )
    before = await db_dump(api)
    status, payload = await send(api, "POST", IMPORT, t, text.encode(), "text/csv")
    err = envelope(status, payload)
    assert status == 422 and [f["field"] for f in err["fields"]] == ["line 2: product"]
    assert await db_dump(api) == before
    report = await ok(
        api,
        "POST",
        IMPORT + "?mode=good_rows",
        t,
        data=text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    mine = await ok(api, "GET", f"{PRODUCTS}/{report['created'][0]}", t)
    assert mine["merchant_id"] == world.ids["haifeng.merchant"]  # as when it creates one


async def test_multipart_upload_and_charset(world: World) -> None:
    api, m, mid = world.api, world.tokens["haifeng.manager"], world.ids["haifeng.merchant"]
    text = csv_text(
        [
            ["product", "merchant_id", "title_zh", "sku", "price_fen"],
            ["new-1", mid, "表单上传", "a", 1],
        ]
    )
    form = aiohttp.FormData()
    form.add_field("mode", "ignored")
    form.add_field("file", text.encode("gbk"), filename="商品.csv", content_type="text/csv")
    report = await ok(api, "POST", IMPORT, m, data=form)
    assert report["encoding"] == "gbk" and len(report["created"]) == 1
    form = aiohttp.FormData()
    form.add_field(
        "file",
        xlsx_bytes(
            [
                ["product", "merchant_id", "title_zh", "sku", "price_fen"],
                ["new-2", mid, "表格", "a", 2.0],
            ]
        ),
        filename="p.xlsx",
        content_type=XLSX_MEDIA_TYPE,
    )
    report = await ok(api, "POST", IMPORT + "?format=xlsx", m, data=form)
    assert report["format"] == "xlsx" and len(report["created"]) == 1
    status, payload = await send(
        api, "POST", IMPORT, m, text.encode("gbk"), "text/csv; charset=utf-8"
    )
    assert status == 422 and "not valid utf-8" in envelope(status, payload)["fields"][0]["message"]
