"""The report as tables, one per section, and the CSV, XLSX and JSON formats built from them.

Cells are typed: money is an exact ``Decimal`` of yuan (from integer fen), rates are fractions
(XLSX shows them as percentages), counts are ints, an undefined figure is empty. CSV holds
every table one after another, each under a ``[name]`` line and followed by a blank line;
XLSX has one sheet per table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.styles import Font

from analytics.report.fmt import KIND, yuan_decimal
from analytics.report.i18n import Lang, t, unranked_reason
from analytics.report.model import HEADLINE, DailyReport, ProductRow

Cell = int | float | Decimal | str | None


@dataclass(frozen=True, slots=True)
class Table:
    key: str  #: stable name (CSV section, XLSX sheet in English)
    title: str
    columns: list[str]
    kinds: list[str]  #: per column: money, rate, seconds, decimal, count or text
    rows: list[list[Cell]]
    #: per row, where a column's kind changes from row to row (the summary's KPIs)
    row_kinds: list[list[str]] | None = None

    def kinds_of(self, index: int) -> list[str]:
        return self.kinds if self.row_kinds is None else self.row_kinds[index]


def cell(kind: str, value: Any) -> Cell:
    if value is None:
        return None
    if kind == "money":
        return yuan_decimal(int(value))
    if kind in ("rate", "seconds", "decimal"):
        return float(value)
    return value  # type: ignore[no-any-return]


def _kpi_kind(name: str) -> str:
    return KIND.get(name, "count")


def _label(name: str, lang: Lang) -> str:
    if _kpi_kind(name) != "money":
        return t(name, lang)
    return f"{t(name, lang)}（元）" if lang == "zh" else f"{t(name, lang)} (yuan)"


def _info(report: DailyReport, lang: Lang) -> Table:
    name = report.name_zh if lang == "zh" else report.name_en
    rows: list[list[Cell]] = [
        [t("base", lang), t("city", lang) if report.scope == "city" else f"{name} ({report.base})"],
        [t("date", lang), report.date],
        [t("timezone", lang), report.timezone],
        [t("generated", lang), report.generated_at],
        [t("status", lang), t("status_ok" if report.has_data else "status_none", lang)],
    ]
    if not report.has_data:
        rows.append([t("message", lang), t("no_data", lang)])
    return Table("report", t("report", lang), [t("field", lang), t("value", lang)],
                 ["text", "text"], rows)  # fmt: skip


def _summary(report: DailyReport, lang: Lang) -> Table:
    rows: list[list[Cell]] = []
    kinds: list[list[str]] = []
    for h in report.headline:
        k = _kpi_kind(h.name)
        kinds.append(["text", k, k, "rate", k, "rate"])
        rows.append([
            _label(h.name, lang), cell(k, h.value),
            cell(k, h.vs_previous_day.previous), cell("rate", h.vs_previous_day.change_pct),
            cell(k, h.vs_last_week.previous), cell("rate", h.vs_last_week.change_pct),
        ])  # fmt: skip
    columns = ["kpi", "value", "previous_day", "change_day", "last_week", "change_week"]
    return Table("summary", t("summary", lang), [t(c, lang) for c in columns],
                 ["text", *["count"] * 5], rows, kinds)  # fmt: skip


RANK_COLUMNS = (
    ("rank", "count"), ("score", "decimal"), ("gmv_fen", "money"), ("net_gmv_fen", "money"),
    ("orders", "count"), ("buyers", "count"), ("views", "count"), ("uv", "count"),
    ("uv_value_fen", "money"), ("gpm_fen", "money"), ("view_to_buy_rate", "rate"),
    ("gmv_fen_prev", "money"), ("gmv_fen_change_pct", "rate"), ("rank_change", "count"),
    ("unranked_reason", "text"),
)  # fmt: skip
_RANK_LABEL = {"gmv_fen_prev": "gmv_prev", "gmv_fen_change_pct": "gmv_change_pct",
               "unranked_reason": "unranked"}  # fmt: skip


def rank_label(column: str, lang: Lang) -> str:
    key = _RANK_LABEL.get(column, column)
    return _label(key, lang) if key in KIND else t(key, lang)


def rank_value(row: dict[str, Any], column: str, lang: Lang) -> Any:
    value = row.get(column)
    return unranked_reason(value, lang) if column == "unranked_reason" else value


def _ranking(key: str, rows: list[dict[str, Any]], lang: Lang) -> Table:
    entity = "host" if key == "hosts" else "theme"
    out: list[list[Cell]] = []
    for row in rows:
        name = row.get("host") if entity == "host" else row.get(f"theme_{lang}")
        out.append([name or t("none", lang), *(cell(k, rank_value(row, c, lang))
                                               for c, k in RANK_COLUMNS)])  # fmt: skip
    columns = [t(entity, lang), *(rank_label(c, lang) for c, _ in RANK_COLUMNS)]
    return Table(key, t(key, lang), columns, ["text", *(k for _, k in RANK_COLUMNS)], out)


def _sessions(report: DailyReport, lang: Lang) -> Table:
    fixed = ["session", "title_col", "room", "host", "theme", "start", "end", "live_seconds"]
    rows: list[list[Cell]] = []
    for s in report.sessions:
        rows.append([
            s.session_id, s.title, s.room, s.host, s.theme, s.started_at,
            s.ended_at or t("live_now", lang), s.live_seconds,
            *(cell(_kpi_kind(n), s.kpis[n]) for n in HEADLINE),
        ])  # fmt: skip
    columns = [t(c, lang) for c in fixed] + [_label(n, lang) for n in HEADLINE]
    kinds = ["count", *["text"] * 6, "count", *(_kpi_kind(n) for n in HEADLINE)]
    return Table("sessions", t("sessions", lang), columns, kinds, rows)


def _products(key: str, products: Sequence[ProductRow], lang: Lang) -> Table:
    rows: list[list[Cell]] = [
        [p.product_id, p.title, p.gi, cell("money", p.gmv_fen), p.orders, p.impressions,
         p.clicks, cell("rate", p.click_through_rate)]
        for p in products
    ]  # fmt: skip
    columns = ["product", "title_col", "gi", "gmv_fen", "orders", "impressions", "clicks",
               "click_through_rate"]  # fmt: skip
    kinds = ["count", "text", "text", "money", "count", "count", "count", "rate"]
    return Table(key, t(key, lang), [_label(c, lang) if c in KIND else t(c, lang)
                                     for c in columns], kinds, rows)  # fmt: skip


def _anomalies(report: DailyReport, lang: Lang) -> Table:
    rows: list[list[Cell]] = [
        [t(a.kind, lang), a.subject, a.message_zh if lang == "zh" else a.message_en]
        for a in report.anomalies
    ]
    columns = [t("kind", lang), t("subject", lang), t("message", lang)]
    return Table("anomalies", t("anomalies", lang), columns, ["text"] * 3, rows)


def _timeline(report: DailyReport, lang: Lang) -> Table:
    rows: list[list[Cell]] = []
    if report.charts is not None:
        gmv = {(s.label, m): v for s in report.charts.gmv_by_room for m, v in s.points}
        for series in report.charts.viewers_by_room:
            sold = 0
            for minute, viewers in series.points:
                so_far = gmv.get((series.label, minute), 0)
                if viewers or so_far != sold:  # the buckets where something happened
                    rows.append([f"{minute // 60:02d}:{minute % 60:02d}", series.label,
                                 viewers, cell("money", so_far)])  # fmt: skip
                sold = so_far
    columns = [t("time", lang), t("room", lang), t("viewers", lang), t("gmv_so_far", lang)]
    return Table("timeline", t("timeline", lang), columns, ["text", "text", "count", "money"],
                 sorted(rows, key=lambda r: (str(r[1]), str(r[0]))))  # fmt: skip


def report_tables(report: DailyReport, lang: Lang = "zh") -> list[Table]:
    tables = [_info(report, lang)]
    if not report.has_data:
        return tables
    tables += [
        _summary(report, lang),
        _ranking("hosts", report.hosts, lang),
        _ranking("themes", report.themes, lang),
        _sessions(report, lang),
        _products("products", report.products, lang),
        _products("gi_products", report.gi_products, lang),
        _anomalies(report, lang),
        _timeline(report, lang),
    ]
    return tables


def to_csv(report: DailyReport, lang: Lang = "zh") -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese text right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for table in report_tables(report, lang):
        writer.writerow([f"[{table.key}]"])
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow(["" if v is None else str(v) for v in row])
        writer.writerow([])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


_FORMATS = {"money": "#,##0.00", "rate": "0.00%", "decimal": "0.00", "seconds": "0.0"}


def to_xlsx(report: DailyReport, lang: Lang = "zh") -> bytes:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for table in report_tables(report, lang):
        sheet = book.create_sheet(table.key)
        sheet.append(table.columns)
        for c in sheet[1]:
            c.font = Font(bold=True)
        for index, row in enumerate(table.rows):
            sheet.append(row)
            for column, kind in enumerate(table.kinds_of(index), start=1):
                if kind in _FORMATS and row[column - 1] is not None:
                    # cell() is a lookup; indexing a whole row scans the sheet every time.
                    sheet.cell(index + 2, column).number_format = _FORMATS[kind]
        for letter, width in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _widths(table), strict=False):
            sheet.column_dimensions[letter].width = width
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _widths(table: Table) -> list[float]:
    out = []
    for i, name in enumerate(table.columns):
        longest = max([len(str(name)), *(len(str(r[i])) for r in table.rows if r[i] is not None)])
        out.append(min(60.0, 4.0 + longest * 1.3))
    return out


def to_json(report: DailyReport) -> bytes:
    """The report as it is built: money in integer fen, rates as fractions, None as null."""
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2)
