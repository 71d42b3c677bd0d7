"""A small day of a base, every expected KPI worked out by hand in the comments.

Shared by the KPI tests (``tests/analytics``) and the report tests, which load the same day
into the rollups and expect the same figures.

The day (2025-05-01, times UTC) at base ``haifeng``: three hosts, two sessions each.

S11 host 1, studio-1, 10:00:00-10:30:00 (1,800 s)
    v1 (player)  joins 10:00:10, beats 10:00:40 (+30), 10:01:10 (+30), leaves 10:01:20 (+10)
    v2 (douyin)  joins 10:00:50, beats 10:01:20 (+30), leaves 10:01:30 (+10)
    v1 (player)  joins again 10:05:00, leaves 10:05:20 (+20)
    the 10:00:40 beat is delivered twice (same event id): counted once
    v2 likes (5 taps), v1 comments; 10 impressions; v1 clicks twice, v2 once
    o-1 youzan b1 (viewer v1) 9,900 paid, reported twice (two event ids): counted once
    o-2 douyin_shop b2 (no viewer) 19,900 paid; r-1 refunds 5,000 of it
S12 host 1, studio-1, 20:00:00-21:00:00 (3,600 s)
    v1 joins 20:00:05, beats 20:00:35 (+30), leaves 20:00:45 (+10)
    v3 (player)  joins 20:10:00, beats 20:10:30 (+30), 20:11:00 (+30), leaves 20:11:05 (+5)
    v4 (kuaishou) joins 20:30:00, leaves 20:30:20 (+20)
    v3 shares; 4 impressions; v3 clicks once
    o-3 youzan b3 (viewer v3) 30,000 paid; r-2 refunds o-1 in full (9,900), credited to S11
S21 host 2, studio-2, 10:00:00-11:00:00 (3,600 s)
    v5 (douyin)  joins 10:00:00, leaves 10:00:50 (+50)
    v2 (douyin)  joins 10:00:20, beats 10:00:50 (+30), leaves 10:01:00 (+10)  (also in S11)
    v2 follows; 5 impressions; v5 clicks once
    o-4 douyin_shop b4 (viewer v5) 12,800 paid; o-5 created but never paid
S22 host 2, studio-2, 14:00:00-14:20:00 (1,200 s), nobody watches
S31 host 3, studio-2, 20:00:00-20:10:00 (600 s), nobody watches
    o-6 youzan b1 (the same buyer as o-1) 5,000 paid; r-3 refunds it in full
S32 host 3, studio-2, started 21:00:00, still live at the report time 21:30:00 (1,800 s)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from analytics.aggregate import totals_by
from analytics.kpis import KPIs, Totals
from analytics.schemas import AnalyticsEvent, StreamStartedV1, parse_event

AS_OF = datetime(2025, 5, 1, 21, 30, tzinfo=UTC)
ROOMS = {11: "studio-1", 12: "studio-1"} | dict.fromkeys([21, 22, 31, 32], "studio-2")
_ids = itertools.count(1)


def ev(
    session: int, clock: str, kind: str, event_id: str | None = None, **fields: Any
) -> AnalyticsEvent:
    return parse_event(
        {
            "type": kind,
            "event_id": event_id or f"e{next(_ids)}",
            "occurred_at": f"2025-05-01T{clock}+00:00",
            "base": "haifeng",
            "room": ROOMS[session],
            "session_id": session,
            **fields,
        },
        now=AS_OF,
    )


def view(
    session: int, clock: str, kind: str, viewer: str, source: str, seconds: int = 0
) -> AnalyticsEvent:
    extra = {} if kind == "viewer.joined" else {"watch_seconds": seconds}
    return ev(session, clock, kind, viewer_id=viewer, source=source, **extra)


def paid(
    session: int, clock: str, order: str, platform: str, buyer: str, fen: int, **kw: Any
) -> AnalyticsEvent:
    return ev(
        session, clock, "order.paid", order_id=order, platform=platform, buyer_id=buyer,
        amount_fen=fen, **kw,
    )  # fmt: skip


def refund(
    session: int, clock: str, order: str, refund_id: str, platform: str, fen: int
) -> AnalyticsEvent:
    return ev(
        session, clock, "order.refunded", order_id=order, refund_id=refund_id,
        platform=platform, amount_fen=fen,
    )  # fmt: skip


J, B, L = "viewer.joined", "viewer.heartbeat", "viewer.left"
V1 = {"viewer_id": "v1", "viewer_source": "player"}


def day() -> Iterator[AnalyticsEvent]:
    yield ev(11, "10:00:00", "stream.started", host_id=1, theme="gi-produce")
    yield view(11, "10:00:10", J, "v1", "player")
    yield view(11, "10:00:40", B, "v1", "player", 30).model_copy(update={"event_id": "dup"})
    yield view(11, "10:00:40", B, "v1", "player", 30).model_copy(update={"event_id": "dup"})
    yield view(11, "10:00:50", J, "v2", "douyin")
    yield view(11, "10:01:10", B, "v1", "player", 30)
    yield view(11, "10:01:20", L, "v1", "player", 10)
    yield view(11, "10:01:20", B, "v2", "douyin", 30)
    yield view(11, "10:01:30", L, "v2", "douyin", 10)
    yield view(11, "10:05:00", J, "v1", "player")
    yield view(11, "10:05:20", L, "v1", "player", 20)
    yield ev(11, "10:02:00", "interaction.liked", viewer_id="v2", source="douyin", count=5)
    yield ev(11, "10:02:10", "interaction.commented", viewer_id="v1")
    yield ev(11, "10:03:00", "product.impressed", product_id=100, count=10, source="douyin")
    for clock, viewer, source in [("10:03:10", "v1", "player"), ("10:03:20", "v1", "player")]:
        yield ev(11, clock, "product.clicked", product_id=100, viewer_id=viewer, source=source)
    yield ev(11, "10:03:30", "product.clicked", product_id=100, viewer_id="v2", source="douyin")
    yield paid(11, "10:04:00", "o-1", "youzan", "b1", 9_900, **V1)
    yield paid(11, "10:04:05", "o-1", "youzan", "b1", 9_900, **V1)
    yield paid(11, "10:06:00", "o-2", "douyin_shop", "b2", 19_900)
    yield refund(11, "10:20:00", "o-2", "r-1", "douyin_shop", 5_000)
    yield ev(11, "10:30:00", "stream.ended")

    yield ev(12, "20:00:00", "stream.started", host_id=1, theme="gi-produce")
    yield view(12, "20:00:05", J, "v1", "player")
    yield view(12, "20:00:35", B, "v1", "player", 30)
    yield view(12, "20:00:45", L, "v1", "player", 10)
    yield view(12, "20:10:00", J, "v3", "player")
    yield view(12, "20:10:30", B, "v3", "player", 30)
    yield view(12, "20:11:00", B, "v3", "player", 30)
    yield view(12, "20:11:05", L, "v3", "player", 5)
    yield view(12, "20:30:00", J, "v4", "kuaishou")
    yield view(12, "20:30:20", L, "v4", "kuaishou", 20)
    yield ev(12, "20:10:40", "interaction.shared", viewer_id="v3")
    yield ev(12, "20:10:45", "product.impressed", product_id=101, count=4, viewer_id="v3")
    yield ev(12, "20:10:50", "product.clicked", product_id=101, viewer_id="v3")
    yield paid(
        12, "20:12:00", "o-3", "youzan", "b3", 30_000, viewer_id="v3", viewer_source="player"
    )
    yield refund(11, "20:30:00", "o-1", "r-2", "youzan", 9_900)
    yield ev(12, "21:00:00", "stream.ended")

    yield ev(21, "10:00:00", "stream.started", host_id=2, theme="crafts")
    yield view(21, "10:00:00", J, "v5", "douyin")
    yield view(21, "10:00:20", J, "v2", "douyin")
    yield view(21, "10:00:50", L, "v5", "douyin", 50)
    yield view(21, "10:00:50", B, "v2", "douyin", 30)
    yield view(21, "10:01:00", L, "v2", "douyin", 10)
    yield ev(21, "10:00:30", "interaction.followed", viewer_id="v2", source="douyin")
    yield ev(21, "10:00:35", "product.impressed", product_id=200, count=5)
    yield ev(21, "10:00:40", "product.clicked", product_id=200, viewer_id="v5", source="douyin")
    yield paid(
        21, "10:00:45", "o-4", "douyin_shop", "b4", 12_800, viewer_id="v5", viewer_source="douyin"
    )
    yield ev(
        21,
        "10:00:46",
        "order.created",
        order_id="o-5",
        platform="youzan",
        buyer_id="b9",
        amount_fen=5_000,
    )
    yield ev(21, "11:00:00", "stream.ended")

    yield ev(22, "14:00:00", "stream.started", host_id=2, theme="crafts")
    yield ev(22, "14:20:00", "stream.ended")

    yield ev(31, "20:00:00", "stream.started", host_id=3, theme="crafts")
    yield paid(31, "20:05:00", "o-6", "youzan", "b1", 5_000)
    yield ev(31, "20:10:00", "stream.ended")
    yield refund(31, "20:20:00", "o-6", "r-3", "youzan", 5_000)
    yield ev(32, "21:00:00", "stream.started", host_id=3, theme="crafts")


EVENTS = list(day())
HOST_OF = {e.session_id: e.host_id for e in EVENTS if isinstance(e, StreamStartedV1)}


def by_host() -> dict[int | None, Totals]:
    return totals_by(EVENTS, lambda e: HOST_OF[e.session_id], as_of=AS_OF)


# Host 1 (S11 + S12):
#   GMV 9,900 + 19,900 + 30,000 = 59,800; refunds 5,000 + 9,900 = 14,900; net 44,900
#   orders o-1, o-2, o-3 = 3; buyers youzan:b1, douyin_shop:b2, youzan:b3 = 3
#   views: S11 v1, v2, v1 again; S12 v1, v3, v4 = 6; UV player:v1, douyin:v2, player:v3,
#   kuaishou:v4 = 4 (v1 in both sessions counts once)
#   viewer-seconds: S11 30+30+10 + 30+10 + 20 = 130; S12 30+10 + 30+30+5 + 20 = 125; = 255
#   live 1,800 + 3,600 = 5,400 s
#   per-minute presence: 10:00 {v1, v2} 2, 10:01 {v1, v2} 2, 10:05 1, 20:00 1, 20:10 1,
#   20:11 1, 20:30 1 -> PCU 2; ACU 255 / 5,400 = 0.047222...
#   average watch 255 / 4 = 63.75 s
#   GPM 59,800 x 1,000 / 6 = 9,966,666.67 -> 9,966,667 fen
#   GPM (UV) 59,800 x 1,000 / 4 = 14,950,000; UV value 59,800 / 4 = 14,950 fen
#   view-to-buy 3 / 4 = 0.75
#   impressions 10 + 4 = 14; clicks 3 + 1 = 4; CTR 4 / 14 = 0.285714...
#   clickers v1, v2, v3 = 3; of them paid with their viewer id: v1 (o-1), v3 (o-3) = 2 -> 2/3
#   (the refund of o-1 does not undo the purchase)
#   interacting v2 (like), v1 (comment), v3 (share) = 3 -> 3 / 4 = 0.75
HOST_1 = KPIs(
    gmv_fen=59_800, refund_fen=14_900, net_gmv_fen=44_900, orders=3, buyers=3, views=6, uv=4,
    pcu=2, acu=255 / 5_400, avg_watch_seconds=63.75, gpm_fen=9_966_667, gpm_uv_fen=14_950_000,
    uv_value_fen=14_950, view_to_buy_rate=0.75, click_through_rate=4 / 14,
    click_to_buy_rate=2 / 3, interaction_rate=0.75,
)  # fmt: skip

# Host 2 (S21 + S22):
#   GMV 12,800 (o-5 was never paid); refunds 0; orders 1; buyers 1
#   views 2, UV douyin:v5, douyin:v2 = 2; viewer-seconds 50 + 30 + 10 = 90
#   live 3,600 + 1,200 = 4,800 s; presence 10:00 {v5, v2} 2, 10:01 {v2} 1 -> PCU 2
#   ACU 90 / 4,800 = 0.01875; average watch 90 / 2 = 45 s
#   GPM 12,800 x 1,000 / 2 = 6,400,000 = GPM (UV); UV value 6,400
#   view-to-buy 1 / 2; CTR 1 / 5; click-to-buy v5 clicked and paid: 1 / 1
#   interacting v2 (follow) 1 / 2
HOST_2 = KPIs(
    gmv_fen=12_800, refund_fen=0, net_gmv_fen=12_800, orders=1, buyers=1, views=2, uv=2,
    pcu=2, acu=0.01875, avg_watch_seconds=45.0, gpm_fen=6_400_000, gpm_uv_fen=6_400_000,
    uv_value_fen=6_400, view_to_buy_rate=0.5, click_through_rate=0.2, click_to_buy_rate=1.0,
    interaction_rate=0.5,
)  # fmt: skip

# Host 3 (S31 + S32): GMV 5,000 refunded in full, net 0; 1 order, 1 buyer; nobody watched.
#   live 600 + (21:30 - 21:00) 1,800 = 2,400 s, so PCU is 0 and ACU 0 / 2,400 = 0.0, but every
#   per-viewer, per-view and per-impression ratio has a zero denominator: None.
HOST_3 = KPIs(
    gmv_fen=5_000, refund_fen=5_000, net_gmv_fen=0, orders=1, buyers=1, views=0, uv=0,
    pcu=0, acu=0.0, avg_watch_seconds=None, gpm_fen=None, gpm_uv_fen=None, uv_value_fen=None,
    view_to_buy_rate=None, click_through_rate=None, click_to_buy_rate=None,
    interaction_rate=None,
)  # fmt: skip

# The whole base: distinct counts are unions, not sums.
#   GMV 59,800 + 12,800 + 5,000 = 77,600; refunds 14,900 + 5,000 = 19,900; net 57,700
#   orders 5; buyers youzan:b1 (o-1 and o-6), b2, b3, b4 = 4, not 3 + 1 + 1 = 5
#   views 6 + 2 = 8; UV v1, v2, v3, v4, v5 = 5, not 4 + 2 = 6 (v2 watched both hosts)
#   viewer-seconds 255 + 90 = 345; live 5,400 + 4,800 + 2,400 = 12,600 s
#   presence 10:00: S11 {v1, v2} + S21 {v5, v2} = 4; 10:01: 2 + 1 = 3 -> PCU 4, which is
#   neither host's PCU (2) nor their maximum: rooms live at once add up
#   ACU 345 / 12,600 = 0.027381; average watch 345 / 5 = 69 s
#   GPM 77,600 x 1,000 / 8 = 9,700,000; GPM (UV) 77,600,000 / 5 = 15,520,000; UV value 15,520
#   view-to-buy 4 / 5; CTR (4 + 1) / (14 + 5) = 5 / 19
#   clickers v1, v2, v3, v5 = 4, who paid: v1, v3, v5 = 3 -> 3 / 4
#   interacting v1, v2, v3 = 3 -> 3 / 5
BASE = KPIs(
    gmv_fen=77_600, refund_fen=19_900, net_gmv_fen=57_700, orders=5, buyers=4, views=8, uv=5,
    pcu=4, acu=345 / 12_600, avg_watch_seconds=69.0, gpm_fen=9_700_000, gpm_uv_fen=15_520_000,
    uv_value_fen=15_520, view_to_buy_rate=0.8, click_through_rate=5 / 19, click_to_buy_rate=0.75,
    interaction_rate=0.6,
)  # fmt: skip
