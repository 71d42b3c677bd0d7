"""One publish's media, from encoded WebRTC frames to FLV tags pushed into the pipeline.

Video passes through (``H264Relay``); audio goes Opus to AAC on a worker thread, one batch at
a time so frames stay in order. Both streams are placed on one millisecond clock that starts
at the first packet of the publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from ingest.flv import TAG_AUDIO, TAG_VIDEO
from ingest.flv_build import aac_raw_tag, aac_sequence_header
from ingest.whip.audio import SAMPLE_RATE, AacFrame, OpusToAac
from ingest.whip.h264 import H264Relay
from ingest.whip.timing import RtpTimeline

__all__ = ["MediaRelay", "Push"]

log = logging.getLogger("livebase.ingest.whip")

Push = Callable[[int, int, bytes], None]
"""Where FLV tags go: (tag type, timestamp in ms, tag body), e.g. ``IngestSink.push``."""

VIDEO_CLOCK: Final = 90000
_AUDIO_BACKLOG: Final = 250  # 5 s of 20 ms Opus packets; more means the worker is stuck


class MediaRelay:
    def __init__(self, push: Push, label: str, clock: Callable[[], float] = time.monotonic):
        self._push = push
        self.label = label
        self._clock = clock
        self._origin: float | None = None
        self.last_media = clock()
        self.video = _Video(self)
        self.audio = _Audio(self)
        self.keyframe_wanted = asyncio.Event()
        self.video_frames = 0
        self.audio_frames = 0

    def now_ms(self) -> float:
        now = self._clock()
        self.last_media = now
        if self._origin is None:
            self._origin = now
        return (now - self._origin) * 1000

    def idle_seconds(self) -> float:
        """Seconds since the last media arrived (or since the relay was made)."""
        return self._clock() - self.last_media

    def push(self, kind: int, timestamp: int, payload: bytes) -> None:
        self._push(kind, timestamp, payload)

    async def run_audio(self) -> None:
        """Transcode queued Opus packets until cancelled."""
        audio = self.audio
        transcoder = await asyncio.to_thread(OpusToAac)
        config = transcoder.config
        header_sent = False
        while True:
            batch = [await audio.queue.get()]
            while not audio.queue.empty():
                batch.append(audio.queue.get_nowait())
            frames = await asyncio.to_thread(_transcode, transcoder, batch)
            timeline = audio.timeline
            if timeline is None:
                continue
            for frame in frames:
                ms = timeline.to_ms(frame.pts)
                if not header_sent:
                    self.push(TAG_AUDIO, ms, aac_sequence_header(config))
                    header_sent = True
                self.push(TAG_AUDIO, ms, aac_raw_tag(frame.data))
                self.audio_frames += 1


def _transcode(transcoder: OpusToAac, batch: list[tuple[bytes, int]]) -> list[AacFrame]:
    frames: list[AacFrame] = []
    for packet, position in batch:
        frames += transcoder.feed(packet, position)
    return frames


class _Video:
    """Receives the video receiver's frames (see ``ingest.whip.tap.FrameSink``)."""

    def __init__(self, relay: MediaRelay) -> None:
        self._relay = relay
        self.h264 = H264Relay()
        self.timeline: RtpTimeline | None = None
        self._warned = False

    def first_packet(self, rtp_timestamp: int) -> None:
        self.timeline = RtpTimeline(VIDEO_CLOCK, rtp_timestamp, self._relay.now_ms())
        self._relay.keyframe_wanted.set()

    def frame(self, data: bytes, rtp_timestamp: int) -> None:
        relay = self._relay
        relay.now_ms()
        if self.timeline is None:
            return
        position = self.timeline.position(rtp_timestamp)
        tags = self.h264.feed(data)
        if self.h264.waiting_for_keyframe:
            relay.keyframe_wanted.set()
            if self.h264.missing_parameter_sets and not self._warned:
                self._warned = True
                log.warning("%s: keyframes arrive without SPS/PPS; no video yet", relay.label)
        if not tags:
            return
        ms = self.timeline.to_ms(position)
        for tag in tags:
            relay.push(TAG_VIDEO, ms, tag.payload)
        relay.video_frames += 1

    def lost(self) -> None:
        self.h264.lost()
        self._relay.keyframe_wanted.set()


class _Audio:
    def __init__(self, relay: MediaRelay) -> None:
        self._relay = relay
        self.timeline: RtpTimeline | None = None
        self.queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(_AUDIO_BACKLOG)
        self.dropped = 0

    def first_packet(self, rtp_timestamp: int) -> None:
        self.timeline = RtpTimeline(SAMPLE_RATE, rtp_timestamp, self._relay.now_ms())

    def frame(self, data: bytes, rtp_timestamp: int) -> None:
        self._relay.now_ms()
        if self.timeline is None:
            return
        try:
            self.queue.put_nowait((data, self.timeline.position(rtp_timestamp)))
        except asyncio.QueueFull:
            self.dropped += 1  # the gap becomes silence once the worker catches up

    def lost(self) -> None:
        """Opus needs no keyframe; a gap in positions becomes silence."""
