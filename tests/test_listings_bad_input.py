"""Bad listing input gets a clear 4xx in the one error envelope, never a 500, and changes nothing.

Every case compares a full dump of the database before and after the request.
"""

from __future__ import annotations

import codecs
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from api_support import World
from listings_support import (
    HF,
    PRODUCTS,
    csv_text,
    db_dump,
    envelope,
    gi_claim,
    image_bytes,
    ok,
    xlsx_bytes,
)
from PIL import Image

from livebase.listings import images

IMPORT = PRODUCTS + "/import"


@pytest.fixture(autouse=True)
def _no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.fixture
async def env(world: World) -> dict[str, Any]:
    """P1 has one SKU, P2 two; a live session lines up a sold-out product and an incomplete
    GI claim; M is the haifeng merchant."""
    api, m, mid = world.api, world.tokens["haifeng.manager"], world.ids["haifeng.merchant"]

    async def product(**body: Any) -> int:
        body = {"merchant_id": mid, "title_zh": "茶", "price_fen": 100, **body}
        created = await ok(api, "POST", PRODUCTS, m, body)
        return int(created["id"])

    ids: dict[str, Any] = {"M": mid, "manager": m}
    ids["P1"] = await product(stock=10)
    ids["P2"] = await product(skus=[{"sku": "a", "stock": 1}, {"sku": "b", "stock": 0}])
    ids["EMPTY"] = await product()
    ids["DRAFT_GI"] = await product(stock=5, gi=gi_claim(holder=None))
    session = await ok(api, "POST", HF + "/sessions", m,
                       {"room_id": world.ids["haifeng.room"], "title": "t"})  # fmt: skip
    ids["S"] = session["id"]
    sp = f"{HF}/sessions/{session['id']}"
    await ok(api, "PUT", sp + "/lineup", m, {"product_ids": [ids["EMPTY"], ids["DRAFT_GI"]]})
    await ok(api, "PATCH", sp, m, {"status": "live"})
    return ids


def body(**over: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def build(ids: dict[str, Any]) -> dict[str, Any]:
        return {"merchant_id": ids["M"], "title_zh": "茶", "price_fen": 100, **over}

    return build


def truncated_png() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(out, "PNG")
    data = out.getvalue()
    return data[: len(data) // 2]


def pixel_bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (7000, 7000)).save(out, "PNG")  # 49 MP, a few kilobytes
    return out.getvalue()


def form(data: bytes, name: str = "file", filename: str | None = "x.png") -> aiohttp.FormData:
    f = aiohttp.FormData(default_to_multipart=True)
    if filename is None:
        f.add_field(name, data.decode())  # a plain text field, no file
    else:
        f.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return f


def sheet(*rows: list[Any]) -> bytes:
    return csv_text([["product", "merchant_id", "title_zh", "sku", "price_fen"], *rows]).encode()


@dataclass(frozen=True)
class Bad:
    method: str
    path: str  # formatted with the env ids
    status: int
    code: str | None = None
    field: str | None = None
    message: str = ""
    json: Any = None
    raw: bytes | Callable[[], bytes] | None = None
    ctype: str = "application/json"
    form: Callable[[], aiohttp.FormData] | None = None


def c(case_id: str, method: str, path: str, status: int, code: str | None = None,
      **kw: Any) -> Any:  # fmt: skip
    return pytest.param(Bad(method, path, status, code, **kw), id=case_id)


P1, P2 = PRODUCTS + "/{P1}", PRODUCTS + "/{P2}"
PINS = HF + "/sessions/{S}/pins"
CSV = "text/csv"

CASES = [
    # products: SKUs, prices, stock
    c("negative-price", "POST", PRODUCTS, 422, "validation_error", field="price_fen",
      json=body(price_fen=-1)),
    c("negative-sku-price", "POST", PRODUCTS, 422, field="skus.0.price_fen",
      json=body(skus=[{"sku": "a", "price_fen": -100}])),
    c("negative-sku-stock", "POST", PRODUCTS, 422, field="skus.0.stock",
      json=body(skus=[{"sku": "a", "stock": -1}])),
    c("sku-stock-string", "POST", PRODUCTS, 422, field="skus.0.stock",
      json=body(skus=[{"sku": "a", "stock": "5"}])),
    c("bad-sku-code", "POST", PRODUCTS, 422, field="skus.0.sku",
      json=body(skus=[{"sku": "有空格 的"}])),
    c("duplicate-sku", "POST", PRODUCTS, 422, field="skus", json=body(skus=[{"sku": "a"},
                                                                          {"sku": "a"}])),
    c("no-skus", "POST", PRODUCTS, 422, field="skus", json=body(skus=[])),
    c("stock-and-skus", "POST", PRODUCTS, 422, field="stock",
      json=body(stock=3, skus=[{"sku": "a"}])),
    c("sku-unknown-field", "POST", PRODUCTS, 422, field="skus.0.colour",
      json=body(skus=[{"sku": "a", "colour": "red"}])),
    # themes, category, images
    c("unknown-theme", "POST", PRODUCTS, 422, field="themes", message="records that do not",
      json=body(themes=["gi-produce", "nope"])),
    c("bad-category", "POST", PRODUCTS, 422, field="category", json=body(category="茶 叶")),
    *[c(f"bad-image-url-{i}", "POST", PRODUCTS, 422, field="images.0", json=body(images=[url]))
      for i, url in enumerate(["javascript:alert(1)", "ftp://a.example/x.png", "/etc/passwd",
                               "https://a.example/a b.png", "https://", "",
                               "/media/images/../../x.png", "https://a.example/x|y.png"])],
    c("unknown-uploaded-image", "POST", PRODUCTS, 422, field="images",
      json=body(images=["/media/images/" + "a" * 64 + ".png"])),
    c("too-many-images", "POST", PRODUCTS, 422, field="images",
      json=body(images=[f"https://a.example/{i}.png" for i in range(21)])),
    # GI claims
    c("gi-unknown-system", "POST", PRODUCTS, 422, field="gi.system",
      json=body(gi={"system": "madrid"})),
    c("gi-bad-credit-code", "POST", PRODUCTS, 422, field="gi.credit_code",
      message="", json=body(gi=gi_claim(credit_code="91440300568520498B"))),
    c("gi-bad-agi-number", "POST", PRODUCTS, 422, field="gi.registration_number",
      json=body(gi=gi_claim(registration_number="AGI-1459"))),
    c("gi-bad-standard", "POST", PRODUCTS, 422, field="gi.standard_code",
      json=body(gi=gi_claim(standard_code="my standard"))),
    c("gi-unknown-field", "POST", PRODUCTS, 422, field="gi.seal", json=body(gi=gi_claim(seal=1))),
    c("gi-incomplete-active", "POST", PRODUCTS, 422, "gi_incomplete", field="gi.holder",
      json=body(status="active", gi=gi_claim(holder=None))),
    # updates
    c("patch-price-several-skus", "PATCH", P2, 409, "several_skus", json={"price_fen": 5}),
    c("patch-skus-and-price", "PATCH", P1, 422, field="price_fen",
      json={"price_fen": 5, "skus": [{"sku": "a", "price_fen": 1}]}),
    c("patch-themes-null", "PATCH", P1, 422, field="themes", json={"themes": None}),
    c("patch-skus-null", "PATCH", P1, 422, field="skus", json={"skus": None}),
    c("patch-negative-price", "PATCH", P1, 422, field="price_fen", json={"price_fen": -1}),
    c("patch-bad-gi", "PATCH", P1, 422, field="gi.credit_code",
      json={"gi": gi_claim(credit_code="123")}),
    c("patch-active-incomplete", "PATCH", PRODUCTS + "/{DRAFT_GI}", 422, "gi_incomplete",
      field="gi.holder", json={"status": "active"}),
    # SKU endpoints
    c("put-skus-negative", "PUT", P1 + "/skus", 422, field="skus.0.price_fen",
      json={"skus": [{"sku": "a", "price_fen": -1}]}),
    c("put-skus-missing-price", "PUT", P1 + "/skus", 422, field="skus.0.price_fen",
      json={"skus": [{"sku": "a"}]}),
    c("put-skus-duplicate", "PUT", P1 + "/skus", 422, field="skus",
      json={"skus": [{"sku": "a", "price_fen": 1}, {"sku": "a", "price_fen": 2}]}),
    c("put-skus-empty", "PUT", P1 + "/skus", 422, field="skus", json={"skus": []}),
    c("patch-unknown-sku", "PATCH", P1 + "/skus", 422, field="sku", message="does not have",
      json={"sku": "nope", "stock": 1}),
    c("patch-sku-negative-stock", "PATCH", P1 + "/skus", 422, field="stock",
      json={"sku": "default", "stock": -1}),
    c("patch-sku-null-price", "PATCH", P1 + "/skus", 422, field="price_fen",
      json={"sku": "default", "price_fen": None}),
    c("skus-of-unknown-product", "GET", PRODUCTS + "/999999/skus", 404, "not_found"),
    # merchants
    *[c(f"merchant-credit-code-{i}", "POST", HF + "/merchants", 422, field="credit_code",
        json={"name": "x", "credit_code": code})
      for i, code in enumerate(["91440300568520498B", "9144030056852049", "9144030056852O498A",
                                "91AB0300568520498A", "91440300568520498A1"])],
    c("merchant-patch-credit-code", "PATCH", HF + "/merchants/{M}", 422, field="credit_code",
      json={"credit_code": "914403007152672600"}),
    # image uploads
    c("image-is-text", "POST", P1 + "/images", 422, "invalid_image", field="file",
      message="", raw=b"this is not an image", ctype="image/png"),
    c("image-empty", "POST", P1 + "/images", 422, "invalid_image", raw=b"", ctype="image/png"),
    c("image-truncated", "POST", P1 + "/images", 422, "invalid_image", raw=truncated_png,
      ctype="image/png"),
    c("image-bmp", "POST", P1 + "/images", 422, "invalid_image", raw=lambda: image_bytes("BMP"),
      ctype="image/png"),
    c("image-pixel-bomb", "POST", P1 + "/images", 422, "invalid_image", raw=pixel_bomb,
      ctype="image/png"),
    c("image-html-in-form", "POST", P1 + "/images", 422, "invalid_image",
      form=lambda: form(b"<html><script>alert(1)</script></html>")),
    c("image-form-without-file", "POST", P1 + "/images", 422, field="file",
      form=lambda: form(b"x", name="note", filename=None)),
    c("image-multipart-no-boundary", "POST", P1 + "/images", 400, "bad_request",
      message="malformed", raw=b"garbage", ctype="multipart/form-data"),
    c("image-multipart-garbage", "POST", P1 + "/images", 400, "bad_request",
      message="malformed", raw=b"garbage", ctype="multipart/form-data; boundary=xyz"),
    c("image-as-json", "POST", P1 + "/images", 415, "unsupported_media_type", raw=b"{}"),
    c("image-as-text", "POST", P1 + "/images", 415, raw=b"x", ctype="text/plain"),
    c("image-too-large", "POST", P1 + "/images", 413, "payload_too_large",
      raw=lambda: b"\x89PNG" + b"\0" * images.MAX_BYTES, ctype="image/png"),
    c("image-of-unknown-product", "POST", PRODUCTS + "/999999/images", 404,
      raw=lambda: image_bytes(), ctype="image/png"),
    # imports
    c("import-bad-rows", "POST", IMPORT, 422, "bad_rows", field="line 3: price_fen",
      raw=lambda: sheet(["new-1", 1, "x", "a", 1], ["new-2", 1, "x", "a", -1]), ctype=CSV),
    c("import-utf16", "POST", IMPORT, 422, "bad_file", message="",
      raw=lambda: codecs.BOM_UTF16_LE + sheet().decode().encode("utf-16-le"), ctype=CSV),
    c("import-neither-utf8-nor-gbk", "POST", IMPORT, 422, "bad_file", field="file",
      raw=sheet() + b"new-1,1,\xff\xfe,a,1\r\n", ctype=CSV),
    c("import-empty", "POST", IMPORT, 422, "bad_file", raw=b"", ctype=CSV),
    c("import-image", "POST", IMPORT, 422, "bad_file", raw=lambda: image_bytes(), ctype=CSV),
    c("import-fake-xlsx", "POST", IMPORT, 422, "bad_file", raw=b"PK\x03\x04junk", ctype=CSV),
    c("import-csv-as-xlsx", "POST", IMPORT + "?format=xlsx", 422, "bad_file", raw=sheet(),
      ctype=CSV),
    c("import-xlsx-bad-header", "POST", IMPORT, 422, "bad_file", field="line 1: colour",
      raw=lambda: xlsx_bytes([["product", "title_zh", "sku", "price_fen", "colour"]]),
      ctype="application/octet-stream"),
    c("import-missing-column", "POST", IMPORT, 422, "bad_file", field="line 1: price_fen",
      raw=b"product,title_zh,sku\r\nnew-1,x,a\r\n", ctype=CSV),
    c("export-bad-format", "GET", PRODUCTS + "/export?format=pdf", 400, "bad_query",
      field="format"),
    c("import-bad-mode", "POST", IMPORT + "?mode=some", 400, "bad_query", field="mode",
      raw=sheet(), ctype=CSV),
    c("import-json", "POST", IMPORT, 415, "unsupported_media_type", raw=b"{}"),
    c("import-too-large", "POST", IMPORT, 413, "payload_too_large",
      raw=b"product\r\n" + b"x" * (4 * 1024 * 1024), ctype=CSV),
    # pins
    c("pin-sold-out", "POST", PINS, 409, "out_of_stock", json=lambda ids: {"product_id":
                                                                         ids["EMPTY"]}),
    c("pin-incomplete-gi", "POST", PINS, 422, "gi_incomplete", field="gi.holder",
      json=lambda ids: {"product_id": ids["DRAFT_GI"]}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_bad_listing_input_is_refused_cleanly(
    world: World, env: dict[str, Any], case: Bad
) -> None:
    api = world.api
    kw: dict[str, Any] = {"headers": {}}
    if case.form is not None:
        kw["data"] = case.form()
    elif case.raw is not None:
        kw["data"] = case.raw() if callable(case.raw) else case.raw
        kw["headers"]["Content-Type"] = case.ctype
    elif case.json is not None:
        kw["json"] = case.json(env) if callable(case.json) else case.json
    before = await db_dump(api)
    status, payload = await api.call(case.method, case.path.format(**env), env["manager"], **kw)
    err = envelope(status, payload)
    assert status == case.status, err
    assert case.code is None or err["code"] == case.code, err
    assert case.field is None or case.field in [f["field"] for f in err["fields"]], err
    assert case.message in err["message"], err
    assert await db_dump(api) == before, "a refused request changed data"
