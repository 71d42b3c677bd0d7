"""KPIs on a small day of a base (``kpi_day_support``), every expected figure worked out by hand."""

from __future__ import annotations

import dataclasses
import random

import pandas as pd
import pytest
from kpi_day_support import AS_OF, BASE, EVENTS, HOST_1, HOST_2, HOST_3, by_host, ev

from analytics.aggregate import Accumulator, totals_by
from analytics.kpis import (
    KPI_DEFINITIONS,
    TOTALS_FIELDS,
    Totals,
    compute_kpis,
    fen_per,
    kpi_frame,
    peak_concurrent_frame,
    peak_concurrent_viewers,
    ratio,
)


def test_host_kpis_match_the_hand_count() -> None:
    hosts = by_host()
    assert compute_kpis(hosts[1]) == HOST_1
    assert compute_kpis(hosts[2]) == HOST_2
    assert compute_kpis(hosts[3]) == HOST_3


def test_base_kpis_use_unions_not_sums() -> None:
    base = Accumulator()
    for event in EVENTS:
        base.add(event)
    assert compute_kpis(base.totals(AS_OF)) == BASE
    assert base.ignored == {"duplicate event": 1, "duplicate order": 1}


def test_session_totals() -> None:
    sessions = totals_by(EVENTS, lambda e: e.session_id, as_of=AS_OF)
    # S11: views v1, v2, v1 = 3; UV 2; 130 viewer-seconds over 1,800 s; the refund of o-1
    # happened during S12 but belongs to S11: 5,000 + 9,900.
    assert sessions[11] == Totals(
        gmv_fen=29_800, refund_fen=14_900, orders=2, buyers=2, views=3, uv=2,
        viewer_seconds=130, live_seconds=1_800, peak_concurrent=2, impressions=10, clicks=3,
        clickers=2, click_buyers=1, interacting_uv=2,
    )  # fmt: skip
    assert sessions[22] == Totals(live_seconds=1_200)
    assert sessions[32] == Totals(live_seconds=1_800)


def test_an_open_session_without_report_time_runs_to_its_last_event() -> None:
    # S32 has one event, its start, so without as_of its live time so far is 0.
    assert totals_by(EVENTS, lambda e: e.session_id)[32].live_seconds == 0


def test_frame_matches_scalar() -> None:
    hosts = by_host()
    frame = pd.DataFrame([dataclasses.asdict(hosts[h]) for h in (1, 2, 3)], index=[1, 2, 3])
    result = kpi_frame(frame)
    assert list(result.columns) == [kpi.name for kpi in KPI_DEFINITIONS]
    for host, expected in [(1, HOST_1), (2, HOST_2), (3, HOST_3)]:
        row = {k: None if v is pd.NA else v for k, v in result.loc[host].to_dict().items()}
        assert row == dataclasses.asdict(expected)
    assert str(result["gpm_fen"].dtype) == "Int64"
    assert str(result["view_to_buy_rate"].dtype) == "Float64"
    # Undefined is missing, never NaN or 0.
    assert result.loc[3, "uv_value_fen"] is pd.NA
    assert not result.isin([float("nan")]).any().any()


def test_frame_of_many_random_rows_matches_scalar() -> None:
    # Small counts, so that zero denominators and rounding ties turn up often.
    rng = random.Random(7)
    rows = [{name: rng.randrange(6) for name in TOTALS_FIELDS} for _ in range(500)]
    result = kpi_frame(pd.DataFrame(rows))
    for i, row in enumerate(rows):
        scalar = dataclasses.asdict(compute_kpis(Totals(**row)))
        got = {k: None if v is pd.NA else v for k, v in result.iloc[i].to_dict().items()}
        assert got == scalar


def test_rounding_is_half_up_to_whole_fen() -> None:
    assert fen_per(5, 2) == 3  # 2.5 -> 3
    assert fen_per(7, 2) == 4  # 3.5 -> 4
    assert fen_per(1, 3) == 0  # 0.33 -> 0
    assert fen_per(2, 3) == 1  # 0.67 -> 1
    assert fen_per(1, 2_000, 1_000) == 1  # 0.5 -> 1
    assert fen_per(-5, 2) == -2  # half up is toward +infinity
    assert fen_per(10**30 + 1, 2) == 5 * 10**29 + 1  # integers only: exact at any size
    assert fen_per(5, 0) is None
    column = fen_per(pd.Series([5, 7, 1, 2, 5]), pd.Series([2, 2, 3, 3, 0]))
    assert column.tolist() == [3, 4, 0, 1, pd.NA]


def test_undefined_ratio_is_none() -> None:
    assert ratio(0, 0) is None
    assert ratio(0, 3) == 0.0
    assert compute_kpis(Totals()).pcu is None  # never live
    assert compute_kpis(Totals(live_seconds=60)).pcu == 0  # live, nobody watching


def test_peak_concurrency_adds_rooms_minute_by_minute() -> None:
    samples = [("10:00", 2), ("10:01", 2), ("10:00", 2), ("10:01", 1), ("20:00", 3)]
    assert peak_concurrent_viewers(samples) == 4
    assert peak_concurrent_viewers([]) == 0
    frame = pd.DataFrame(
        {
            "host": [1, 1, 2, 2, 2],
            "minute": ["10:00", "10:01", "10:00", "10:01", "10:02"],
            "present": [2, 2, 2, 1, 1],
        }
    )
    assert peak_concurrent_frame(frame, ["host"]).to_dict() == {1: 2, 2: 2}
    frame["base"] = "haifeng"
    assert peak_concurrent_frame(frame, ["base"]).to_dict() == {"haifeng": 4}


def test_totals_refuse_bad_counts() -> None:
    with pytest.raises(ValueError, match=r"Totals\.uv must be a non-negative int"):
        Totals(uv=-1)
    with pytest.raises(ValueError, match=r"Totals\.gmv_fen"):
        Totals(gmv_fen=1.5)  # type: ignore[arg-type]


def test_frame_refuses_missing_or_bad_columns() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        kpi_frame(pd.DataFrame({"gmv_fen": [1]}))
    frame = pd.DataFrame([dataclasses.asdict(Totals())])
    frame.loc[0, "uv"] = -3
    with pytest.raises(ValueError, match="'uv'"):
        kpi_frame(frame)


def test_other_currencies_are_set_aside() -> None:
    acc = Accumulator()
    acc.add(ev(11, "10:04:00", "order.paid", order_id="x", platform="shopify", buyer_id="b",
               amount_fen=100, currency="USD"))  # fmt: skip
    assert acc.totals().gmv_fen == 0
    assert acc.ignored == {"currency USD": 1}
