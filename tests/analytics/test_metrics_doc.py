"""docs/metrics.md documents every KPI, count and event the code knows, and its worked example
is what the code computes."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analytics.kpis import KPI_DEFINITIONS, TOTALS_FIELDS
from analytics.ranking import COMPARED_COLUMNS, RAW_COLUMNS, rank_entities
from analytics.schemas import EVENT_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = DOC.index(title)
    following = re.search(r"^#{1,3} ", DOC[start + len(title) :], flags=re.MULTILINE)
    return DOC[start : start + len(title) + (following.start() if following else len(DOC))]


@pytest.mark.parametrize("name", [kpi.name for kpi in KPI_DEFINITIONS])
def test_every_kpi_has_its_section(name: str) -> None:
    body = section(f"### `{name}`")
    for part in ("**Formula**", "**Unit**", "**Source**"):
        assert part in body, f"{name}: no {part}"
    assert "Never null" in body or "**Null when**" in body, f"{name}: no null rule"


@pytest.mark.parametrize("name", TOTALS_FIELDS)
def test_every_count_is_in_the_counts_table(name: str) -> None:
    assert f"| `{name}` |" in section("## Counts")


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_type_is_in_the_events_table(kind: str) -> None:
    assert f"| `{kind}` |" in section("## Source events")


def test_ranking_columns_are_documented() -> None:
    body = section("### Beside the score, and against the previous period")
    for column in (*RAW_COLUMNS, *COMPARED_COLUMNS):
        assert f"`{column}`" in body


def test_worked_example_is_what_the_code_computes() -> None:
    body = section("### Worked example")
    rows = re.findall(r"^\| (\w) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", body, re.M)
    assert len(rows) == 4

    def number(text: str) -> int:
        return int(text.replace(",", ""))

    totals = pd.DataFrame(
        [
            {
                **{field: 0 for field in TOTALS_FIELDS},
                "host": name,
                "uv": number(uv),
                "views": number(uv),
                "buyers": number(buyers),
                "orders": number(buyers),
                "gmv_fen": number(gmv),
            }
            for name, uv, buyers, gmv, _ in rows
        ]
    )
    table = rank_entities(totals, entity="host").set_index("host")
    for name, *_, raw_value in rows:
        assert table.loc[name, "uv_value_fen"] == number(raw_value)
    scores = [float(s) for s in re.findall(r"\*\*(\d+\.\d\d)\*\*", body)]
    ranked = table[table["rank"].notna()].sort_values("rank")
    assert [round(s, 2) for s in ranked["score"]] == scores
    assert ranked.index.tolist() == ["a", "b", "c"]
    assert table.loc["w", "rank"] is pd.NA
