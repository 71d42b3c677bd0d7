"""Rollup tables, in the application's one metadata (``livebase.db.models.Model``).

Per-minute sums per scope, the exact id sets behind distinct counts, and the bookkeeping that
makes the rollup consumer idempotent: each event id, each paid order and each refund is stored
once (unique), in the same transaction as the sums it moved. No foreign keys to the domain
tables: rollups are history and stay when a session or product is deleted.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from livebase.db.models import Model, UTCDateTime

#: Scopes of :class:`MinuteRollup`; host, theme and base minutes add up their sessions'.
SCOPES = ("session", "host", "theme", "base", "product")
#: Sum columns of :class:`MinuteRollup`, in ``Totals`` names where one exists.
SUMS = (
    "gmv_fen",
    "refund_fen",
    "orders",
    "views",
    "viewer_seconds",
    "viewers",
    "impressions",
    "clicks",
)
#: Member kinds of :class:`SetMember`: the sets behind uv, buyers, clickers, click_buyers and
#: interacting_uv (docs/metrics.md, "Distinct counts and rollups").
KINDS = ("viewer", "buyer", "clicker", "paying_viewer", "interacting")
#: Scopes of :class:`DayMember` and :class:`DayCount` (the report's groupings).
DAY_SCOPES = ("session", "host", "theme", "base")
#: The day kind of a member both a clicker and a paying viewer of the scope (click_buyers).
CLICK_BUYER = "click_buyer"


def _sum() -> Mapped[int]:
    return mapped_column(BigInteger, default=0)


class MinuteRollup(Model):
    """Sums of one UTC minute of one scope; ``viewers`` is (session, viewer) pairs present."""

    __tablename__ = "analytics_minutes"
    __table_args__ = (Index("ix_analytics_minutes_minute", "minute"),)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    gmv_fen: Mapped[int] = _sum()
    refund_fen: Mapped[int] = _sum()
    orders: Mapped[int] = _sum()
    views: Mapped[int] = _sum()
    viewer_seconds: Mapped[int] = _sum()
    viewers: Mapped[int] = _sum()
    impressions: Mapped[int] = _sum()
    clicks: Mapped[int] = _sum()


class ProcessedEvent(Model):
    """An event already counted; kept until its minute is past the lateness window."""

    __tablename__ = "analytics_processed_events"
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Presence(Model):
    """A viewer present in a session's minute: the set behind ``viewers`` and so PCU."""

    __tablename__ = "analytics_presence"
    session_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    viewer_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class SetMember(Model):
    """A member of one of a session's id sets (``kind``); ``namespace`` is source or platform."""

    __tablename__ = "analytics_members"
    session_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_minute: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class MemberBlock(Model):
    """The members of one session set first seen on one sealed UTC day, packed column-wise.

    A recompute of a day past the prune's horizon writes its session members as a block per
    session and kind instead of a row each (:mod:`analytics.members`, which reads rows and
    blocks as one): ``payload`` is an Arrow IPC stream of ``namespace``, ``member_id`` and
    ``first_minute``; ``members`` is its row count.
    """

    __tablename__ = "analytics_member_blocks"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    members: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class PaidOrder(Model):
    """A paid order counted once, in the minute and session of its first report."""

    __tablename__ = "analytics_orders"
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int | None] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Refund(Model):
    __tablename__ = "analytics_refunds"
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SessionSpan(Model):
    """A session's on-air bounds as events tell them, for live time (merged by min and max)."""

    __tablename__ = "analytics_sessions"
    session_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DayMember(Model):
    """A member of a scope's id set for one local day (the base's time zone), stored once.

    Derived from the session sets: a session member counts in the local day of its first
    minute, in its session, host, theme and base (a missing host or theme is id 0) of
    ``base_id``. ``kind`` is a :data:`KINDS` member or :data:`CLICK_BUYER`. Kept while the
    local day can receive events: the prune drops the rows of a day that ended before its
    horizon, whose :class:`DayCount` rows are final.
    """

    __tablename__ = "analytics_day_members"
    base_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class DayCount(Model):
    """How many :class:`DayMember` rows one (base, day, scope, scope id, kind) holds."""

    __tablename__ = "analytics_day_counts"
    base_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    scope_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    members: Mapped[int] = mapped_column(BigInteger)
