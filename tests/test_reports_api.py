"""The daily report over HTTP: figures, formats, who may read which base, and bad input."""

from __future__ import annotations

import io

import openpyxl
import pytest
from api_support import World
from report_support import LoadedDay, load_day

from livebase.api.state import DB_SESSIONS

PATH = "/api/v1/bases/haifeng/reports/daily"


@pytest.fixture
async def loaded(world: World) -> LoadedDay:
    return await load_day(world.api.app[DB_SESSIONS])


async def get(world: World, token: str, path: str) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {world.tokens[token]}"}
    resp = await world.api.client.get(path, headers=headers)
    return resp.status, resp.content_type, await resp.read()


async def test_each_format(world: World, loaded: LoadedDay) -> None:
    status, body = await world.api.call("GET", PATH + "?date=2025-05-01", world.tokens["admin"])
    assert status == 200 and body["has_data"] is True
    assert body["headline"][0] == {
        "name": "gmv_fen", "value": 77_600,
        "vs_previous_day": {"previous": 0, "change": 77_600, "change_pct": None},
        "vs_last_week": {"previous": 0, "change": 77_600, "change_pct": None},
    }  # fmt: skip
    status, ctype, page = await get(world, "haifeng.manager", PATH + "?date=2025-05-01&format=html")
    assert (status, ctype) == (200, "text/html") and "¥776.00" in page.decode()
    status, ctype, page = await get(
        world, "haifeng.manager", PATH + "?date=2025-05-01&format=html&lang=en"
    )
    assert "Host ranking" in page.decode()
    status, ctype, data = await get(world, "admin", PATH + "?date=2025-05-01&format=xlsx")
    assert status == 200 and ctype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book["summary"]["B2"].value == 776
    status, ctype, data = await get(world, "admin", PATH + "?date=2025-05-01&format=csv")
    assert (status, ctype) == (200, "text/csv") and b"776.00" in data


async def test_a_manager_sees_only_their_base(world: World, loaded: LoadedDay) -> None:
    status, body = await world.api.call("GET", PATH, world.tokens["luhe.manager"])
    assert status == 404 and body["error"]["message"] == "no base 'haifeng'"
    for role in ("haifeng.host", "haifeng.merchant"):
        status, body = await world.api.call("GET", PATH, world.tokens[role])
        assert status == 403, body
    status, body = await world.api.call(
        "GET", "/api/v1/reports/daily", world.tokens["luhe.manager"]
    )
    assert status == 403 and "base_manager role may not" in body["error"]["message"]
    status, body = await world.api.call(
        "GET", "/api/v1/reports/daily?date=2025-05-01", world.tokens["admin"]
    )
    assert status == 200 and body["scope"] == "city"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("date=2025-13-01", "date", "not a date of the calendar"),
        ("date=01/05/2025", "date", "write it as YYYY-MM-DD"),
        ("date=2025-05-01&format=pdf", "format", "'json', 'html', 'csv' or 'xlsx'"),
        ("date=2025-05-01&lang=fr", "lang", "'zh' or 'en'"),
        ("day=2025-05-01", "day", "Extra inputs are not permitted"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    world: World, query: str, field: str, message: str
) -> None:
    status, body = await world.api.call("GET", f"{PATH}?{query}", world.tokens["admin"])
    assert status == 400, body
    [problem] = body["error"]["fields"]
    assert problem["field"] == field and message in problem["message"], problem


async def test_a_day_without_data(world: World) -> None:
    status, body = await world.api.call("GET", PATH + "?date=2030-01-01", world.tokens["admin"])
    assert status == 200 and body["has_data"] is False and body["headline"] == []
