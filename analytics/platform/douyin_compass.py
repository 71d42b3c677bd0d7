"""Douyin Compass (抖音电商罗盘) / 巨量百应 per-broadcast exports → :class:`PlatformFigures`.

A base manager downloads the list of a period's broadcasts from the Compass 直播 page (or
巨量百应's 直播数据) as CSV or XLSX. Headers are Chinese and vary a little between the two
tools and over time, so each of our figures accepts the names listed in :data:`COLUMNS`
(compared without spaces, with full-width brackets as ASCII ones). Columns we do not use are
ignored: exports carry dozens. Every problem of every row is reported with its line; a file
with any problem yields nothing (``RowsRejected``), so nothing of it is stored.

Values: money in yuan (``1,234.56``, ``¥1234.5``, ``1.2万``) becomes exact fen; counts may carry
thousands separators or ``万``; durations are seconds, ``HH:MM:SS`` or ``2小时3分4秒``; times are
``YYYY-MM-DD HH:MM[:SS]`` (or with ``/``) in the base's time zone. An empty cell or ``-`` in an
optional column is 0.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final
from zoneinfo import ZoneInfo

from analytics.platform.figures import PlatformFigures
from livebase.listings.tables import Sheet

PLATFORM: Final = "douyin"


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    names: tuple[str, ...]
    kind: str  # text, time, seconds, count, yuan
    required: bool = False


COLUMNS: Final = (
    Column("account", ("主播昵称", "达人昵称", "抖音昵称", "账号昵称", "直播间", "直播间名称"),
           "text", required=True),
    Column("room_ref", ("直播间id", "场次id", "直播id", "roomid"), "text"),
    Column("started_at", ("开播时间", "直播开始时间"), "time", required=True),
    Column("ended_at", ("下播时间", "直播结束时间", "关播时间"), "time"),
    Column("live_seconds", ("直播时长",), "seconds"),
    Column("views", ("观看人次", "累计观看人次", "直播间观看人次"), "count"),
    Column("uv", ("观看人数", "累计观看人数", "直播间观看人数"), "count", required=True),
    Column("peak_concurrent", ("最高在线人数", "最高在线", "在线人数峰值"), "count"),
    Column("avg_concurrent", ("平均在线人数", "平均在线"), "decimal"),
    Column("avg_watch_seconds", ("人均观看时长", "平均观看时长"), "seconds"),
    Column("impressions", ("商品曝光次数",), "count"),
    Column("clicks", ("商品点击次数",), "count"),
    Column("gmv_fen", ("成交金额(元)", "成交金额", "直播间成交金额", "直播间成交金额(元)",
                       "用户支付金额", "用户支付金额(元)"), "yuan", required=True),
    Column("orders", ("成交订单数", "直播间成交订单数"), "count"),
    Column("buyers", ("成交人数", "直播间成交人数"), "count"),
    Column("refund_fen", ("退款金额(元)", "退款金额"), "yuan"),
    Column("interacting_uv", ("互动人数",), "count"),
)  # fmt: skip
BLANK = ("", "-", "--", "—")
MAX_COUNT = 10**10  # counts and averages; products of two stay well inside BIGINT
MAX_FEN = 10**14
MAX_SECONDS = 366 * 86_400


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str
    message: str


class RowsRejected(ValueError):
    """The file cannot be imported; ``problems`` names every bad header or cell."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def normalise(header: str) -> str:
    table = str.maketrans({"（": "(", "）": ")", "\u3000": None, " ": None, "\t": None})
    return header.strip().lower().translate(table)


def _locate(sheet: Sheet) -> dict[str, tuple[int, str]]:
    """Our field → (index, header as written); problems for missing or repeated columns."""
    by_name = {n: c for c in COLUMNS for n in c.names}
    found: dict[str, tuple[int, str]] = {}
    problems = []
    for index, raw in enumerate(sheet.header):
        column = by_name.get(normalise(raw))
        if column is None:
            continue
        if column.field in found:
            same = found[column.field][1]
            problems.append(Problem(sheet.header_line, raw, f"says the same as column {same!r}"))
            continue
        found[column.field] = (index, raw)
    for column in COLUMNS:
        if column.required and column.field not in found:
            names = ", ".join(column.names)
            problems.append(Problem(sheet.header_line, column.names[0],
                                    f"missing column (one of: {names})"))  # fmt: skip
    if problems:
        raise RowsRejected(problems)
    return found


_NUMBER = re.compile(r"^[¥￥]?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|w)?(元)?$", re.IGNORECASE)


def _decimal(text: str) -> Decimal:
    match = _NUMBER.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a number")
    value = Decimal(match.group(1).replace(",", ""))
    if match.group(2):
        value *= 10_000
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    if value > MAX_FEN:
        raise ValueError(f"{text!r} is too large")
    return value


def parse_count(text: str) -> int:
    value = _decimal(text)
    if value != value.to_integral_value() or value > MAX_COUNT:
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def parse_yuan(text: str) -> int:
    """Yuan to fen, exactly: more than two decimals is refused rather than rounded."""
    fen = _decimal(text) * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{text!r} has more than two decimals")
    if fen > MAX_FEN:
        raise ValueError(f"{text!r} is too large")
    return int(fen)


def parse_average(text: str) -> Decimal:
    value = _decimal(text)
    if value > MAX_COUNT:
        raise ValueError(f"{text!r} is too large")
    return value


_HMS = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d)$")
_CHINESE = re.compile(r"^(?:(\d+)\s*(?:小时|时|h))?\s*(?:(\d+)\s*(?:分钟|分|m|min))?\s*"
                      r"(?:(\d+(?:\.\d+)?)\s*(?:秒|s))?$", re.IGNORECASE)  # fmt: skip


def parse_seconds(text: str) -> int:
    """Seconds (rounded half up) from ``5400``, ``01:30:00``, ``1小时30分`` or ``90.5秒``."""
    seconds = _seconds(text.strip())
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than a year")
    return seconds


def _seconds(text: str) -> int:
    try:
        return int(_decimal(text).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    except (ValueError, InvalidOperation):
        pass
    if clock := _HMS.match(text):
        hours, minutes, seconds = (int(g) for g in clock.groups())
        return hours * 3600 + minutes * 60 + seconds
    words = _CHINESE.match(text)
    if words is None or not any(words.groups()):
        raise ValueError(f"{text!r} is not a duration (seconds, HH:MM:SS or 1小时2分3秒)")
    h, m, s = words.groups()
    rest = Decimal(s or 0).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    return int(h or 0) * 3600 + int(m or 0) * 60 + int(rest)


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")  # fmt: skip


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """A local time of the base (an offset in the text wins)."""
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"{text!r} is not a date and time (YYYY-MM-DD HH:MM:SS)") from None
    if not 2000 <= parsed.year <= 2999:
        raise ValueError(f"{text!r} is not a plausible date")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def row_key(account: str, room_ref: str, started_at: datetime) -> str:
    """The platform's live id when the export has one; else the account and start time."""
    if room_ref:
        return f"id:{room_ref}"[:160]
    digest = hashlib.sha256(f"{account}\x00{started_at.isoformat()}".encode()).hexdigest()
    return f"at:{digest[:40]}"


def parse(sheet: Sheet, timezone: str, *, now: datetime | None = None) -> list[PlatformFigures]:
    """Every row of a Compass export as figures; ``RowsRejected`` naming every problem."""
    zone = ZoneInfo(timezone)
    where = _locate(sheet)
    latest = (now or datetime.now(zone)) + timedelta(days=1)
    problems: list[Problem] = []
    out: list[PlatformFigures] = []
    seen: dict[str, int] = {}
    for row in sheet.rows:
        values: dict[str, object] = {}
        bad = False
        for column in COLUMNS:
            if column.field not in where:
                continue
            index, header = where[column.field]
            cell = row.cells[index] if index < len(row.cells) else ""
            if cell.strip() in BLANK:
                if column.required:
                    problems.append(Problem(row.line, header, "is empty"))
                    bad = True
                continue
            try:
                values[column.field] = _PARSERS[column.kind](cell, zone)
            except (ValueError, InvalidOperation) as exc:
                problems.append(Problem(row.line, header, str(exc)))
                bad = True
        if len(row.cells) > len(sheet.header):
            problems.append(Problem(row.line, "(row)", "has more cells than the header"))
            bad = True
        if bad:
            continue
        started = values["started_at"]
        assert isinstance(started, datetime)
        if started > latest:
            problems.append(Problem(row.line, where["started_at"][1], "is in the future"))
            continue
        figures = _figures(row.line, values, started)
        if figures.row_key in seen:
            first = seen[figures.row_key]
            problems.append(Problem(row.line, "(row)", f"is the same broadcast as line {first}"))
            continue
        seen[figures.row_key] = row.line
        out.append(figures)
    if problems:
        raise RowsRejected(problems)
    if not out:
        raise RowsRejected([Problem(sheet.header_line, "(file)", "has no rows below the header")])
    return out


def _figures(line: int, values: dict[str, object], started: datetime) -> PlatformFigures:
    def count(name: str) -> int:
        value = values.get(name, 0)
        assert isinstance(value, int)
        return value

    live = count("live_seconds")
    ended = values.get("ended_at")
    if not live and isinstance(ended, datetime) and ended > started:
        live = int((ended - started).total_seconds())
    uv = count("uv")
    # Viewer-seconds from the average watch time per viewer; failing that, from the average
    # concurrency over the broadcast (both are how Compass derives those averages).
    viewer_seconds = count("avg_watch_seconds") * uv
    average = values.get("avg_concurrent")
    if not viewer_seconds and isinstance(average, Decimal):
        viewer_seconds = int((average * live).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    account = str(values["account"])
    return PlatformFigures(
        platform=PLATFORM,
        row_key=row_key(account, str(values.get("room_ref", "")), started),
        account=account[:200],
        started_at=started,
        line=line,
        views=count("views"),
        uv=uv,
        peak_concurrent=count("peak_concurrent"),
        viewer_seconds=viewer_seconds,
        live_seconds=live,
        impressions=count("impressions"),
        clicks=count("clicks"),
        gmv_fen=count("gmv_fen"),
        orders=count("orders"),
        buyers=count("buyers"),
        refund_fen=count("refund_fen"),
        interacting_uv=count("interacting_uv"),
    )


_PARSERS: dict[str, Callable[[str, ZoneInfo], object]] = {
    "text": lambda text, _: text.strip(),
    "time": parse_time,
    "seconds": lambda text, _: parse_seconds(text),
    "count": lambda text, _: parse_count(text),
    "decimal": lambda text, _: parse_average(text),
    "yuan": lambda text, _: parse_yuan(text),
}
