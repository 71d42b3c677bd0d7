"""The table of broadcasts as the platforms report them, beside (never inside) our rollups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from livebase.db.models import Model, UTCDateTime


def _count() -> Mapped[int]:
    return mapped_column(BigInteger, default=0)


class PlatformSession(Model):
    """One broadcast on one platform, unique on ``(platform, row_key)``.

    ``session_id``, ``host_id``, ``room_id`` and ``theme_id`` say what it was matched to in the
    base (all empty for an external broadcast: an account of the base's not tied to a
    session). No foreign keys, like the rollups: figures stay when a session is deleted.
    """

    __tablename__ = "analytics_platform_sessions"
    __table_args__ = (
        Index("ix_analytics_platform_sessions_base_started", "base_id", "started_at"),
    )
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    base_id: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    session_id: Mapped[int | None] = mapped_column(Integer, index=True)
    host_id: Mapped[int | None] = mapped_column(Integer)
    room_id: Mapped[int | None] = mapped_column(Integer)
    theme_id: Mapped[int | None] = mapped_column(Integer)
    views: Mapped[int] = _count()
    uv: Mapped[int] = _count()
    peak_concurrent: Mapped[int] = _count()
    viewer_seconds: Mapped[int] = _count()
    live_seconds: Mapped[int] = _count()
    impressions: Mapped[int] = _count()
    clicks: Mapped[int] = _count()
    gmv_fen: Mapped[int] = _count()
    orders: Mapped[int] = _count()
    buyers: Mapped[int] = _count()
    refund_fen: Mapped[int] = _count()
    interacting_uv: Mapped[int] = _count()
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
