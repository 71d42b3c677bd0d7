"""The HTML format: one self-contained page (inline CSS and SVG, no script, no outside URL).

It reads on a phone (one column, tables scroll sideways) and prints on A4 (no shadows, sections
kept whole where they fit). Chinese by default, English with ``lang="en"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from analytics.report import fmt, svg
from analytics.report.i18n import Lang, t
from analytics.report.model import HEADLINE, Compared, DailyReport, Headline, ProductRow
from analytics.report.tables import RANK_COLUMNS, rank_label, rank_value

CSS = """
:root{--ink:#1d2433;--muted:#5b6475;--line:#dde2ea;--up:#0a7d3b;--down:#c0392b;--card:#f6f8fb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;color:var(--ink);background:#fff}
main{max-width:1200px;margin:0 auto;padding:16px}
header h1{font-size:1.5rem;margin:0 0 4px}
header p{margin:0;color:var(--muted)}
h2{font-size:1.15rem;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:1rem;margin:14px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .name{color:var(--muted);font-size:.85rem}
.card .value{font-size:1.35rem;font-weight:650;font-variant-numeric:tabular-nums}
.card .cmp{font-size:.8rem;color:var(--muted)}
.up{color:var(--up)}.down{color:var(--down)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
.chart text{font-size:11px;fill:var(--muted)}
.chart .ytick,.chart .bar-name{text-anchor:end}
.chart .xtick{text-anchor:middle}
.chart .grid{stroke:var(--line);stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.85rem;margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--card);font-weight:600}
th:first-child,td:first-child,td.text{text-align:left}
.note{color:var(--muted);font-size:.85rem}
.anomalies li{margin:4px 0}
.tag{display:inline-block;font-size:.75rem;padding:0 6px;border-radius:8px;background:#fdecea;
color:var(--down);margin-right:6px}
.nodata{padding:24px;border:1px dashed var(--line);border-radius:8px;text-align:center;
font-size:1.1rem;color:var(--muted)}
@media (max-width:600px){main{padding:10px}.cards{grid-template-columns:1fr 1fr}
.card .value{font-size:1.1rem}.charts{grid-template-columns:1fr}}
@media print{@page{size:A4;margin:12mm}body{font-size:11px}main{max-width:none;padding:0}
.card{border-color:#999;break-inside:avoid}section,figure{break-inside:avoid}
.scroll{overflow:visible}th,td{white-space:normal}a{color:inherit;text-decoration:none}}
"""


def _e(value: object) -> str:
    return escape(str(value))


def _change(name: str, compared: Compared, label: str) -> str:
    if compared.change is None:
        return f"{_e(label)} {fmt.DASH}"
    css = "up" if compared.change > 0 else "down" if compared.change < 0 else ""
    shown = (
        fmt.percent(compared.change_pct, sign=True)
        if compared.change_pct is not None
        else fmt.kpi(name, compared.change, sign=True)
    )
    arrow = "▲" if compared.change > 0 else "▼" if compared.change < 0 else "＝"
    return f'{_e(label)} <span class="{css}">{arrow} {_e(shown)}</span>'


def _card(h: Headline, lang: Lang) -> str:
    return (
        f'<div class="card" data-kpi="{h.name}"><div class="name">{_e(t(h.name, lang))}</div>'
        f'<div class="value">{_e(fmt.kpi(h.name, h.value))}</div>'
        f'<div class="cmp">{_change(h.name, h.vs_previous_day, t("vs_day", lang))}</div>'
        f'<div class="cmp">{_change(h.name, h.vs_last_week, t("vs_week", lang))}</div></div>'
    )


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, text_cols: int = 1) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{_e(v)}</td>' if i < text_cols else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _show(kind: str, value: object, name: str = "") -> str:
    if value is None:
        return fmt.DASH
    if kind == "text":
        return str(value)
    if kind == "money":
        return fmt.yuan(int(value))  # type: ignore[call-overload]
    if kind == "rate":
        return fmt.percent(float(value), sign=name.endswith("change_pct"))  # type: ignore[arg-type]
    if kind == "decimal":
        return fmt.count(float(value), digits=2)  # type: ignore[arg-type]
    return fmt.count(int(value), sign=name == "rank_change")  # type: ignore[call-overload]


def _ranking(rows: list[dict[str, object]], entity: str, lang: Lang) -> str:
    if not rows:
        return f'<p class="note">{fmt.DASH}</p>'
    columns = [t(entity, lang), *(rank_label(c, lang) for c, _ in RANK_COLUMNS)]
    body = []
    for row in rows:
        name = row.get("host") if entity == "host" else row.get(f"theme_{lang}")
        shown = [_show(k, rank_value(row, c, lang), c) for c, k in RANK_COLUMNS]
        body.append([str(name or t("none", lang)), *shown])
    return _table(columns, body) + f'<p class="note">{_e(t("ranking_note", lang))}</p>'


def _sessions(report: DailyReport, lang: Lang) -> str:
    fixed = ("title_col", "room", "host", "theme", "start", "end", "live_time")
    columns = [t(c, lang) for c in fixed]
    columns += [t(n, lang) for n in HEADLINE]
    body = []
    for s in report.sessions:
        body.append([
            s.title, s.room, s.host or fmt.DASH, s.theme or fmt.DASH,
            (s.started_at or "")[11:16] or fmt.DASH,
            (s.ended_at or "")[11:16] or t("live_now", lang), fmt.duration(s.live_seconds),
            *(fmt.kpi(n, s.kpis[n]) for n in HEADLINE),
        ])  # fmt: skip
    return _table(columns, body, text_cols=4)


def _products(products: Sequence[ProductRow], lang: Lang) -> str:
    if not products:
        return f'<p class="note">{fmt.DASH}</p>'
    columns = [t(c, lang) for c in ("product", "gi", "gmv_fen", "orders", "impressions", "clicks",
                                    "click_through_rate")]  # fmt: skip
    body = [
        [p.title, p.gi or fmt.DASH, fmt.yuan(p.gmv_fen), fmt.count(p.orders),
         fmt.count(p.impressions), fmt.count(p.clicks), fmt.percent(p.click_through_rate)]
        for p in products
    ]  # fmt: skip
    return _table(columns, body, text_cols=2)


def _legend(labels: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{svg.color(i)}"></i>{_e(label)}</span>'
        for i, label in enumerate(labels)
    )
    return f'<div class="legend">{items}</div>'


def _charts(report: DailyReport, lang: Lang) -> str:
    charts = report.charts
    if charts is None:
        return ""
    day = charts.day_minutes
    viewers = svg.line_chart(
        charts.viewers_by_room, label=t("viewers_by_room", lang), x_max=day,
        y_format=lambda v: f"{v:,.0f}", y_min_top=4,
    )  # fmt: skip
    gmv = svg.line_chart(
        charts.gmv_by_room, label=t("gmv_by_room", lang), x_max=day,
        y_format=lambda v: fmt.yuan(round(v)).split(".")[0],
    )  # fmt: skip
    bars = [
        ((zh if lang == "zh" else en) or t("none", lang), float(v))
        for zh, en, v in charts.gmv_by_theme
    ]
    themes = svg.bar_chart(
        bars, label=t("gmv_by_theme", lang), value_format=lambda v: fmt.yuan(round(v))
    )
    rooms = _legend([s.label for s in charts.viewers_by_room])
    figures = "".join(
        f"<figure><figcaption>{_e(t(key, lang))}</figcaption>{chart}</figure>"
        for key, chart in (
            ("viewers_by_room", viewers + rooms),
            ("gmv_by_room", gmv + _legend([s.label for s in charts.gmv_by_room])),
            ("gmv_by_theme", themes),
        )
    )
    return _section("charts", f'<div class="charts">{figures}</div>', lang)


def _anomalies(report: DailyReport, lang: Lang) -> str:
    if not report.anomalies:
        return f'<p class="note">{_e(t("no_anomalies", lang))}</p>'
    items = "".join(
        f'<li><span class="tag">{_e(t(a.kind, lang))}</span>'
        f"{_e(a.message_zh if lang == 'zh' else a.message_en)}</li>"
        for a in report.anomalies
    )
    return f'<ul class="anomalies">{items}</ul>'


def _section(key: str, content: str, lang: Lang) -> str:
    return f'<section id="{key}"><h2>{_e(t(key, lang))}</h2>{content}</section>'


def to_html(report: DailyReport, lang: Lang = "zh") -> bytes:
    name = (
        t("city", lang)
        if report.scope == "city"
        else (report.name_zh if lang == "zh" else report.name_en)
    )
    title = f"{name} · {t('title', lang)} · {report.date}"
    header = (
        f"<header><h1>{_e(title)}</h1><p>{_e(t('timezone', lang))}: {_e(report.timezone)} · "
        f"{_e(t('generated', lang))}: {_e(report.generated_at[:19].replace('T', ' '))} UTC</p>"
        "</header>"
    )
    if not report.has_data:
        body = f'<section><p class="nodata" id="no-data">{_e(t("no_data", lang))}</p></section>'
    else:
        cards = "".join(_card(h, lang) for h in report.headline)
        body = _section("headline", f'<div class="cards">{cards}</div>', lang)
        body += _charts(report, lang)
        body += _section("anomalies", _anomalies(report, lang), lang)
        body += _section("hosts", _ranking(report.hosts, "host", lang), lang)
        body += _section("themes", _ranking(report.themes, "theme", lang), lang)
        body += _section("sessions", _sessions(report, lang), lang)
        body += _section("products", _products(report.products, lang), lang)
        body += _section("gi_products", _products(report.gi_products, lang), lang)
    page = (
        f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{header}{body}</main></body></html>"
    )
    return page.encode("utf-8")
