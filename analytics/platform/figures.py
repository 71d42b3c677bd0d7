"""One broadcast as a platform reports it, in our units (fen, seconds, counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

#: Platforms whose figures are imported, as stored in ``analytics_platform_sessions.platform``.
PLATFORMS: Final = ("douyin", "channels")

#: Largest figure stored (a BIGINT holds up to 2**63 - 1).
MAX_FIGURE: Final = 2**62

#: The counts a platform reports for a broadcast, named as in :class:`analytics.kpis.Totals`.
FIGURES: Final = (
    "views",
    "uv",
    "peak_concurrent",
    "viewer_seconds",
    "live_seconds",
    "impressions",
    "clicks",
    "gmv_fen",
    "orders",
    "buyers",
    "refund_fen",
    "interacting_uv",
)


@dataclass(frozen=True, slots=True)
class PlatformFigures:
    """A platform's figures for one broadcast.

    ``row_key`` identifies the broadcast on the platform (its live id, or the account and start
    time when the export has no id), so that importing it again replaces rather than adds.
    ``line`` is where it came from in an uploaded file (None for an API).
    """

    platform: str
    row_key: str
    account: str
    started_at: datetime
    line: int | None = None
    views: int = 0
    uv: int = 0
    peak_concurrent: int = 0
    viewer_seconds: int = 0
    live_seconds: int = 0
    impressions: int = 0
    clicks: int = 0
    gmv_fen: int = 0
    orders: int = 0
    buyers: int = 0
    refund_fen: int = 0
    interacting_uv: int = 0

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {self.platform!r}")
        if self.started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")
        for name in FIGURES:
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_FIGURE:
                raise ValueError(f"{name} must be an int from 0 to {MAX_FIGURE}, not {value!r}")

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FIGURES}
