"""FLV tag bodies built from codec data: what an ingest that is not RTMP hands the pipeline.

Pure and synchronous. `ingest.flv` reads tags; this module writes the two codec pairs every
FLV consumer understands: AVC (a sequence header holding the AVCDecoderConfigurationRecord of
ISO/IEC 14496-15, then length-prefixed NAL units) and AAC (a sequence header holding the
AudioSpecificConfig of ISO/IEC 14496-3, then raw frames). The bytes match what FFmpeg's FLV
muxer writes for the same stream, so every output sees the same thing as from an RTMP encoder.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

__all__ = [
    "AAC_SAMPLE_RATES",
    "NAL_IDR",
    "NAL_PPS",
    "NAL_SPS",
    "aac_audio_specific_config",
    "aac_raw_tag",
    "aac_sequence_header",
    "avc_decoder_configuration_record",
    "avc_sequence_header",
    "avc_video_tag",
    "nal_type",
]

NAL_IDR: Final = 5
NAL_SPS: Final = 7
NAL_PPS: Final = 8

# FLV video tag byte 0: frame type (1 key, 2 inter) << 4 | codec id 7 (AVC).
_AVC_KEY: Final = 0x17
_AVC_INTER: Final = 0x27
# FLV audio tag byte 0 for AAC is always 0xAF (format 10, "44 kHz", 16-bit, stereo): the real
# rate and layout live in the AudioSpecificConfig, and FLV readers ignore these bits for AAC.
_AAC: Final = 0xAF

# ISO/IEC 14496-3 table 1.18, samplingFrequencyIndex 0..12.
AAC_SAMPLE_RATES: Final = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
_AAC_LC: Final = 2
# Profiles whose SPS carries chroma_format_idc and bit depths (H.264 7.3.2.1.1), and whose
# configuration record must repeat them (ISO/IEC 14496-15 5.3.3.1.2). FFmpeg writes the
# extension for every profile other than Baseline, Main and Extended.
_HIGH_SPS_PROFILES: Final = frozenset(
    (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)
)
_NO_EXTENSION_PROFILES: Final = frozenset((66, 77, 88))

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else -1


class _Bits:
    """An RBSP bit reader (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._pos >> 3
        if byte >= len(self._data):
            raise ValueError("SPS ends before its chroma format and bit depth fields")
        value = (self._data[byte] >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("SPS holds an Exp-Golomb code longer than 32 bits")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return (1 << zeros) - 1 + value


def _rbsp(nal: bytes) -> bytes:
    """The NAL payload without emulation prevention bytes (00 00 03 -> 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _sps_format(sps: bytes) -> tuple[int, int, int]:
    """(chroma_format_idc, bit_depth_luma_minus8, bit_depth_chroma_minus8) of an SPS."""
    if sps[1] not in _HIGH_SPS_PROFILES:
        return 1, 0, 0  # the values the standard implies when the SPS omits them
    bits = _Bits(_rbsp(sps[4:]))
    bits.ue()  # seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3:
        bits.bit()  # separate_colour_plane_flag
    return chroma, bits.ue(), bits.ue()


def avc_decoder_configuration_record(sps: bytes, pps: Sequence[bytes]) -> bytes:
    """The AVCDecoderConfigurationRecord for one SPS and its PPSs (NAL units with their
    one-byte header, no start codes), with 4-byte NAL lengths as every FLV writer uses."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise ValueError(f"not an SPS NAL unit: {sps[:4].hex() or '(empty)'}")
    if not pps or any(nal_type(p) != NAL_PPS for p in pps):
        raise ValueError("an AVC configuration needs at least one PPS NAL unit, and only PPSs")
    profile = sps[1]
    out = bytearray((1, profile, sps[2], sps[3], 0xFC | 3, 0xE0 | 1))
    out += _U16.pack(len(sps)) + sps
    out.append(len(pps))
    for nal in pps:
        out += _U16.pack(len(nal)) + nal
    if profile not in _NO_EXTENSION_PROFILES:
        chroma, luma_depth, chroma_depth = _sps_format(sps)
        out += bytes((0xFC | chroma, 0xF8 | luma_depth, 0xF8 | chroma_depth, 0))
    return bytes(out)


def avc_sequence_header(record: bytes) -> bytes:
    """The video tag body announcing an AVC configuration (AVCPacketType 0)."""
    return bytes((_AVC_KEY, 0, 0, 0, 0)) + record


def avc_video_tag(nalus: Sequence[bytes], *, keyframe: bool, composition_time: int = 0) -> bytes:
    """The video tag body of one access unit (AVCPacketType 1): each NAL unit prefixed with
    its 4-byte length. ``composition_time`` is PTS - DTS in ms (0 without B-frames)."""
    if not -(1 << 23) <= composition_time < 1 << 23:
        raise ValueError(f"composition time {composition_time} ms does not fit 24 bits")
    head = bytes((_AVC_KEY if keyframe else _AVC_INTER, 1)) + (
        composition_time & 0xFFFFFF
    ).to_bytes(3, "big")
    return head + b"".join(_U32.pack(len(nal)) + nal for nal in nalus)


def aac_audio_specific_config(sample_rate: int, channels: int, object_type: int = _AAC_LC) -> bytes:
    """The AudioSpecificConfig of a plain AAC stream (no SBR/PS signalling)."""
    if not 1 <= object_type <= 30:
        raise ValueError(f"audio object type {object_type} needs the escape form; not supported")
    if not 1 <= channels <= 7:
        raise ValueError(f"{channels} channels have no AAC channel configuration")
    bits = object_type
    if sample_rate in AAC_SAMPLE_RATES:
        bits = (bits << 4) | AAC_SAMPLE_RATES.index(sample_rate)
        size = 16
    else:
        if not 0 < sample_rate < 1 << 24:
            raise ValueError(f"sample rate {sample_rate} does not fit 24 bits")
        bits = (((bits << 4) | 0xF) << 24) | sample_rate
        size = 40
    bits = (bits << 4) | channels
    bits <<= 3  # frameLengthFlag, dependsOnCoreCoder, extensionFlag: all 0
    return bits.to_bytes(size // 8, "big")


def aac_sequence_header(config: bytes) -> bytes:
    """The audio tag body announcing an AAC configuration (AACPacketType 0)."""
    return bytes((_AAC, 0)) + config


def aac_raw_tag(frame: bytes) -> bytes:
    """The audio tag body of one raw AAC frame (AACPacketType 1, no ADTS header)."""
    return bytes((_AAC, 1)) + frame
