"""HLS playlists (RFC 8216), pure: we own the playlists, ffmpeg only cuts segments.

Owning the playlist text is what lets a live session survive an encoder reconnect (an
``EXT-X-DISCONTINUITY`` where the new ffmpeg starts, numbering carried on), carry product pins
as ``EXT-X-DATERANGE`` timed metadata, and keep every segment for the replay while the live
playlist slides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "DateRange",
    "HlsError",
    "MediaPlaylist",
    "Segment",
    "Variant",
    "parse_segment_list_line",
    "render_master",
]


class HlsError(ValueError):
    """A segment or playlist entry that would make an invalid playlist."""


@dataclass(frozen=True, slots=True)
class Segment:
    uri: str
    duration: float
    started_at: datetime  # wall-clock time of the first frame (EXT-X-PROGRAM-DATE-TIME)
    discontinuity: bool = False


@dataclass(frozen=True, slots=True)
class DateRange:
    """Timed metadata, e.g. a product pin: ``X-`` attributes carry the product card."""

    id: str
    start: datetime
    end: datetime | None = None
    klass: str = "com.livebase.pin"
    attributes: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise HlsError(f"date range {self.id!r} ends before it starts")


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int
    resolution: tuple[int, int] | None = None
    codecs: str | None = None
    name: str | None = None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise HlsError("playlist times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _quoted(value: str) -> str:
    if any(ch in value for ch in '"\r\n'):
        raise HlsError(f"attribute value {value!r} cannot be quoted in a playlist")
    return f'"{value}"'


def _daterange(dr: DateRange) -> str:
    parts = [
        f"ID={_quoted(dr.id)}",
        f"CLASS={_quoted(dr.klass)}",
        f"START-DATE={_quoted(_iso(dr.start))}",
    ]
    if dr.end is not None:
        parts.append(f"END-DATE={_quoted(_iso(dr.end))}")
        parts.append(f"DURATION={(dr.end - dr.start).total_seconds():.3f}")
    for name, value in sorted(dr.attributes.items()):
        if not name.startswith("X-") or not name[2:].replace("-", "").isalnum():
            raise HlsError(f"date range attribute {name!r} must be X-<A-Z0-9->")
        parts.append(f"{name}={value}" if isinstance(value, int) else f"{name}={_quoted(value)}")
    return "#EXT-X-DATERANGE:" + ",".join(parts)


class MediaPlaylist:
    """Segments of one rendition: a sliding live window and the full replay, from one list."""

    def __init__(self, window: int = 6) -> None:
        if window < 3:
            raise HlsError("a live window shorter than 3 segments makes players stall")
        self.window = window
        self.segments: list[Segment] = []
        self.ended = False

    def add(self, segment: Segment) -> None:
        if self.ended:
            raise HlsError("the playlist has ended")
        if segment.duration <= 0 or not math.isfinite(segment.duration):
            raise HlsError(f"segment {segment.uri!r} has a bad duration {segment.duration!r}")
        self.segments.append(segment)

    def end(self) -> None:
        self.ended = True

    @property
    def target_duration(self) -> int:
        return max((math.ceil(s.duration) for s in self.segments), default=1)

    def render(self, dateranges: Iterable[DateRange] = (), *, replay: bool = False) -> str:
        """The live playlist (the last ``window`` segments), or with ``replay`` every segment
        as an EVENT (VOD once ended) playlist."""
        first = 0 if replay else max(0, len(self.segments) - self.window)
        shown = self.segments[first:]
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:6",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
        ]
        discontinuities = sum(1 for s in self.segments[:first] if s.discontinuity)
        if discontinuities:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}")
        if replay:
            lines.append("#EXT-X-PLAYLIST-TYPE:" + ("VOD" if self.ended else "EVENT"))
        if shown:
            # A date range must not start before the first PROGRAM-DATE-TIME shown.
            horizon = shown[0].started_at
            for dr in sorted(dateranges, key=lambda d: (d.start, d.id)):
                if dr.end is None or dr.end >= horizon:
                    lines.append(_daterange(dr))
        for seg in shown:
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(seg.started_at)}")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(seg.uri)
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def render_master(variants: Sequence[Variant]) -> str:
    if not variants:
        raise HlsError("a master playlist needs at least one variant")
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        attrs = [f"BANDWIDTH={v.bandwidth}"]
        if v.resolution:
            attrs.append(f"RESOLUTION={v.resolution[0]}x{v.resolution[1]}")
        if v.codecs:
            attrs.append(f"CODECS={_quoted(v.codecs)}")
        if v.name:
            attrs.append(f"NAME={_quoted(v.name)}")
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), v.uri]
    return "\n".join(lines) + "\n"


def parse_segment_list_line(line: str) -> tuple[str, float, float]:
    """One line of ffmpeg's CSV segment list: ``name,start,end`` (seconds of the stream)."""
    parts = line.strip().rsplit(",", 2)
    if len(parts) != 3:
        raise HlsError(f"not a segment list line: {line!r}")
    name, start_text, end_text = parts
    try:
        start, end = float(start_text), float(end_text)
    except ValueError as exc:
        raise HlsError(f"bad times in segment list line {line!r}") from exc
    if not name or "/" in name or name.startswith(".") or end <= start:
        raise HlsError(f"bad segment entry {line!r}")
    return name, start, end
