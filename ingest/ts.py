"""MPEG-TS segments from FLV H.264 + AAC, in process: pure and synchronous.

Why our own muxer: the source rendition is on the hot path of every live session, and an
ffmpeg child for it costs a process, a pipe write per tag batch and its own demux/mux: about a
quarter of a relay's CPU (see docs/benchmarks.md). H.264 + AAC (what OBS sends) needs no codec
work at all, only reframing: AVCC NAL units become Annex B with an access unit delimiter (and
SPS/PPS before each keyframe), raw AAC frames get an ADTS header, and both are cut into PES
and 188-byte TS packets. Every other codec still goes through ffmpeg.

Hot-path rules: headers are built once per PID and continuity counter, payloads are sliced
through memoryviews (the full packets of a video frame laid out by numpy in one go) and
appended to one buffer per segment; nothing loops per byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "AUDIO_PID",
    "PMT_PID",
    "VIDEO_PID",
    "AacConfig",
    "AvcConfig",
    "Finished",
    "TsError",
    "TsSegmenter",
    "crc32_mpeg",
    "is_aac_header",
    "is_avc_header",
]

PACKET: Final = 188
PAYLOAD: Final = 184
PMT_PID: Final = 0x1000
VIDEO_PID: Final = 0x100
AUDIO_PID: Final = 0x101
_STREAM_H264: Final = 0x1B
_STREAM_AAC: Final = 0x0F
# Timestamps start this far ahead of the PCR, as ffmpeg's do: the decoder buffer delay.
_PCR_DELAY: Final = 63000  # 0.7 s at 90 kHz
_PTS_OFFSET: Final = 2 * _PCR_DELAY
_WRAP: Final = (1 << 33) - 1
_START_CODE: Final = b"\x00\x00\x00\x01"
_AUD: Final = _START_CODE + b"\x09\xf0"  # access unit delimiter: any slice type
_NAL_AUD: Final = 9
_FLV_AVC: Final = 7
_FLV_AAC: Final = 10
# From this many full packets in one PES (a video frame), numpy lays them out: ≈ 4× faster
# than a loop per packet, which stays for audio frames and small video frames.
_VECTOR_PACKETS: Final = 8


class TsError(ValueError):
    """Input the muxer cannot reframe (a malformed or unsupported codec header or frame)."""


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE: Final = _crc_table()


def crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, no final xor) of PSI sections."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def is_avc_header(payload: bytes) -> bool:
    """A legacy (non-Enhanced) FLV AVC sequence header."""
    return len(payload) > 5 and payload[0] & 0x8F == _FLV_AVC and payload[1] == 0


def is_aac_header(payload: bytes) -> bool:
    return len(payload) >= 4 and payload[0] >> 4 == _FLV_AAC and payload[1] == 0


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """From an AVCDecoderConfigurationRecord: NAL length size, SPS and PPS as Annex B."""

    length_size: int
    parameter_sets: bytes

    @classmethod
    def parse(cls, record: bytes) -> AvcConfig:
        try:
            if record[0] != 1:
                raise TsError("not an AVC decoder configuration record")
            length_size = (record[4] & 3) + 1
            sets = []
            pos = 5
            for mask in (0x1F, 0xFF):  # SPS count in 5 bits, then PPS count in 8
                count = record[pos] & mask
                pos += 1
                for _ in range(count):
                    size = int.from_bytes(record[pos : pos + 2], "big")
                    unit = record[pos + 2 : pos + 2 + size]
                    if len(unit) != size:
                        raise TsError("truncated parameter set")
                    sets.append(_START_CODE + unit)
                    pos += 2 + size
        except IndexError as exc:
            raise TsError("truncated AVC decoder configuration record") from exc
        if length_size == 3:
            raise TsError("3-byte NAL lengths are not supported")
        return cls(length_size, b"".join(sets))


@dataclass(frozen=True, slots=True)
class AacConfig:
    """From an AudioSpecificConfig: the fixed part of every ADTS header."""

    profile: int  # ADTS profile = audio object type - 1
    frequency_index: int
    channels: int

    @classmethod
    def parse(cls, asc: bytes) -> AacConfig:
        if len(asc) < 2:
            raise TsError("truncated AudioSpecificConfig")
        object_type = asc[0] >> 3
        frequency_index = ((asc[0] & 7) << 1) | (asc[1] >> 7)
        channels = (asc[1] >> 3) & 0x0F
        # ADTS has two bits of profile (object types 1-4) and no explicit frequency.
        if not 1 <= object_type <= 4 or frequency_index > 12 or not 1 <= channels <= 7:
            raise TsError(f"AAC object type {object_type} cannot be carried in ADTS")
        return cls(object_type - 1, frequency_index, channels)

    def adts(self, size: int) -> bytes:
        length = size + 7
        return bytes(
            (
                0xFF,
                0xF1,  # MPEG-4, no CRC
                (self.profile << 6) | (self.frequency_index << 2) | (self.channels >> 2),
                ((self.channels & 3) << 6) | (length >> 11),
                (length >> 3) & 0xFF,
                ((length & 7) << 5) | 0x1F,
                0xFC,
            )
        )


def _timestamp(prefix: int, value: int) -> bytes:
    return bytes(
        (
            (prefix << 4) | ((value >> 29) & 0x0E) | 1,
            (value >> 22) & 0xFF,
            ((value >> 14) & 0xFE) | 1,
            (value >> 7) & 0xFF,
            ((value << 1) & 0xFE) | 1,
        )
    )


def _pcr(base: int) -> bytes:
    return bytes(
        (
            (base >> 25) & 0xFF,
            (base >> 17) & 0xFF,
            (base >> 9) & 0xFF,
            (base >> 1) & 0xFF,
            ((base & 1) << 7) | 0x7E,
            0,
        )
    )


def _adaptation(fields: bytes, size: int) -> bytes:
    """An adaptation field of ``size`` bytes in all (length byte included), padded with 0xFF."""
    if size == 1:
        return b"\x00"
    if not fields:
        fields = b"\x00"  # no flags
    return bytes((size - 1,)) + fields + b"\xff" * (size - 1 - len(fields))


def _section_packet(pid: int, section: bytes) -> list[bytes]:
    """The 16 packets (one per continuity counter) carrying one PSI section."""
    body = b"\x00" + section + crc32_mpeg(section).to_bytes(4, "big")  # pointer field first
    body += b"\xff" * (PAYLOAD - len(body))
    return [bytes((0x47, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | cc)) + body for cc in range(16)]


def _psi(has_audio: bool) -> tuple[list[bytes], list[bytes]]:
    program = bytes((0x00, 0x01, 0xE0 | (PMT_PID >> 8), PMT_PID & 0xFF))  # program 1: its PMT
    pat = b"\x00\xb0\x0d\x00\x01\xc1\x00\x00" + program
    streams = [(_STREAM_H264, VIDEO_PID)] + ([(_STREAM_AAC, AUDIO_PID)] if has_audio else [])
    entries = b"".join(bytes((kind, 0xE0 | (p >> 8), p & 0xFF, 0xF0, 0)) for kind, p in streams)
    length = 9 + len(entries) + 4
    pmt = (
        bytes((0x02, 0xB0 | (length >> 8), length & 0xFF, 0x00, 0x01, 0xC1, 0x00, 0x00))
        + bytes((0xE0 | (VIDEO_PID >> 8), VIDEO_PID & 0xFF, 0xF0, 0x00))
        + entries
    )
    return _section_packet(0, pat), _section_packet(PMT_PID, pmt)


class _Packetizer:
    """PES into TS packets of one PID, the continuity counter carried over."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cc = 0
        high, low = pid >> 8, pid & 0xFF
        self.full = [bytes((0x47, high, low, 0x10 | cc)) for cc in range(16)]
        self.full_table = np.frombuffer(b"".join(self.full), np.uint8).reshape(16, 4)
        self.start = [bytes((0x47, 0x40 | high, low, 0x30 | cc)) for cc in range(16)]
        self.start_full = [bytes((0x47, 0x40 | high, low, 0x10 | cc)) for cc in range(16)]
        self.tail = [bytes((0x47, high, low, 0x30 | cc)) for cc in range(16)]

    def write(self, out: bytearray, pes: bytes, fields: bytes = b"") -> None:
        """``fields``: adaptation field flags and data (a PCR) for the first packet."""
        cc = self.cc
        size = len(pes)
        room = PAYLOAD - 1 - len(fields) if fields else PAYLOAD
        first = min(size, room)
        if first == PAYLOAD:
            out += self.start_full[cc]
        else:
            out += self.start[cc]
            out += _adaptation(fields, PAYLOAD - first)
        view = memoryview(pes)
        out += view[:first]
        cc = (cc + 1) & 15
        count = (size - first) // PAYLOAD
        end = first + count * PAYLOAD
        if count >= _VECTOR_PACKETS:
            # A video frame: its full packets laid out at once, headers from the table.
            grid = np.empty((count, PACKET), np.uint8)
            grid[:, :4] = self.full_table[np.arange(cc, cc + count) & 15]
            grid[:, 4:] = np.frombuffer(pes, np.uint8, count * PAYLOAD, first).reshape(count, -1)
            out += grid.data
            cc = (cc + count) & 15
        else:
            full = self.full
            for pos in range(first, end, PAYLOAD):
                out += full[cc]
                out += view[pos : pos + PAYLOAD]
                cc = (cc + 1) & 15
        if end < size:
            out += self.tail[cc]
            out += _adaptation(b"", PAYLOAD - (size - end))
            out += view[end:]
            cc = (cc + 1) & 15
        self.cc = cc


@dataclass(frozen=True, slots=True)
class Finished:
    """A complete segment: its bytes and its span in stream seconds (as ffmpeg reports it)."""

    data: bytes
    start: float
    end: float


class TsSegmenter:
    """FLV H.264 (+ AAC) tag payloads in, MPEG-TS segments out, cut at the first keyframe at
    or after ``segment_ms`` from the segment's start. Timestamps are FLV milliseconds."""

    def __init__(self, avc_header: bytes, aac_header: bytes | None, segment_ms: int) -> None:
        self.avc_header = avc_header
        self.avc = AvcConfig.parse(avc_header[5:])
        self.aac = AacConfig.parse(aac_header[2:]) if aac_header is not None else None
        self.segment_ms = segment_ms
        self._pat, self._pmt = _psi(self.aac is not None)
        self._psi_cc = 0
        self._video = _Packetizer(VIDEO_PID)
        self._audio = _Packetizer(AUDIO_PID)
        self._out = bytearray()
        self._start: int | None = None  # first timestamp of the current segment
        self._last = 0  # latest timestamp written
        self._frame_ms = 33  # latest video frame interval, for the last segment's end
        self._last_video: int | None = None

    @property
    def has_audio(self) -> bool:
        return self.aac is not None

    @property
    def in_segment(self) -> bool:
        """A segment is open (it started at a keyframe and takes frames)."""
        return self._start is not None

    def set_avc(self, header: bytes) -> None:
        self.avc = AvcConfig.parse(header[5:])
        self.avc_header = header

    def set_aac(self, header: bytes) -> None:
        self.aac = AacConfig.parse(header[2:])

    def video(self, timestamp: int, payload: bytes, keyframe: bool) -> Finished | None:
        """One FLV AVC NALU tag; returns the segment it completed, if it starts a new one."""
        if len(payload) < 5 or payload[1] != 1:
            return None  # an end-of-sequence tag or a stray header: nothing to show
        finished = None
        if self._start is None:
            if not keyframe:
                return None  # a segment must start with a random-access point
            self._open(timestamp)
        elif keyframe and timestamp - self._start >= self.segment_ms:
            finished = self._close(timestamp)
            self._open(timestamp)
        if self._last_video is not None and timestamp > self._last_video:
            self._frame_ms = timestamp - self._last_video
        self._last_video = timestamp
        self._last = max(self._last, timestamp)
        cts = int.from_bytes(payload[2:5], "big", signed=True)
        dts = (timestamp * 90 + _PTS_OFFSET) & _WRAP
        pts = (dts + cts * 90) & _WRAP
        parts: list[bytes | memoryview] = [_pes_head(0xE0, pts, dts), _AUD]
        if keyframe:
            parts.append(self.avc.parameter_sets)
        _annex_b(payload, self.avc.length_size, parts)
        pcr = _pcr((timestamp * 90 + _PCR_DELAY) & _WRAP)
        self._video.write(self._out, b"".join(parts), (b"\x50" if keyframe else b"\x10") + pcr)
        return finished

    def audio(self, timestamp: int, payload: bytes) -> None:
        """One FLV AAC raw frame tag (dropped until the first keyframe opens a segment)."""
        if self.aac is None or self._start is None or len(payload) < 3 or payload[1] != 1:
            return
        self._last = max(self._last, timestamp)
        frame = memoryview(payload)[2:]
        pts = (timestamp * 90 + _PTS_OFFSET) & _WRAP
        head = _pes_head(0xC0, pts, None, 7 + len(frame))
        self._audio.write(self._out, b"".join((head, self.aac.adts(len(frame)), frame)))

    def finish(self) -> Finished | None:
        """The last, partial segment (end of stream or of this source)."""
        if self._start is None:
            return None
        finished = self._close(self._last + self._frame_ms)
        self._start = None
        return finished

    def _open(self, timestamp: int) -> None:
        self._start = timestamp
        self._out += self._pat[self._psi_cc]
        self._out += self._pmt[self._psi_cc]
        self._psi_cc = (self._psi_cc + 1) & 15

    def _close(self, end: int) -> Finished:
        assert self._start is not None
        data, self._out = bytes(self._out), bytearray()
        return Finished(data, self._start / 1000, max(end, self._start + 1) / 1000)


def _pes_head(stream_id: int, pts: int, dts: int | None, size: int = 0) -> bytes:
    """A PES header; ``size`` is the payload length (0: unbounded, allowed for video only)."""
    if dts is None or dts == pts:
        length = size + 8 if size else 0
        return (
            b"\x00\x00\x01"
            + bytes((stream_id, length >> 8, length & 0xFF, 0x80, 0x80, 5))
            + _timestamp(2, pts)
        )
    length = size + 13 if size else 0
    return (
        b"\x00\x00\x01"
        + bytes((stream_id, length >> 8, length & 0xFF, 0x80, 0xC0, 10))
        + _timestamp(3, pts)
        + _timestamp(1, dts)
    )


def _annex_b(payload: bytes, length_size: int, parts: list[bytes | memoryview]) -> None:
    """Append the NAL units of an AVCC frame (after the 5-byte FLV header) as Annex B;
    delimiters the encoder sent are dropped, ours comes first."""
    view = memoryview(payload)
    size = len(payload)
    pos = 5
    while pos < size:
        end = pos + length_size
        length = int.from_bytes(view[pos:end], "big")
        if length == 0 or end + length > size:
            raise TsError("NAL unit length runs past the frame")
        if view[end] & 0x1F != _NAL_AUD:
            parts.append(_START_CODE)
            parts.append(view[end : end + length])
        pos = end + length
