"""One supervised pipeline per live session, whatever the ingest protocol.

The ingest pushes FLV-shaped media into the pipeline's fan-out; outputs read their own feeds:

- one per platform destination (RTMP/RTMPS by our own client, SRT through ffmpeg), relayed
  without transcoding;
- ``hls``: the source rendition for the base's own player, whose segments are also the
  recording (``replay.m3u8``);
- ``ladder``: the configured rungs, decoded once and encoded once per rung.

Each output is retried on its own; its state changes are reported to ``on_event``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.fanout import Fanout, Feed, Tag
from ingest.flv import TAG_VIDEO
from ingest.hls import DateRange, Variant, render_master
from ingest.outputs.base import Output, OutputState, StateListener
from ingest.outputs.hls import HlsOutput, LadderOutput, Rendition, Rung, write_atomic
from ingest.outputs.ts_hls import SourceHlsOutput

__all__ = ["DestinationSpec", "Pipeline", "PipelineConfig", "SessionInfo", "StreamStats"]

log = logging.getLogger("livebase.ingest.pipeline")
EventSink = Callable[[str, dict[str, Any]], None]
OutputFactory = Callable[
    ["DestinationSpec", str, Feed, StateListener, Callable[[], list[Tag]]], Output
]
"""Builds the output for a destination: (spec, output name, its feed, state listener, the
current codec headers for a reconnect)."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    data_dir: Path
    ffmpeg: str
    segment_seconds: float = 2.0
    window: int = 6
    ladder: tuple[Rung, ...] = ()
    stats_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: int
    base: str
    room: str
    started_at: datetime

    @property
    def hls_dir(self) -> str:
        return f"{self.base}/{self.room}/{self.session_id}"


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """A destination as the pipeline needs it; ``stream_key`` is a secret, never logged."""

    id: int
    name: str
    protocol: str
    url: str
    stream_key: str = field(repr=False)


@dataclass(slots=True)
class StreamStats:
    """Ingest health over the last interval: bitrate, frame rate, keyframe interval."""

    started: float = field(default_factory=time.monotonic)
    bytes: int = 0
    video_frames: int = 0
    keyframes: list[int] = field(default_factory=list)

    def add(self, kind: int, timestamp: int, size: int, keyframe: bool) -> None:
        self.bytes += size
        if kind == TAG_VIDEO:
            self.video_frames += 1
            if keyframe:
                self.keyframes.append(timestamp)

    def report(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        gaps = [b - a for a, b in zip(self.keyframes, self.keyframes[1:], strict=False)]
        return {
            "bitrate_kbps": round(self.bytes * 8 / elapsed / 1000, 1),
            "fps": round(self.video_frames / elapsed, 2),
            "keyframe_interval_s": round(sum(gaps) / len(gaps) / 1000, 2) if gaps else None,
        }


class Pipeline:
    def __init__(
        self,
        session: SessionInfo,
        config: PipelineConfig,
        destination_output: OutputFactory,
        on_event: EventSink,
        pins: Callable[[], Sequence[DateRange]] = list,
    ) -> None:
        self.session = session
        self.config = config
        self.fanout = Fanout()
        self.outputs: dict[str, Output] = {}
        self.destinations: dict[int, DestinationSpec] = {}
        self._destination_output = destination_output
        self._on_event = on_event
        self._pins = pins
        self.root = config.data_dir / "hls" / session.hls_dir
        self.renditions: list[Rendition] = []
        self.stats = StreamStats()
        self.first_segment_at: float | None = None
        self.publish_started: float | None = None

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, destinations: Sequence[DestinationSpec]) -> None:
        origin = self.session.started_at
        source = Rendition(
            self.root / "source", origin, self.config.window, self._pins, self._segment_done
        )
        self.renditions.append(source)
        self._add(
            SourceHlsOutput(
                "hls",
                self.fanout.attach("hls"),
                self.config.ffmpeg,
                source,
                self.config.segment_seconds,
                self._state_changed,
            )
        )
        if self.config.ladder:
            rungs = list(self.config.ladder)
            ladder = [
                Rendition(self.root / r.name, origin, self.config.window, self._pins) for r in rungs
            ]
            self.renditions += ladder
            self._add(
                LadderOutput(
                    "ladder",
                    self.fanout.attach("ladder"),
                    self.config.ffmpeg,
                    rungs,
                    ladder,
                    self.config.segment_seconds,
                    self._state_changed,
                )
            )
        self._write_master()
        for spec in destinations:
            self._start_destination(spec)

    def _add(self, output: Output) -> None:
        self.outputs[output.name] = output
        output.start()

    def begin_publish(self) -> None:
        """A publish starts; after the first, an encoder reconnect: outputs carry on. The
        stats interval starts with it, so that the first report, one interval later, knows
        the stream's codecs (from a pipeline made long before the publish, the first frame
        would otherwise report at once, before any codec was known)."""
        self.publish_started = time.monotonic()
        self.stats = StreamStats()
        self.fanout.begin_publish()

    def push(self, kind: int, timestamp: int, payload: bytes) -> None:
        tag = self.fanout.push(kind, timestamp, payload)
        if tag is None:
            return
        self.stats.add(kind, tag.timestamp, len(payload), tag.keyframe)
        if time.monotonic() - self.stats.started >= self.config.stats_seconds:
            self._on_event(
                "ingest.stats",
                {
                    **self.stats.report(),
                    "video_codec": self.fanout.source.video_codec,
                    "audio_codec": self.fanout.source.audio_codec,
                    "dropped": {n: f.dropped for n, f in self.fanout.feeds.items() if f.dropped},
                },
            )
            self.stats = StreamStats()

    async def stop(self) -> None:
        # HLS and the recording finish their last segment; relays just end.
        await asyncio.gather(
            *(
                output.finish() if isinstance(output, HlsOutput | LadderOutput) else output.stop()
                for output in self.outputs.values()
            )
        )
        for rendition in self.renditions:
            rendition.end()
        self.outputs.clear()

    # --- destinations -------------------------------------------------------------------------

    def _start_destination(self, spec: DestinationSpec) -> None:
        name = f"destination-{spec.id}"
        self.destinations[spec.id] = spec
        output = self._destination_output(
            spec, name, self.fanout.attach(name), self._state_changed, self.fanout.source.init_tags
        )
        self._add(output)

    async def set_destinations(self, specs: Sequence[DestinationSpec]) -> None:
        """Apply the session's current destinations while live: add, replace, remove."""
        wanted = {s.id: s for s in specs}
        for dest_id, old in list(self.destinations.items()):
            if wanted.get(dest_id) != old:
                await self._stop_destination(dest_id)
        for dest_id, spec in wanted.items():
            if dest_id not in self.destinations:
                self._start_destination(spec)

    async def _stop_destination(self, dest_id: int) -> None:
        name = f"destination-{dest_id}"
        output = self.outputs.pop(name, None)
        self.fanout.detach(name)
        self.destinations.pop(dest_id, None)
        if output is not None:
            await output.stop()

    def destination_states(self) -> dict[int, tuple[OutputState, str]]:
        out = {}
        for dest_id in self.destinations:
            output = self.outputs.get(f"destination-{dest_id}")
            if output is not None:
                out[dest_id] = (output.state, output.last_error)
        return out

    # --- reporting ----------------------------------------------------------------------------

    def _state_changed(self, output: Output) -> None:
        if output.name.startswith("destination-"):
            dest_id = int(output.name.split("-", 1)[1])
            self._on_event(
                "destination.state",
                {
                    "destination_id": dest_id,
                    "state": output.state.value,
                    "error": output.last_error,
                },
            )
        elif output.state in (OutputState.RETRYING, OutputState.FAILED):
            self._on_event(
                "output.state",
                {
                    "output": output.name,
                    "state": output.state.value,
                    "error": output.last_error,
                },
            )

    def _segment_done(self, rendition: str, segment: object) -> None:
        if self.first_segment_at is None:
            self.first_segment_at = time.monotonic()
            log.info("session %s: first HLS segment ready", self.session.session_id)

    def _write_master(self) -> None:
        variants = [Variant("source/index.m3u8", 6_000_000, name="source")]
        for rung in self.config.ladder:
            variants.append(
                Variant(
                    f"{rung.name}/index.m3u8",
                    (rung.video_kbps + rung.audio_kbps) * 1000,
                    name=rung.name,
                )
            )
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / "master.m3u8", render_master(variants))
