"""Rankings API on a hand-checked day: scores worked out by hand below, ranks per base and
city-wide, the previous day beside, the week as the union of its days, and bad queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from api_support import World
from platform_support import broadcast, count_events, new_host, session_of, theme_id

DAY = "2025-05-01"  # a Thursday
TODAY = datetime(2025, 5, 1, 12, tzinfo=UTC)  # 20:00 in Shanghai
YESTERDAY = datetime(2025, 4, 30, 12, tzinfo=UTC)
Q = f"date={DAY}&min_uv=2"


def score(uv: int, buyers: int, gmv: int, *, a: float, strength: float, m: float) -> float:
    """The documented score, restated: (buyers + a)/(uv + a + b) x (gmv + k m)/(buyers + k)."""
    return (buyers + a) / (uv + strength) * (gmv + 10 * m) / (buyers + 10)


@pytest.fixture
async def day(world: World) -> dict[str, Any]:
    """Haifeng: A (4 UV, 2 buyers, 40 yuan), B (2 UV, one of them A's viewer a1, 1 buyer,
    60 yuan), C (1 UV, 500 yuan: below min_uv 2). Luhe: L (3 UV, nobody buys).
    The day before: A (2 UV, 1 buyer, 20 yuan), B (2 UV, none)."""
    ids = world.ids
    a, b = ids["haifeng.host"], ids["haifeng.other_host"]
    c = await new_host(world, "haifeng", "新主播 C")
    lu = ids["luhe.host"]
    gi, ctw = await theme_id(world, "gi-produce"), await theme_id(world, "culture-tourism-wellness")
    events = []
    s = await session_of(world, "haifeng", a, gi)
    events += broadcast(s, TODAY, ["a1", "a2", "a3", "a4"], [("x1", 1000), ("x2", 3000)])
    s = await session_of(world, "haifeng", b, gi)
    events += broadcast(s, TODAY, ["b1", "a1"], [("y1", 6000)])
    s = await session_of(world, "haifeng", c, ctw)
    events += broadcast(s, TODAY, ["c1"], [("z1", 50000)])
    s = await session_of(world, "luhe", lu, gi)
    events += broadcast(s, TODAY, ["l1", "l2", "l3"], [])
    s = await session_of(world, "haifeng", a, gi)
    events += broadcast(s, YESTERDAY, ["a1", "a2"], [("x1", 2000)])
    s = await session_of(world, "haifeng", b, gi)
    events += broadcast(s, YESTERDAY, ["b1", "b2"], [])
    await count_events(world, events)
    return {"a": a, "b": b, "c": c, "l": lu, "gi": gi, "ctw": ctw}


async def get(world: World, path: str, token: str = "admin") -> Any:
    status, body = await world.api.call("GET", path, world.tokens[token])
    assert status == 200, body
    return body


def by_id(body: Any) -> dict[int, Any]:
    return {row["entity_id"]: row for row in body["rows"]}


async def test_base_host_ranking_matches_the_hand_computation(
    world: World, day: dict[str, Any]
) -> None:
    body = await get(world, f"/api/v1/bases/haifeng/rankings?kind=hosts&{Q}", "haifeng.manager")
    assert body["period"]["start"] == "2025-04-30T16:00:00Z"  # local midnight
    assert body["period"]["end"] == "2025-05-01T16:00:00Z"
    rows = by_id(body)
    assert [r["entity_id"] for r in body["rows"]] == [day["b"], day["a"], day["c"]]
    # Eligible: A (2/4) and B (1/2). Equal rates: no spread beyond noise, so the prior falls
    # back to 100 viewers at the pooled rate p = 3/6: a = 50. Spend m = 10,000 / 3 buyers.
    m = 10_000 / 3
    sa = score(4, 2, 4000, a=50, strength=100, m=m)  # 0.5 x 3,111.11 = 1,555.56
    sb = score(2, 1, 6000, a=50, strength=100, m=m)  # 0.5 x 3,575.76 = 1,787.88
    assert rows[day["a"]]["score"] == pytest.approx(sa) == pytest.approx(1555.5556, abs=1e-3)
    assert rows[day["b"]]["score"] == pytest.approx(sb) == pytest.approx(1787.8788, abs=1e-3)
    assert (rows[day["b"]]["rank"], rows[day["a"]]["rank"]) == (1, 2)
    c = rows[day["c"]]
    assert c["rank"] is None and c["score"] is None
    assert c["unranked_reason"] == "below minimum exposure: 1 UV < 2"
    assert (c["gmv_fen"], c["uv"], c["buyers"]) == (50000, 1, 1)
    assert rows[day["a"]]["name"] == "haifeng host" and rows[day["a"]]["base"] == "haifeng"
    raw = rows[day["a"]]
    assert (raw["gmv_fen"], raw["orders"], raw["buyers"], raw["uv"], raw["views"]) == (
        4000, 2, 2, 4, 4)  # fmt: skip
    assert raw["uv_value_fen"] == 1000 and raw["view_to_buy_rate"] == 0.5

    # The day before: A (1/2, 20 yuan) and B (0/2): p = 1/4, spread again below noise, so
    # a = 25 of 100; m = 2,000. A 509.80 ranks over B 490.20; today B climbs, A drops.
    assert rows[day["a"]]["changes"]["score"]["previous"] == pytest.approx(
        score(2, 1, 2000, a=25, strength=100, m=2000)
    )
    assert rows[day["b"]]["changes"]["score"]["previous"] == pytest.approx(
        score(2, 0, 0, a=25, strength=100, m=2000)
    )
    assert (rows[day["a"]]["rank_prev"], rows[day["a"]]["rank_change"]) == (1, -1)
    assert (rows[day["b"]]["rank_prev"], rows[day["b"]]["rank_change"]) == (2, 1)
    assert rows[day["a"]]["changes"]["gmv_fen"] == {
        "previous": 2000, "change": 2000, "change_pct": 1.0}  # fmt: skip
    assert rows[day["b"]]["changes"]["gmv_fen"]["change_pct"] is None  # from 0
    assert rows[day["c"]]["changes"]["gmv_fen"]["previous"] is None  # absent the day before


async def test_themes_count_a_viewer_of_two_sessions_once(
    world: World, day: dict[str, Any]
) -> None:
    body = await get(world, f"/api/v1/bases/haifeng/rankings?kind=themes&{Q}")
    rows = by_id(body)
    gi = rows[day["gi"]]
    assert (gi["uv"], gi["buyers"], gi["gmv_fen"]) == (5, 3, 10000)  # a1 watched A and B
    # Alone in its group: the default 100 viewers at its own rate (3/5, so a = 60) and spend
    # (10,000 / 3): (3 + 60) / 105 x (10,000 + 33,333.33) / 13 = 0.6 x 3,333.33 = 2,000.
    assert gi["score"] == pytest.approx(score(5, 3, 10000, a=60, strength=100, m=10000 / 3))
    assert gi["score"] == pytest.approx(2000)
    assert gi["rank"] == 1 and gi["name"] == body["rows"][0]["name"]
    assert rows[day["ctw"]]["rank"] is None


async def test_city_ranking_pools_every_base(world: World, day: dict[str, Any]) -> None:
    body = await get(world, f"/api/v1/rankings?kind=hosts&{Q}")
    assert body["base"] is None and body["timezone"] == "Asia/Shanghai"
    rows = by_id(body)
    # A (2/4), B (1/2), L (0/3): p = 1/3, V = 1/18 < E = 0.0802: the default 100 viewers,
    # a = 33.33; m = 10,000 / 3. B 1,203.60 > L 1,078.75 > A 1,056.98.
    m, a = 10_000 / 3, 100 / 3
    assert rows[day["b"]]["score"] == pytest.approx(score(2, 1, 6000, a=a, strength=100, m=m))
    assert rows[day["l"]]["score"] == pytest.approx(score(3, 0, 0, a=a, strength=100, m=m))
    assert rows[day["a"]]["score"] == pytest.approx(score(4, 2, 4000, a=a, strength=100, m=m))
    assert [rows[day[k]]["rank"] for k in ("b", "l", "a")] == [1, 2, 3]
    assert rows[day["l"]]["base"] == "luhe"
    luhe = await get(world, f"/api/v1/bases/luhe/rankings?kind=hosts&{Q}", "luhe.manager")
    assert [r["entity_id"] for r in luhe["rows"]] == [day["l"]]


async def test_a_week_is_the_union_of_its_days(world: World, day: dict[str, Any]) -> None:
    body = await get(world, f"/api/v1/bases/haifeng/rankings?kind=hosts&period=week&{Q}")
    assert body["period"]["first_day"] == "2025-04-28"  # Monday
    assert body["previous"]["first_day"] == "2025-04-21"
    a = by_id(body)[day["a"]]
    # a1 and a2 watched both days, x1 bought both days: one viewer, one buyer each.
    assert (a["uv"], a["views"], a["buyers"], a["orders"], a["gmv_fen"]) == (4, 6, 2, 3, 6000)
    assert a["rank_prev"] is None


async def test_a_day_with_no_data_is_an_empty_ranking(world: World, day: dict[str, Any]) -> None:
    body = await get(world, "/api/v1/bases/haifeng/rankings?kind=hosts&date=2024-01-01")
    assert body["rows"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=products", "kind"),
        ("kind=hosts&date=2025-13-40", "date"),
        ("kind=hosts&date=yesterday", "date"),
        ("kind=hosts&date=0001-01-01", "date"),
        ("kind=hosts&date=9999-12-31", "date"),
        ("kind=hosts&period=month", "period"),
        ("kind=hosts&min_uv=0", "min_uv"),
        ("kind=hosts&source=kuaishou", "source"),
        ("kind=hosts&colour=red", "colour"),
    ],
)
async def test_bad_queries_are_refused_naming_the_parameter(
    world: World, query: str, field: str
) -> None:
    for path in ("/api/v1/bases/haifeng/rankings", "/api/v1/rankings"):
        status, body = await world.api.call("GET", f"{path}?{query}", world.tokens["admin"])
        assert status == 400, body
        assert body["error"]["code"] == "bad_query"
        assert [f["field"] for f in body["error"]["fields"]] == [field], body
