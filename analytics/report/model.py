"""What a daily report holds: plain, typed data that every format renders the same way.

Money stays in integer fen here (the JSON format keeps it so); the human formats show yuan.
Times are ISO 8601 in the report's time zone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The headline KPIs, in report order (names of :class:`analytics.kpis.KPIs` fields).
HEADLINE: tuple[str, ...] = (
    "gmv_fen",
    "refund_fen",
    "net_gmv_fen",
    "orders",
    "buyers",
    "views",
    "uv",
    "pcu",
    "acu",
    "avg_watch_seconds",
    "gpm_fen",
    "uv_value_fen",
    "view_to_buy_rate",
    "click_through_rate",
    "interaction_rate",
)

Number = int | float | None


@dataclass(frozen=True, slots=True)
class Compared:
    """A figure against an earlier one: ``change`` = now − then, ``change_pct`` a fraction."""

    previous: Number
    change: Number
    change_pct: float | None

    @classmethod
    def of(cls, now: Number, then: Number) -> Compared:
        if now is None or then is None:
            return cls(then, None, None)
        change = now - then
        return cls(then, change, None if then == 0 else change / then)


@dataclass(frozen=True, slots=True)
class Headline:
    name: str
    value: Number
    vs_previous_day: Compared
    vs_last_week: Compared  #: the same weekday a week before


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: int
    title: str
    room: str
    host: str
    theme: str
    started_at: str | None
    ended_at: str | None  #: None while still live
    live_seconds: int
    kpis: dict[str, Number]


@dataclass(frozen=True, slots=True)
class ProductRow:
    product_id: int
    title: str
    gi: str | None  #: the registered geographical-indication name, when the product has one
    gmv_fen: int
    orders: int
    impressions: int
    clicks: int
    click_through_rate: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: ``points`` are (minute of the local day, value)."""

    label: str
    points: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str  #: order_spike, relay_failed, relay_unstable, host_below_usual
    subject: str  #: the session or host it is about
    message_zh: str
    message_en: str
    figures: dict[str, Number]


@dataclass(frozen=True, slots=True)
class Charts:
    bucket_minutes: int
    day_minutes: int  #: length of the local day (1,440 but across a DST change)
    viewers_by_room: list[Series]  #: concurrent viewers, the highest minute of each bucket
    gmv_by_room: list[Series]  #: paid GMV so far in the day, fen
    gmv_by_theme: list[tuple[str, str, int]]  #: (name zh, name en, paid GMV in fen)


@dataclass(frozen=True, slots=True)
class DailyReport:
    scope: str  #: "base" or "city"
    base: str | None  #: base slug; None city-wide
    name_zh: str
    name_en: str
    date: str  #: the local calendar day, YYYY-MM-DD
    timezone: str
    window_start: str  #: the day's first instant, UTC
    window_end: str  #: the next day's first instant, UTC
    generated_at: str
    has_data: bool
    headline: list[Headline] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)  #: analytics.ranking rows
    themes: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    products: list[ProductRow] = field(default_factory=list)
    gi_products: list[ProductRow] = field(default_factory=list)
    charts: Charts | None = None
    anomalies: list[Anomaly] = field(default_factory=list)

    def figure(self, name: str) -> Number:
        """A headline KPI's value."""
        return next(h.value for h in self.headline if h.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
