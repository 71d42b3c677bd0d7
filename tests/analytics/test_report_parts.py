"""The pure parts of the daily report: display formats, comparisons, chart scales, rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics.report import anomalies, fmt, svg
from analytics.report.files import parse_day
from analytics.report.i18n import unranked_reason
from analytics.report.model import Compared


def test_money_is_exact_yuan() -> None:
    assert fmt.yuan_decimal(77_600) == Decimal("776.00")
    assert fmt.yuan_decimal(1) == Decimal("0.01")
    assert fmt.yuan(123_456_789) == "¥1,234,567.89"
    assert fmt.yuan(-5_000) == "-¥50.00"
    assert fmt.yuan(5_000, sign=True) == "+¥50.00"
    assert fmt.yuan(None) == "—"
    assert fmt.kpi("view_to_buy_rate", 0.8) == "80.00%"
    assert fmt.kpi("avg_watch_seconds", 69.0) == "1:09"
    assert fmt.kpi("avg_watch_seconds", 3_725) == "1:02:05"
    assert fmt.kpi("acu", None) == "—"


def test_compared() -> None:
    assert Compared.of(150, 100) == Compared(100, 50, 0.5)
    assert Compared.of(5, 0) == Compared(0, 5, None)  # no base to take a share of
    assert Compared.of(None, 3) == Compared(3, None, None)
    assert Compared.of(0.8, None) == Compared(None, None, None)


def test_chart_scale_is_round() -> None:
    assert [svg.nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 19_400, 20_001)] == [
        1.0, 0.5, 1.0, 5.0, 10.0, 20_000.0, 50_000.0,
    ]  # fmt: skip


def test_days_are_written_one_way() -> None:
    assert parse_day("2025-05-01").isoformat() == "2025-05-01"
    for bad, message in (("2025-5-1", "YYYY-MM-DD"), ("2025-02-30", "calendar"), ("", "date")):
        with pytest.raises(ValueError, match=message):
            parse_day(bad)


def test_unranked_reason_in_chinese() -> None:
    assert unranked_reason("below minimum exposure: 37 UV < 100", "zh") == "观看人数不足：37 < 100"
    assert unranked_reason("no viewers", "zh") == "无观众"
    assert unranked_reason("no viewers", "en") == "no viewers"


def test_a_host_far_below_their_usual() -> None:
    # Host 7: 10,000 fen per session over four earlier sessions, 3,000 today: 30 %.
    history = {7: [8_000, 12_000, 10_000, 10_000], 8: [10_000, 10_000]}
    found = anomalies.hosts_below_usual({7: [3_000], 8: [100]}, history, {7: "阿梅", 8: "阿海"})
    assert [a.subject for a in found] == ["阿梅"]  # host 8 has too little history to judge
    assert found[0].figures == {
        "gmv_per_session_fen": 3_000,
        "usual_gmv_per_session_fen": 10_000,
        "history_sessions": 4,
    }
    assert "30%" in found[0].message_zh and "¥100.00" in found[0].message_zh
    # At half the usual it is not flagged.
    assert anomalies.hosts_below_usual({7: [5_000]}, history, {7: "阿梅"}) == []
