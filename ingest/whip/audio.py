"""Opus from WebRTC to AAC for FLV: decode once, encode once, keep the sample clock. Sync.

FLV and RTMP platforms take AAC, WebRTC sends Opus (RFC 7587), so audio is the one thing an
ingest relay must transcode. Opus always runs on a 48 kHz RTP clock, so a packet's RTP
position is its sample position: gaps (loss, DTX silence) are filled with silence to keep
audio in step with video, and each AAC frame is stamped with the samples it starts at.
Blocking CPU work: callers run ``feed`` off the event loop.
"""

from __future__ import annotations

import fractions
import logging
from dataclasses import dataclass
from typing import Final

import av
import av.error

from ingest.flv_build import aac_audio_specific_config

__all__ = ["SAMPLE_RATE", "AacFrame", "OpusToAac"]

log = logging.getLogger("livebase.ingest.whip")

SAMPLE_RATE: Final = 48000
CHANNELS: Final = 2
AAC_FRAME: Final = 1024
# Silence longer than this is not filled: the stream paused; the AAC clock jumps instead.
_MAX_FILL: Final = 2 * SAMPLE_RATE
_TIME_BASE: Final = fractions.Fraction(1, SAMPLE_RATE)


@dataclass(frozen=True, slots=True)
class AacFrame:
    pts: int  # in samples on the input's RTP clock; the first frames carry encoder priming
    data: bytes  # one raw AAC frame (no ADTS header)


class OpusToAac:
    def __init__(self, bit_rate: int = 128_000) -> None:
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = SAMPLE_RATE
        self._decoder.layout = "stereo"
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        self._fifo = av.AudioFifo()
        self._encoder = av.CodecContext.create("aac", "w")
        self._encoder.sample_rate = SAMPLE_RATE
        self._encoder.layout = "stereo"
        self._encoder.format = "fltp"
        self._encoder.bit_rate = bit_rate
        self._encoder.time_base = _TIME_BASE
        self._encoder.open()
        self._next: int | None = None  # the input position the next packet should start at
        self._out = 0  # the position of the next sample handed to the encoder
        self.bad_packets = 0

    @property
    def config(self) -> bytes:
        """The AudioSpecificConfig of what ``feed`` produces (AAC-LC, 48 kHz, stereo)."""
        return aac_audio_specific_config(SAMPLE_RATE, CHANNELS)

    def feed(self, packet: bytes, position: int) -> list[AacFrame]:
        """One Opus packet starting at sample ``position``; the AAC frames now complete."""
        if self._next is None:
            self._next = self._out = position
        gap = position - self._next
        if gap < 0:
            return []  # a late duplicate: its samples are already written
        if gap > _MAX_FILL:
            self._out += gap - _MAX_FILL
            gap = _MAX_FILL
        if gap:
            self._write(self._silence(gap))
        try:
            decoded = self._decoder.decode(av.Packet(packet))
        except av.error.FFmpegError as exc:
            # Counted as lost: the next packet's gap turns it into silence.
            self.bad_packets += 1
            log.debug("an Opus packet could not be decoded: %s", exc)
            self._next = position
            return self._drain()
        samples = 0
        for frame in decoded:
            for out in self._resampler.resample(frame):
                samples += out.samples
                self._write(out)
        self._next = position + samples
        return self._drain()

    def flush(self) -> list[AacFrame]:
        """The frames still inside the encoder, at the end of the stream."""
        frames = self._drain()
        return frames + [AacFrame(p.pts or 0, bytes(p)) for p in self._encoder.encode(None)]

    @staticmethod
    def _silence(samples: int) -> av.AudioFrame:
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = SAMPLE_RATE
        return frame

    def _write(self, frame: av.AudioFrame) -> None:
        frame.pts = None  # the FIFO would check continuity; positions are kept here instead
        self._fifo.write(frame)

    def _drain(self) -> list[AacFrame]:
        out: list[AacFrame] = []
        while self._fifo.samples >= AAC_FRAME:
            frame = self._fifo.read(AAC_FRAME)
            if frame is None:
                break
            frame.pts = self._out
            frame.time_base = _TIME_BASE
            self._out += AAC_FRAME
            for packet in self._encoder.encode(frame):
                out.append(AacFrame(packet.pts if packet.pts is not None else 0, bytes(packet)))
        return out
