"""Display formatting shared by the HTML, CSV and XLSX formats."""

from __future__ import annotations

from decimal import Decimal

from analytics.report.model import Number

DASH = "—"  #: an undefined figure (docs/metrics.md: never 0, never NaN)


def yuan_decimal(fen: int) -> Decimal:
    """Exact yuan from whole fen: ``Decimal(12345) / 100`` is ``123.45``, never a float."""
    return Decimal(fen).scaleb(-2)


def yuan(fen: int | None, *, sign: bool = False) -> str:
    if fen is None:
        return DASH
    text = f"{yuan_decimal(fen):,.2f}"
    return f"+¥{text}" if sign and fen > 0 else f"¥{text}".replace("¥-", "-¥")


def percent(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.2%}" if sign else f"{value:.2%}"


def count(value: Number, *, sign: bool = False, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: How each KPI is shown: money, rate, seconds or a plain count (with decimals).
KIND = {
    "gmv_fen": "money",
    "refund_fen": "money",
    "net_gmv_fen": "money",
    "gpm_fen": "money",
    "gpm_uv_fen": "money",
    "uv_value_fen": "money",
    "view_to_buy_rate": "rate",
    "click_through_rate": "rate",
    "click_to_buy_rate": "rate",
    "interaction_rate": "rate",
    "avg_watch_seconds": "seconds",
    "acu": "decimal",
}


def kpi(name: str, value: Number, *, sign: bool = False) -> str:
    kind = KIND.get(name, "count")
    if value is None:
        return DASH
    if kind == "money":
        return yuan(int(value), sign=sign)
    if kind == "rate":
        return percent(float(value), sign=sign)
    if kind == "seconds":
        return (
            ("+" if sign and value > 0 else "") + duration(value)
            if value >= 0
            else ("-" + duration(-value))
        )
    return count(value, sign=sign, digits=2 if kind == "decimal" else 0)
