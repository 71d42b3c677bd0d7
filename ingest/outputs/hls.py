"""HLS for the base's own player, and the recording: segments cut by ffmpeg, playlists ours.

``HlsOutput`` copies the source (no transcode) into MPEG-TS segments. ffmpeg reports each
finished segment on a pipe; we add it to the rendition's playlists at once: ``index.m3u8``
(the live window) and ``replay.m3u8`` (every segment: the recording, kept for replays and
clips). A new publish (an encoder reconnect) restarts ffmpeg and marks a discontinuity.

``LadderOutput`` decodes once and encodes each rung of the ladder once, in one ffmpeg.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ffmpeg

from ingest.fanout import EndOfStream, Feed, NewSource, Tag
from ingest.ffmpeg_args import compile_args, flv_stdin
from ingest.flv import TAG_SCRIPT, encode_tag, file_header
from ingest.hls import DateRange, HlsError, MediaPlaylist, Segment, parse_segment_list_line
from ingest.outputs.base import Output, OutputError, StateListener
from ingest.process import ChildProcess

__all__ = ["HlsOutput", "LadderOutput", "Rendition", "Rung", "write_atomic"]

log = logging.getLogger("livebase.ingest.hls")


def write_atomic(path: Path, text: str) -> None:
    """Players must never read half a playlist: write aside, then rename over."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Rung:
    name: str  # "720p"
    height: int
    video_kbps: int
    audio_kbps: int = 128


class Rendition:
    """The playlists of one rendition directory, fed with finished segments."""

    def __init__(
        self,
        directory: Path,
        origin: datetime,
        window: int,
        dateranges: Callable[[], Sequence[DateRange]],
        on_segment: Callable[[str, Segment], None] | None = None,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.origin = origin
        self.playlist = MediaPlaylist(window)
        self.dateranges = dateranges
        self.pending_discontinuity = False
        self.on_segment = on_segment

    @property
    def next_number(self) -> int:
        return len(self.playlist.segments)

    def add(self, line: str) -> None:
        name, start, end = parse_segment_list_line(line)
        segment = Segment(
            name, end - start, self.origin + timedelta(seconds=start), self.pending_discontinuity
        )
        self.pending_discontinuity = False
        self.playlist.add(segment)
        self.write()
        if self.on_segment:
            self.on_segment(self.dir.name, segment)

    def write(self) -> None:
        ranges = list(self.dateranges())
        if self.playlist.segments:
            write_atomic(self.dir / "index.m3u8", self.playlist.render(ranges))
        write_atomic(self.dir / "replay.m3u8", self.playlist.render(ranges, replay=True))

    def end(self) -> None:
        if not self.playlist.ended:
            self.playlist.end()
            self.write()


_BACKLOG = 1 << 20  # bytes ffmpeg has not read yet before the pump awaits it
_GATHER_SECONDS = 0.2  # how long tags gather before they are written to ffmpeg


def _flv_tag(tag: Tag) -> bytes:
    # ffmpeg reads a script tag as metadata only at time 0; later it would become a data
    # stream.
    return encode_tag(tag.kind, 0 if tag.kind == TAG_SCRIPT else tag.timestamp, tag.payload)


class _FfmpegSegmenter(Output):
    """Shared life of an ffmpeg that reads the feed as FLV and reports segments on pipes."""

    kind = "hls"

    def __init__(
        self,
        name: str,
        feed: Feed,
        ffmpeg_bin: str,
        renditions: Sequence[Rendition],
        on_state: StateListener | None = None,
    ) -> None:
        super().__init__(name, feed, on_state)
        self.ffmpeg_bin = ffmpeg_bin
        self.renditions = list(renditions)
        self.child: ChildProcess | None = None
        self._pending = bytearray()  # delivered directly, written after the current callback
        self._after_error = False

    def build(self, list_targets: Sequence[str]) -> list[str]:
        raise NotImplementedError

    async def session(self) -> None:
        if self._after_error:
            # The feed went on while ffmpeg was down: resume at the current codec headers
            # and the next keyframe. (After a new source, the feed already starts that way.)
            self.feed.rewind()
        self._after_error = True
        self._pending = bytearray()  # meant for an ffmpeg that is gone
        read_fds, write_fds = zip(*(os.pipe() for _ in self.renditions), strict=True)
        targets = [f"pipe:{fd}" for fd in write_fds]
        self.child = ChildProcess(
            self.build(targets), name=f"hls:{self.name}", stdin=True, pass_fds=write_fds
        )
        try:
            await self.child.start()
        finally:
            for fd in write_fds:
                os.close(fd)
        readers = [
            asyncio.create_task(self._segments(fd, rendition))
            for fd, rendition in zip(read_fds, self.renditions, strict=True)
        ]
        try:
            self.went_live()
            await self._pump()
            await self.child.stop(grace=10)
            await asyncio.gather(*readers)
        finally:
            for task in readers:
                task.cancel()
            await self.close()
            # Whatever comes next comes from a new ffmpeg: players must reset their decoders.
            for rendition in self.renditions:
                rendition.pending_discontinuity = True
        code = self.child.proc.returncode if self.child.proc else None
        if code not in (0, None):
            raise OutputError(
                f"ffmpeg exited with {code}: {' | '.join(self.child.last_error_lines[-2:])}"
            )
        self._after_error = False

    async def _segments(self, fd: int, rendition: Rendition) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        try:
            async for raw in reader:
                try:
                    rendition.add(raw.decode("utf-8", "replace"))
                except HlsError as exc:
                    log.warning("%s: ignored a segment report: %s", self.name, exc)
        finally:
            transport.close()

    async def _pump(self) -> None:
        """Write the feed as FLV until a new source starts (return) or ffmpeg dies (raise):
        what is queued, then, once caught up, each tag as it comes (``_deliver``)."""
        assert self.child is not None
        stdin = self.child.stdin
        stdin.write(file_header())
        try:
            while True:
                item = await self.feed.get()
                self._flush()  # what was delivered directly goes first
                if isinstance(item, NewSource | EndOfStream):
                    return
                stdin.write(_flv_tag(item))
                if stdin.transport.get_write_buffer_size() > _BACKLOG:
                    try:
                        await stdin.drain()
                    except (ConnectionResetError, BrokenPipeError) as exc:
                        raise OutputError("ffmpeg stopped reading its input") from exc
                if self.child.proc and self.child.proc.returncode is not None:
                    error = " | ".join(self.child.last_error_lines[-2:])
                    raise OutputError(f"ffmpeg exited: {error}")
                self.feed.deliver_directly(self._deliver)
        finally:
            self.feed.stop_direct()

    def _deliver(self, tag: Tag) -> bool:
        child = self.child
        if child is None or child.proc is None or child.proc.returncode is not None:
            return False
        transport = child.stdin.transport
        unread = len(self._pending) + transport.get_write_buffer_size()
        if transport.is_closing() or unread > _BACKLOG:
            return False  # queued: the pump waits for ffmpeg, or reports it gone
        # Gathered for a moment, then written at once: ffmpeg then wakes a few times a second
        # rather than for every frame (a segment waits on its keyframe anyway).
        if not self._pending:
            asyncio.get_running_loop().call_later(_GATHER_SECONDS, self._flush)
        self._pending += _flv_tag(tag)
        return True

    def _flush(self) -> None:
        if self._pending and self.child is not None and self.child.proc is not None:
            pending, self._pending = self._pending, bytearray()
            if not self.child.stdin.transport.is_closing():
                self.child.stdin.write(pending)

    async def close(self) -> None:
        if self.child is not None:
            await self.child.stop(grace=5)


def segment_options(list_target: str, start: int, seconds: float) -> dict[str, Any]:
    """MPEG-TS segments numbered from ``start``, each finished one reported on ``list_target``."""
    return {
        "f": "segment",
        "segment_format": "mpegts",
        "segment_time": seconds,
        "segment_list": list_target,
        "segment_list_type": "csv",
        "segment_start_number": start,
        "protocol_whitelist": "file,pipe",
    }


class HlsOutput(_FfmpegSegmenter):
    """The source rendition, copied (no transcode): live HLS and the recording."""

    def __init__(
        self,
        name: str,
        feed: Feed,
        ffmpeg_bin: str,
        rendition: Rendition,
        segment_seconds: float,
        on_state: StateListener | None = None,
    ) -> None:
        super().__init__(name, feed, ffmpeg_bin, [rendition], on_state)
        self.segment_seconds = segment_seconds

    def build(self, list_targets: Sequence[str]) -> list[str]:
        rendition = self.renditions[0]
        src = flv_stdin(copyts=None)
        out = ffmpeg.output(
            src["v?"],
            src["a?"],
            str(rendition.dir / "seg_%05d.ts"),
            c="copy",
            **segment_options(list_targets[0], rendition.next_number, self.segment_seconds),
        )
        return compile_args(out, self.ffmpeg_bin)


class LadderOutput(_FfmpegSegmenter):
    """Decode once, scale and encode once per rung; each rung its own rendition."""

    kind = "ladder"

    def __init__(
        self,
        name: str,
        feed: Feed,
        ffmpeg_bin: str,
        rungs: Sequence[Rung],
        renditions: Sequence[Rendition],
        segment_seconds: float,
        on_state: StateListener | None = None,
    ) -> None:
        super().__init__(name, feed, ffmpeg_bin, renditions, on_state)
        self.rungs = list(rungs)
        self.segment_seconds = segment_seconds

    def build(self, list_targets: Sequence[str]) -> list[str]:
        src = flv_stdin(copyts=None)
        video = src.video.filter_multi_output("split", len(self.rungs))
        # Keyframes on segment boundaries, so every rung cuts where the others do.
        keyframes = f"expr:gte(t,n_forced*{self.segment_seconds})"
        outputs = []
        for i, (rung, rendition) in enumerate(zip(self.rungs, self.renditions, strict=True)):
            scaled = video.stream(i).filter("scale", -2, rung.height)
            outputs.append(
                ffmpeg.output(
                    scaled,
                    src.audio,
                    str(rendition.dir / "seg_%05d.ts"),
                    vcodec="libx264",
                    preset="veryfast",
                    tune="zerolatency",
                    maxrate=f"{rung.video_kbps}k",
                    bufsize=f"{rung.video_kbps * 2}k",
                    force_key_frames=keyframes,
                    acodec="aac",
                    **{"b:v": f"{rung.video_kbps}k", "b:a": f"{rung.audio_kbps}k"},
                    **segment_options(list_targets[i], rendition.next_number, self.segment_seconds),
                )
            )
        return compile_args(ffmpeg.merge_outputs(*outputs), self.ffmpeg_bin)


def utc_origin(first_timestamp_ms: int, arrived: datetime | None = None) -> datetime:
    """Wall-clock time of stream time 0, from when a tag with that timestamp arrived."""
    return (arrived or datetime.now(UTC)) - timedelta(milliseconds=first_timestamp_ms)
