"""H.264 access units from RTP (Annex B) turned into FLV video tags, without decoding.

Pure and synchronous. WebRTC carries H.264 as NAL units (RFC 6184); aiortc's depacketizer
hands over one access unit per RTP timestamp in Annex B form (start codes). FLV wants the
parameter sets once, in a sequence header, and each picture as length-prefixed NAL units.
A relay must never hand a decoder a picture whose references it has not seen, so nothing is
sent until a keyframe (IDR) arrives with its SPS and PPS, and again after any loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ingest.flv_build import (
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    avc_decoder_configuration_record,
    avc_sequence_header,
    avc_video_tag,
    nal_type,
)

__all__ = ["H264Relay", "VideoTag", "split_annexb"]

# Access unit delimiter, end of sequence, end of stream, filler: framing that FLV does not
# carry (FFmpeg's FLV muxer and every RTMP encoder leave them out too).
_DROPPED: Final = frozenset((9, 10, 11, 12))


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream. Bytes before the first start code (the tail of
    a fragment whose start was lost) are not a NAL unit and are left out."""
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        stop = len(data) if end == -1 else end
        # A 4-byte start code leaves its leading zero at the end of the previous unit.
        while stop > begin and data[stop - 1] == 0:
            stop -= 1
        if stop > begin:
            nals.append(data[begin:stop])
        start = end
    return nals


@dataclass(frozen=True, slots=True)
class VideoTag:
    payload: bytes  # an FLV video tag body
    keyframe: bool
    header: bool = False


class H264Relay:
    """Access units in, FLV video tag bodies out; remembers the parameter sets."""

    def __init__(self) -> None:
        self.waiting_for_keyframe = True
        self.missing_parameter_sets = False  # a keyframe came without SPS/PPS ever seen
        self._sps: bytes | None = None
        self._pps: list[bytes] = []
        self._record: bytes | None = None

    def lost(self) -> None:
        """Media was lost: pictures from now until the next keyframe may reference it."""
        self.waiting_for_keyframe = True

    def feed(self, access_unit: bytes) -> list[VideoTag]:
        nals = split_annexb(access_unit)
        pps: list[bytes] = []
        picture: list[bytes] = []
        keyframe = False
        for nal in nals:
            kind = nal_type(nal)
            if kind == NAL_SPS:
                self._sps = nal
            elif kind == NAL_PPS:
                pps.append(nal)
            elif 1 <= kind <= 23 and kind not in _DROPPED:
                picture.append(nal)
                keyframe = keyframe or kind == NAL_IDR
        if pps:
            self._pps = pps
        if not picture or (self.waiting_for_keyframe and not keyframe):
            return []
        tags: list[VideoTag] = []
        if keyframe:
            if self._sps is None or not self._pps:
                self.missing_parameter_sets = True
                return []
            record = avc_decoder_configuration_record(self._sps, self._pps)
            if record != self._record:
                self._record = record
                tags.append(VideoTag(avc_sequence_header(record), keyframe=False, header=True))
            self.missing_parameter_sets = False
        self.waiting_for_keyframe = False
        tags.append(VideoTag(avc_video_tag(picture, keyframe=keyframe), keyframe=keyframe))
        return tags
