"""Helpers for the listings tests: real image bytes, sheets, database dumps, the error envelope."""

from __future__ import annotations

import io
from typing import Any

from api_support import Api
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import select

from livebase.api.state import DB_SESSIONS
from livebase.db.models import Model

HF = "/api/v1/bases/haifeng"
PRODUCTS = HF + "/products"
# Published, real unified social credit codes (python-stdnum, tests/test_cn_uscc.doctest,
# "found online"): Guangdong companies, so they suit Shanwei sellers in the tests.
REAL_CODES = (
    "91440300568520498A",
    "9144030071526726XG",
    "9144060573144633XL",
    "91442000696462712R",
)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 0).save(out, fmt)
    return out.getvalue()


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(rows: list[list[Any]]) -> str:
    return "".join(",".join("" if v is None else str(v) for v in row) + "\r\n" for row in rows)


def gi_claim(**over: Any) -> dict[str, Any]:
    claim = {
        "system": "agricultural",
        "registered_name": "海丰莲花山茶",
        "registration_number": "AGI01459",
        "holder": "海丰县茶叶协会",
        "protected_area": "海丰县海城镇、公平镇、平东镇、黄羌镇",
        "standard_code": "AGI2014-02-1497",
        "credit_code": REAL_CODES[0],
        "authorisation_ref": "授权书 2025-001",
    }
    claim.update(over)
    return {k: v for k, v in claim.items() if v is not None}


async def db_dump(api: Api) -> dict[str, list[str]]:
    async with api.app[DB_SESSIONS]() as db:
        return {
            t.name: sorted(repr(tuple(r)) for r in (await db.execute(select(t))).all())
            for t in Model.metadata.sorted_tables
        }


def envelope(status: int, payload: Any) -> dict[str, Any]:
    """The error of the one JSON error envelope, checked for shape."""
    assert status != 500, payload
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    err = payload["error"]
    assert set(err) == {"status", "code", "message", "fields"}, err
    assert err["status"] == status and err["code"] and err["message"].strip()
    assert all(set(f) == {"field", "message"} for f in err["fields"]), err
    return err


async def ok(api: Api, method: str, path: str, token: str, body: Any = None, **kw: Any) -> Any:
    status, payload = await api.call(method, path, token, body, **kw)
    assert status < 300, (method, path, status, payload)
    return payload


async def send(
    api: Api, method: str, path: str, token: str, data: bytes, content_type: str
) -> tuple[int, Any]:
    return await api.call(method, path, token, data=data, headers={"Content-Type": content_type})
