"""The report's words in Chinese (the default) and English."""

from __future__ import annotations

import re
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

_WORDS: dict[str, tuple[str, str]] = {
    # KPIs
    "gmv_fen": ("成交金额", "GMV"),
    "refund_fen": ("退款金额", "Refunds"),
    "net_gmv_fen": ("净成交金额", "Net GMV"),
    "orders": ("订单数", "Orders"),
    "buyers": ("成交人数", "Buyers"),
    "views": ("观看次数", "Views"),
    "uv": ("观看人数 (UV)", "Unique viewers (UV)"),
    "pcu": ("最高在线 (PCU)", "Peak concurrent (PCU)"),
    "acu": ("平均在线 (ACU)", "Average concurrent (ACU)"),
    "avg_watch_seconds": ("人均观看时长", "Avg watch time"),
    "gpm_fen": ("千次观看成交 (GPM)", "GPM (per 1,000 views)"),
    "gpm_uv_fen": ("千人成交 GPM (UV)", "GPM (UV)"),
    "uv_value_fen": ("UV 价值", "UV value"),
    "view_to_buy_rate": ("观看-成交转化率", "View-to-buy conversion"),
    "click_through_rate": ("商品点击率", "Product click-through"),
    "click_to_buy_rate": ("点击-成交转化率", "Click-to-buy conversion"),
    "interaction_rate": ("互动率", "Interaction rate"),
    # report words
    "title": ("直播基地日报", "Daily live-commerce report"),
    "city": ("全市", "City-wide"),
    "no_data": (
        "本日无数据：该日没有直播场次或观看、成交记录。",
        "No data: no live session, viewer or sale was recorded that day.",
    ),
    "generated": ("生成时间", "Generated"),
    "timezone": ("时区", "Time zone"),
    "vs_day": ("较前一日", "vs previous day"),
    "vs_week": ("较上周同日", "vs same day last week"),
    "headline": ("核心指标", "Headline figures"),
    "charts": ("图表", "Charts"),
    "viewers_by_room": ("各直播间在线人数", "Concurrent viewers by room"),
    "gmv_by_room": ("各直播间累计成交", "GMV so far by room"),
    "gmv_by_theme": ("各主题成交", "GMV by theme"),
    "anomalies": ("值得关注", "Worth a look"),
    "no_anomalies": ("今日无异常。", "Nothing unusual today."),
    "hosts": ("主播排行", "Host ranking"),
    "themes": ("主题排行", "Theme ranking"),
    "sessions": ("场次明细", "Sessions"),
    "products": ("热销商品", "Top products"),
    "gi_products": ("地理标志产品", "Geographical-indication products"),
    "ranking_note": (
        "按收缩后的每位观众期望成交额（分/人）排名，观看人数不足 100 的不参与排名；"
        "原始数据列于旁。",
        "Ranked on expected GMV per viewer after shrinkage (fen per viewer); fewer than 100 "
        "viewers are listed but not ranked. Raw figures beside.",
    ),
    "rank": ("排名", "Rank"),
    "rank_change": ("名次变化", "Rank change"),
    "score": ("得分", "Score"),
    "host": ("主播", "Host"),
    "theme": ("主题", "Theme"),
    "room": ("直播间", "Room"),
    "session": ("场次", "Session"),
    "title_col": ("标题", "Title"),
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "live_seconds": ("直播时长（秒）", "Live (s)"),
    "live_time": ("直播时长", "Live time"),
    "live_now": ("直播中", "live"),
    "product": ("商品", "Product"),
    "gi": ("地理标志", "GI"),
    "impressions": ("曝光", "Impressions"),
    "clicks": ("点击", "Clicks"),
    "gmv_prev": ("前一期成交", "GMV before"),
    "gmv_change_pct": ("成交变化", "GMV change"),
    "unranked": ("未排名原因", "Not ranked because"),
    "kind": ("类型", "Kind"),
    "subject": ("对象", "About"),
    "message": ("说明", "Detail"),
    "value": ("数值", "Value"),
    "previous_day": ("前一日", "Previous day"),
    "last_week": ("上周同日", "Same day last week"),
    "change_day": ("较前一日", "Change vs previous day"),
    "change_week": ("较上周同日", "Change vs last week"),
    "kpi": ("指标", "Figure"),
    "time": ("时间", "Time"),
    "viewers": ("在线人数", "Viewers"),
    "gmv_so_far": ("累计成交（元）", "GMV so far (yuan)"),
    "report": ("报告", "Report"),
    "field": ("项目", "Field"),
    "base": ("基地", "Base"),
    "date": ("日期", "Date"),
    "status": ("状态", "Status"),
    "status_ok": ("有数据", "data"),
    "status_none": ("无数据", "no data"),
    "timeline": ("分时数据", "Timeline"),
    "summary": ("核心指标", "Summary"),
    "order_spike": ("少数买家集中下单", "Order spike, few buyers"),
    "relay_failed": ("推流失败", "Relay failed"),
    "relay_unstable": ("推流不稳", "Relay unstable"),
    "host_below_usual": ("主播低于平时", "Host below usual"),
    "none": ("（未指定）", "(none)"),
}


def t(key: str, lang: Lang) -> str:
    """The word for ``key``; an unknown key is a bug, so it raises ``KeyError``."""
    zh, en = _WORDS[key]
    return zh if lang == "zh" else en


_BELOW = re.compile(r"below minimum exposure: (\d+) UV < (\d+)")


def unranked_reason(reason: str | None, lang: Lang) -> str | None:
    """:mod:`analytics.ranking`'s reason for leaving an entity unranked, in ``lang``."""
    if reason is None or lang == "en":
        return reason
    if reason == "no viewers":
        return "无观众"
    below = _BELOW.fullmatch(reason)
    return f"观看人数不足：{below[1]} < {below[2]}" if below else reason
