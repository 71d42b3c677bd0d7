"""Daily reports for base managers, read from the rollups (see ``docs/reports.md``).

``build_daily_report`` assembles a :class:`DailyReport`; ``render`` turns it into one of
:data:`FORMATS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.report.build import CITY_TIMEZONE, UnknownBase, build_daily_report, day_window
from analytics.report.html import to_html
from analytics.report.i18n import LANGS, Lang
from analytics.report.model import DailyReport
from analytics.report.tables import report_tables, to_csv, to_json, to_xlsx


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    content_type: str
    extension: str


FORMATS = ("html", "csv", "xlsx", "json")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def render(report: DailyReport, fmt: str, lang: Lang = "zh") -> Rendered:
    """The report in ``fmt`` (one of :data:`FORMATS`); JSON is the same in both languages."""
    if fmt == "html":
        return Rendered(to_html(report, lang), "text/html; charset=utf-8", "html")
    if fmt == "csv":
        return Rendered(to_csv(report, lang), "text/csv; charset=utf-8", "csv")
    if fmt == "xlsx":
        return Rendered(to_xlsx(report, lang), XLSX, "xlsx")
    if fmt == "json":
        return Rendered(to_json(report), "application/json", "json")
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = (
    "CITY_TIMEZONE",
    "FORMATS",
    "LANGS",
    "DailyReport",
    "Lang",
    "Rendered",
    "UnknownBase",
    "build_daily_report",
    "day_window",
    "render",
    "report_tables",
)
