"""FLV: file header and tags built from RTMP messages, and the codec headers inside tags.

Pure and synchronous. RTMP audio, video and data message bodies are FLV tag bodies, so muxing
is framing only. The header parsers tell keyframes and sequence headers apart for legacy FLV
(AVC, AAC) and for Enhanced RTMP, where a FourCC names the codec (HEVC, AV1, VP9 from OBS 29.1
and ffmpeg 6.1 onwards). Only headers are read; codec payloads pass through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "FILE_HEADER_SIZE",
    "TAG_AUDIO",
    "TAG_SCRIPT",
    "TAG_VIDEO",
    "AudioTagInfo",
    "FlvError",
    "FlvTag",
    "MediaMessage",
    "VideoTagInfo",
    "encode_tag",
    "file_header",
    "iter_tags",
    "message_to_tag",
    "parse_audio_tag",
    "parse_video_tag",
    "strip_set_data_frame",
]

TAG_AUDIO: Final = 8
TAG_VIDEO: Final = 9
TAG_SCRIPT: Final = 18
FILE_HEADER_SIZE: Final = 13  # the 9-byte header plus PreviousTagSize0
_TAG_HEADER_SIZE: Final = 11

# The AMF0 string "@setDataFrame" exactly as encoders write it; matching bytes avoids decoding
# and re-encoding metadata, which could change it.
_SET_DATA_FRAME: Final = b"\x02\x00\x0d@setDataFrame"

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")

# Legacy FLV video codec ids. 12 (HEVC) and 13 (AV1) are the pre-Enhanced-RTMP extensions
# that Chinese CDNs and older ffmpeg builds still send; they share the AVC packet layout.
_LEGACY_VIDEO: Final = {
    2: "h263",
    3: "screen",
    4: "vp6",
    5: "vp6a",
    6: "screen2",
    7: "avc1",
    12: "hvc1",
    13: "av01",
}
_AVC_LAYOUT: Final = frozenset((7, 12, 13))
_LEGACY_AUDIO: Final = {2: ".mp3", 3: "lpcm", 7: "alaw", 8: "ulaw", 10: "mp4a", 11: "speex"}

FRAME_KEY: Final = 1
FRAME_COMMAND: Final = 5
# Enhanced RTMP packet types (veovera enhanced-rtmp v2).
VIDEO_SEQUENCE_START: Final = 0
VIDEO_CODED_FRAMES: Final = 1
VIDEO_SEQUENCE_END: Final = 2
VIDEO_CODED_FRAMES_X: Final = 3
VIDEO_METADATA: Final = 4
VIDEO_MPEG2TS_SEQUENCE_START: Final = 5
VIDEO_MULTITRACK: Final = 6
PACKET_MOD_EX: Final = 7
AUDIO_EX_HEADER: Final = 9
AUDIO_SEQUENCE_START: Final = 0
AUDIO_MULTITRACK: Final = 5
MANY_TRACKS_MANY_CODECS: Final = 2


class FlvError(ValueError):
    """Malformed FLV framing or tag header."""


class MediaMessage(Protocol):
    """What an RTMP message offers; declared here so FLV does not depend on the RTMP package."""

    @property
    def type_id(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def payload(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FlvTag:
    tag_type: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class VideoTagInfo:
    """What a video tag carries. `is_keyframe` means a coded keyframe, never a sequence header."""

    codec: str  # FourCC ("avc1", "hvc1", "av01", "vp09"), or a legacy name; "" for commands
    enhanced: bool
    frame_type: int
    packet_type: int  # AVCPacketType or Enhanced VideoPacketType; -1 if the codec has none
    is_sequence_header: bool
    is_keyframe: bool
    composition_time: int = 0
    multitrack: bool = False


@dataclass(frozen=True, slots=True)
class AudioTagInfo:
    codec: str  # "mp4a" for AAC, a FourCC such as "Opus" for Enhanced RTMP audio
    enhanced: bool
    packet_type: int  # AACPacketType or Enhanced AudioPacketType; -1 if the codec has none
    is_sequence_header: bool
    multitrack: bool = False


def file_header(*, has_audio: bool = True, has_video: bool = True) -> bytes:
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes((flags,)) + _U32.pack(9) + _U32.pack(0)


def encode_tag(tag_type: int, timestamp: int, payload: bytes) -> bytes:
    """One tag plus its trailing PreviousTagSize."""
    size = len(payload)
    if size > 0xFFFFFF:
        raise FlvError(f"tag body of {size} bytes does not fit the 24-bit size field")
    timestamp &= 0xFFFFFFFF
    header = (
        bytes((tag_type,))
        + size.to_bytes(3, "big")
        + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        + bytes((timestamp >> 24, 0, 0, 0))
    )
    return header + payload + _U32.pack(_TAG_HEADER_SIZE + size)


def strip_set_data_frame(payload: bytes) -> bytes:
    """`@setDataFrame` asks the server to store what follows; files hold only what follows."""
    if payload.startswith(_SET_DATA_FRAME):
        return payload[len(_SET_DATA_FRAME) :]
    return payload


def message_to_tag(message: MediaMessage) -> bytes | None:
    """The FLV tag for an audio, video or AMF0 data message; None for anything else.

    RTMP message type ids for these equal the FLV tag types.
    """
    if message.type_id in (TAG_AUDIO, TAG_VIDEO):
        return encode_tag(message.type_id, message.timestamp, message.payload)
    if message.type_id == TAG_SCRIPT:
        return encode_tag(TAG_SCRIPT, message.timestamp, strip_set_data_frame(message.payload))
    return None


def iter_tags(data: bytes, *, file: bool = True) -> Iterator[FlvTag]:
    """Tags of an FLV file, or with `file=False` of a bare tag sequence such as an RTMP
    Aggregate message body; a truncated tag raises."""
    offset = 0
    if file:
        if not data.startswith(b"FLV"):
            raise FlvError("missing FLV signature")
        offset = FILE_HEADER_SIZE
    view = memoryview(data)
    end = len(data)
    while offset < end:
        if offset + _TAG_HEADER_SIZE > end:
            raise FlvError(f"truncated tag header at offset {offset}")
        size = _U32.unpack_from(view, offset)[0] & 0xFFFFFF
        stamp = _U32.unpack_from(view, offset + 4)[0]
        timestamp = (stamp >> 8) | ((stamp & 0xFF) << 24)
        body = offset + _TAG_HEADER_SIZE
        if body + size + 4 > end:
            raise FlvError(f"truncated tag at offset {offset}: body of {size} bytes")
        (back,) = _U32.unpack_from(view, body + size)
        if back != _TAG_HEADER_SIZE + size:
            raise FlvError(
                f"previous tag size {back} at offset {body + size} does not match "
                f"tag size {_TAG_HEADER_SIZE + size}"
            )
        yield FlvTag(data[offset] & 0x1F, timestamp, bytes(view[body : body + size]))
        offset = body + size + 4


def _need(payload: bytes, size: int, what: str) -> None:
    if len(payload) < size:
        raise FlvError(f"{what} of {len(payload)} bytes is too short for its header (need {size})")


def _si24(payload: bytes, pos: int) -> int:
    value = int.from_bytes(payload[pos : pos + 3], "big")
    return value - 0x1000000 if value & 0x800000 else value


def _fourcc(payload: bytes, pos: int, what: str) -> str:
    _need(payload, pos + 4, what)
    return payload[pos : pos + 4].decode("latin-1")


def _skip_mod_ex(payload: bytes, pos: int, packet_type: int, what: str) -> tuple[int, int]:
    """Skip ModEx modifiers (enhanced-rtmp v2), returning the real packet type and position."""
    while packet_type == PACKET_MOD_EX:
        _need(payload, pos + 1, what)
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            _need(payload, pos + 2, what)
            size = _U16.unpack_from(payload, pos)[0] + 1
            pos += 2
        _need(payload, pos + size + 1, what)
        pos += size
        packet_type = payload[pos] & 0x0F
        pos += 1
    return packet_type, pos


def parse_video_tag(payload: bytes) -> VideoTagInfo:
    _need(payload, 1, "video tag")
    b0 = payload[0]
    if not b0 & 0x80:
        frame_type, codec_id = b0 >> 4, b0 & 0x0F
        codec = _LEGACY_VIDEO.get(codec_id, f"codec-{codec_id}")
        if codec_id not in _AVC_LAYOUT:
            return VideoTagInfo(codec, False, frame_type, -1, False, frame_type == FRAME_KEY)
        _need(payload, 5, f"{codec} video tag")
        packet_type = payload[1]
        return VideoTagInfo(
            codec,
            False,
            frame_type,
            packet_type,
            is_sequence_header=packet_type == 0,
            is_keyframe=frame_type == FRAME_KEY and packet_type == 1,
            composition_time=_si24(payload, 2),
        )

    what = "enhanced video tag"
    frame_type = (b0 >> 4) & 0x07
    packet_type, pos = _skip_mod_ex(payload, 1, b0 & 0x0F, what)
    if frame_type == FRAME_COMMAND and packet_type != VIDEO_METADATA:
        # A command (seek start/end) carries no FourCC and no picture.
        return VideoTagInfo("", True, frame_type, packet_type, False, False)
    multitrack = packet_type == VIDEO_MULTITRACK
    if multitrack:
        _need(payload, pos + 1, what)
        multitrack_type, packet_type = payload[pos] >> 4, payload[pos] & 0x0F
        pos += 1
        # With one codec per track the FourCC leads each track; report the first one.
        codec = _fourcc(payload, pos, what)
        if multitrack_type != MANY_TRACKS_MANY_CODECS:
            pos += 4
    else:
        codec = _fourcc(payload, pos, what)
        pos += 4
    composition_time = 0
    if packet_type == VIDEO_CODED_FRAMES and not multitrack and codec in ("avc1", "hvc1"):
        _need(payload, pos + 3, what)
        composition_time = _si24(payload, pos)
    return VideoTagInfo(
        codec,
        True,
        frame_type,
        packet_type,
        is_sequence_header=packet_type in (VIDEO_SEQUENCE_START, VIDEO_MPEG2TS_SEQUENCE_START),
        is_keyframe=frame_type == FRAME_KEY
        and packet_type in (VIDEO_CODED_FRAMES, VIDEO_CODED_FRAMES_X),
        composition_time=composition_time,
        multitrack=multitrack,
    )


def parse_audio_tag(payload: bytes) -> AudioTagInfo:
    _need(payload, 1, "audio tag")
    sound_format = payload[0] >> 4
    if sound_format != AUDIO_EX_HEADER:
        codec = _LEGACY_AUDIO.get(sound_format, f"format-{sound_format}")
        if sound_format != 10:
            return AudioTagInfo(codec, False, -1, False)
        _need(payload, 2, "AAC audio tag")
        return AudioTagInfo(codec, False, payload[1], payload[1] == 0)

    what = "enhanced audio tag"
    packet_type, pos = _skip_mod_ex(payload, 1, payload[0] & 0x0F, what)
    multitrack = packet_type == AUDIO_MULTITRACK
    if multitrack:
        _need(payload, pos + 1, what)
        packet_type = payload[pos] & 0x0F
        pos += 1
    codec = _fourcc(payload, pos, what)
    return AudioTagInfo(codec, True, packet_type, packet_type == AUDIO_SEQUENCE_START, multitrack)
