"""Rankings: shrinkage, the minimum-exposure rule, deterministic ties and period deltas.

The first test is the worked example of docs/metrics.md, figure for figure.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest

from analytics.kpis import TOTALS_FIELDS
from analytics.ranking import fit_prior, group_priors, rank_entities, shrunk_score


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """Totals rows; unnamed counts are 0 and views equal UV unless given."""
    full = [{**{f: 0 for f in TOTALS_FIELDS}, "views": row.get("uv", 0), **row} for row in rows]
    return pd.DataFrame(full)


def host(name: str, uv: int, buyers: int, gmv_fen: int, **more: Any) -> dict[str, Any]:
    return {"host": name, "uv": uv, "buyers": buyers, "orders": buyers, "gmv_fen": gmv_fen, **more}


# docs/metrics.md, "Worked example".
EXAMPLE = frame(
    host("a", 4_000, 84, 1_344_000),  # steady: 2.1 % conversion, 160 yuan a buyer
    host("b", 200, 6, 84_000),  # small and lucky: 3 %, raw UV value 420 fen beats a's 336
    host("c", 800, 10, 172_000),
    host("w", 2, 1, 5_000_000),  # two viewers, one 50,000-yuan order
)


def test_worked_example() -> None:
    # Fitted on a, b, c only (w has 2 < 100 UV):
    #   p = (84 + 6 + 10) / (4,000 + 200 + 800) = 100 / 5,000 = 0.02
    #   rates 0.021, 0.03, 0.0125; V = (0.001² + 0.01² + 0.0075²) / 3 = 0.00015725 / 3
    #   E = 0.02 x 0.98 x (1/4,000 + 1/200 + 1/800) / 3 = 0.0196 x 0.0065 / 3 = 0.0001274 / 3
    #   tau² = V - E = 0.00002985 / 3 = 0.00000995
    #   a + b = 0.0196 / 0.00000995 - 1 = 1,968.849246; a = 0.02 x that = 39.376985
    #   m = (1,344,000 + 84,000 + 172,000) / 100 = 16,000 fen; k = 10, k·m = 160,000
    prior = group_priors(EXAMPLE, entity="host")[None]
    assert prior.conversion == 0.02
    assert prior.strength_uv == pytest.approx(1_968.849246, abs=1e-6)
    assert prior.a == pytest.approx(39.376985, abs=1e-6)
    assert prior.spend_fen == 16_000
    assert (prior.fitted_on, prior.fallback) == (3, False)

    #   a: (84 + 39.376985) / (4,000 + 1,968.849246) = 0.0206701 x (1,504,000 / 94 = 16,000)
    #      = 330.7223 fen per viewer
    #   b: (6 + 39.376985) / 2,168.849246 = 0.0209221 x (244,000 / 16 = 15,250) = 319.0628
    #   c: (10 + 39.376985) / 2,768.849246 = 0.0178330 x (332,000 / 20 = 16,600) = 296.0284
    table = rank_entities(EXAMPLE, entity="host")
    assert table["host"].tolist() == ["a", "b", "c", "w"]
    assert table["rank"].tolist() == [1, 2, 3, pd.NA]
    assert table["score"].tolist()[:3] == pytest.approx([330.7223, 319.0628, 296.0284], abs=1e-4)
    assert table["score"].tolist()[3] is pd.NA
    # Raw figures stand beside the score: b's raw UV value is the best of the three.
    assert table["uv_value_fen"].tolist() == [336, 420, 215, 2_500_000]
    assert table["unranked_reason"].tolist()[:3] == [pd.NA] * 3
    assert table["unranked_reason"].tolist()[3] == "below minimum exposure: 2 UV < 100"


def test_two_viewers_and_one_huge_order_do_not_beat_steady_sales() -> None:
    table = rank_entities(
        frame(
            host("steady", 5_000, 100, 1_500_000),
            host("whale", 2, 1, 10_000_000),
            host("other", 1_000, 15, 200_000),
        ),
        entity="host",
    )
    ranked = table.set_index("host")
    assert ranked.loc["steady", "rank"] == 1
    assert ranked.loc["whale", "rank"] is pd.NA
    assert ranked.loc["whale", "uv_value_fen"] == 5_000_000  # shown, not ranked
    assert table["host"].tolist()[-1] == "whale"


def test_shrinkage_pulls_a_small_sample_harder_than_a_large_one() -> None:
    prior = fit_prior([1_000, 1_000], [10, 30], [100_000, 300_000])
    # The same 5 % conversion and spend, on 100 and on 10,000 viewers.
    small = shrunk_score(prior, 100, 5, 50_000)
    large = shrunk_score(prior, 10_000, 500, 5_000_000)
    assert small < large <= 500
    # A column gives the same as the scalars.
    column = shrunk_score(
        prior, pd.Series([100, 10_000]), pd.Series([5, 500]), pd.Series([50_000, 5_000_000])
    )
    assert column.tolist() == [small, large]


def test_below_minimum_exposure_is_listed_with_a_reason() -> None:
    table = rank_entities(
        frame(host("a", 150, 3, 30_000), host("b", 99, 9, 90_000), host("c", 0, 0, 0)),
        entity="host",
        min_uv=100,
    )
    assert table["host"].tolist() == ["a", "b", "c"]
    assert table["rank"].tolist() == [1, pd.NA, pd.NA]
    assert table["unranked_reason"].tolist()[1:] == [
        "below minimum exposure: 99 UV < 100",
        "no viewers",
    ]


def test_fallback_prior_with_a_single_eligible_entity() -> None:
    prior = group_priors(frame(host("a", 500, 10, 100_000)), entity="host")[None]
    assert (prior.strength_uv, prior.fallback, prior.conversion) == (100, True, 0.02)
    # (10 + 0.02 x 100) / (500 + 100) = 0.02; (100,000 + 10 x 10,000) / 20 = 10,000 -> 200
    assert rank_entities(frame(host("a", 500, 10, 100_000)), entity="host")["score"][0] == 200


def test_ties_are_broken_deterministically() -> None:
    rows = [
        host("m", 400, 8, 80_000),
        host("k", 400, 8, 80_000),  # identical to m: id order decides, k first
        host("z", 500, 10, 100_000),
        host("q", 400, 8, 80_000),
    ]
    orders = set()
    for seed in range(10):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        table = rank_entities(frame(*shuffled), entity="host")
        orders.add(tuple(zip(table["host"], table["rank"], strict=True)))
    assert len(orders) == 1
    ranking = dict(orders.pop())
    assert ranking["k"] < ranking["m"] < ranking["q"]


def test_deltas_against_the_previous_period() -> None:
    before = frame(
        host("a", 1_000, 20, 200_000),
        host("b", 1_000, 30, 450_000),
        host("c", 500, 0, 0),
        host("gone", 800, 8, 80_000),
    )
    now = frame(
        host("a", 1_500, 45, 675_000),
        host("b", 1_000, 20, 200_000),
        host("c", 500, 5, 50_000),
        host("new", 300, 3, 30_000),
    )
    table = rank_entities(now, before, entity="host").set_index("host")
    assert "gone" not in table.index
    # a: GMV 200,000 -> 675,000: +475,000, +237.5 %; UV +500, +50 %
    assert table.loc["a", "gmv_fen_prev"] == 200_000
    assert table.loc["a", "gmv_fen_change"] == 475_000
    assert table.loc["a", "gmv_fen_change_pct"] == 2.375
    assert table.loc["a", "uv_change_pct"] == 0.5
    # b: UV value 450 -> 200 fen: -250, -55.6 %
    assert table.loc["b", "uv_value_fen_change"] == -250
    assert table.loc["b", "uv_value_fen_change_pct"] == pytest.approx(-250 / 450)
    # c sold nothing before: the change is +50,000 but the percentage is undefined.
    assert table.loc["c", "gmv_fen_change"] == 50_000
    assert table.loc["c", "gmv_fen_change_pct"] is pd.NA
    # new: nothing to compare with.
    for column in (
        "gmv_fen_prev",
        "gmv_fen_change",
        "gmv_fen_change_pct",
        "rank_prev",
        "rank_change",
    ):
        assert table.loc["new", column] is pd.NA
    # a climbed from 2nd to 1st, b fell from 1st to 2nd.
    assert (table.loc["a", "rank_prev"], table.loc["a", "rank"], table.loc["a", "rank_change"]) == (
        2,
        1,
        1,
    )
    assert (table.loc["b", "rank_prev"], table.loc["b", "rank"], table.loc["b", "rank_change"]) == (
        1,
        2,
        -1,
    )
    assert table.loc["a", "score_change"] == pytest.approx(
        table.loc["a", "score"] - table.loc["a", "score_prev"]
    )


def test_without_a_previous_period_every_comparison_is_missing() -> None:
    table = rank_entities(EXAMPLE, entity="host")
    for column in ("gmv_fen_prev", "score_change", "uv_change_pct", "rank_prev", "rank_change"):
        assert table[column].isna().all()


def test_each_base_is_ranked_against_its_own_mean() -> None:
    rows = [
        {**host("a", 1_000, 10, 100_000), "base": "haifeng"},
        {**host("b", 1_000, 30, 600_000), "base": "haifeng"},
        {**host("c", 2_000, 100, 2_000_000), "base": "chengqu"},
        {**host("d", 1_000, 10, 100_000), "base": "chengqu"},
        {**host("e", 50, 5, 5_000), "base": "chengqu"},
    ]
    table = rank_entities(frame(*rows), entity="host", group="base")
    assert list(zip(table["base"], table["host"], table["rank"], strict=True)) == [
        ("chengqu", "c", 1),
        ("chengqu", "d", 2),
        ("chengqu", "e", pd.NA),
        ("haifeng", "b", 1),
        ("haifeng", "a", 2),
    ]
    priors = group_priors(frame(*rows), entity="host", group="base")
    assert priors["haifeng"].conversion == 0.02  # 40 / 2,000
    assert priors["chengqu"].conversion == 110 / 3_000  # e is left out
    # City-wide: one ranking, one prior.
    city = rank_entities(frame(*rows), entity="host")
    assert city["rank"].tolist() == [1, 2, 3, 4, pd.NA]


def test_themes_rank_the_same_way() -> None:
    themes = frame(
        {"theme": "gi-produce", "uv": 3_000, "buyers": 90, "gmv_fen": 900_000},
        {"theme": "crafts", "uv": 3_000, "buyers": 60, "gmv_fen": 1_200_000},
    )
    table = rank_entities(themes, entity="theme")
    assert table["theme"].tolist() == ["crafts", "gi-produce"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="more than one row per host"):
        rank_entities(frame(host("a", 1, 0, 0), host("a", 2, 0, 0)), entity="host")
    with pytest.raises(ValueError, match=r"lacks column.*base"):
        rank_entities(frame(host("a", 1, 0, 0)), entity="host", group="base")
