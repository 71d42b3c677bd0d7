"""FLV tag bodies we build, byte for byte against FFmpeg's FLV muxer and the documented values.

The H.264 comes from libx264 on the spot (as Annex B, the way WebRTC delivers it) and is
remuxed by FFmpeg into FLV; what we build from the same NAL units must equal FFmpeg's tags.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest
from media import FFMPEG, codecs

from ingest.flv import TAG_AUDIO, TAG_VIDEO, encode_tag, file_header, iter_tags
from ingest.flv_build import (
    aac_audio_specific_config,
    aac_raw_tag,
    aac_sequence_header,
    avc_decoder_configuration_record,
    avc_sequence_header,
    avc_video_tag,
    nal_type,
)
from ingest.whip.audio import OpusToAac
from ingest.whip.h264 import split_annexb


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def encode(tmp: Path, profile: str, pix_fmt: str) -> tuple[Path, Path]:
    """One second of libx264 as Annex B, and FFmpeg's own FLV of exactly those bytes."""
    annexb, flv = tmp / f"{profile}.h264", tmp / f"{profile}.flv"
    base = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [
            *base,
            *("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-t", "1"),
            *("-c:v", "libx264", "-profile:v", profile, "-pix_fmt", pix_fmt, "-bf", "0"),
            *("-g", "10", "-f", "h264", str(annexb)),
        ],
        check=True,
        timeout=60,
    )
    subprocess.run([*base, "-i", str(annexb), "-c", "copy", "-f", "flv", str(flv)], timeout=60)
    return annexb, flv


def access_units(annexb: Path) -> list[bytes]:
    with av.open(str(annexb)) as container:
        return [bytes(p) for p in container.demux() if p.size]


PROFILES = [
    ("baseline", "yuv420p", "42c0", ""),  # Baseline, Main: no extension fields
    ("main", "yuv420p", "4d40", ""),
    ("high", "yuv420p", "6400", "fdf8f800"),  # 4:2:0, 8-bit
    ("high10", "yuv420p10le", "6e00", "fdfafa00"),  # 10-bit luma and chroma
    ("high444", "yuv444p", "f400", "fff8f800"),  # 4:4:4 (chroma_format_idc 3)
]


@pytest.mark.parametrize(("profile", "pix_fmt", "head", "extension"), PROFILES)
def test_avc_sequence_header_equals_ffmpegs(
    tmp_path: Path, profile: str, pix_fmt: str, head: str, extension: str
) -> None:
    annexb, flv = encode(tmp_path, profile, pix_fmt)
    nals = split_annexb(annexb.read_bytes())
    sps = next(n for n in nals if nal_type(n) == 7)
    pps = [n for n in nals if nal_type(n) == 8][:1]
    record = avc_decoder_configuration_record(sps, pps)
    theirs = next(t for t in iter_tags(flv.read_bytes()) if t.tag_type == TAG_VIDEO)
    assert avc_sequence_header(record) == theirs.payload
    assert record[:3].hex() == "01" + head
    assert record.endswith(h(extension)) and (extension or record.endswith(pps[0]))


@pytest.mark.parametrize(("profile", "pix_fmt"), [("baseline", "yuv420p"), ("high", "yuv420p")])
def test_avc_video_tags_equal_ffmpegs(tmp_path: Path, profile: str, pix_fmt: str) -> None:
    annexb, flv = encode(tmp_path, profile, pix_fmt)
    # AVCPacketType 1 only: FFmpeg also writes the sequence header and an end-of-sequence tag.
    theirs = [
        t.payload
        for t in iter_tags(flv.read_bytes())
        if t.tag_type == TAG_VIDEO and t.payload[1] == 1
    ]
    units = access_units(annexb)
    assert len(units) == len(theirs) == 30
    ours = [
        avc_video_tag(split_annexb(au), keyframe=any(nal_type(n) == 5 for n in split_annexb(au)))
        for au in units
    ]
    assert ours == theirs
    assert sum(tag[0] == 0x17 for tag in ours) == 3  # -g 10: keyframes at 0, 10, 20


def test_avc_video_tag_layout() -> None:
    nals = [h("65 8888"), h("06 05")]
    assert avc_video_tag(nals, keyframe=True) == h("17 01 000000 00000003 658888 00000002 0605")
    assert avc_video_tag([h("41 9a")], keyframe=False, composition_time=-1) == h(
        "27 01 ffffff 00000002 419a"
    )


@pytest.mark.parametrize(
    ("rate", "channels", "expected"),
    [
        (48000, 2, "1190"),  # the configuration every WebRTC-to-RTMP relay sends
        (44100, 2, "1210"),
        (48000, 1, "1188"),
        (8000, 1, "1588"),
        (7350, 2, "1610"),
    ],
)
def test_aac_audio_specific_config_documented_values(
    rate: int, channels: int, expected: str
) -> None:
    assert aac_audio_specific_config(rate, channels).hex() == expected


def test_aac_audio_specific_config_escapes_a_rate_outside_the_table() -> None:
    # 5 bits object type 2, index 15, 24 bits of rate (50000), 4 bits channels, 3 flag bits.
    value = (((2 << 4 | 0xF) << 24 | 50000) << 4 | 2) << 3
    assert aac_audio_specific_config(50000, 2) == value.to_bytes(5, "big")


def test_aac_tags() -> None:
    assert aac_sequence_header(h("1190")) == h("af 00 1190")
    assert aac_raw_tag(h("21 1b")) == h("af 01 211b")


def test_aac_config_agrees_with_ffmpegs_encoder_and_muxer(tmp_path: Path) -> None:
    flv = tmp_path / "aac.flv"
    subprocess.run(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", "sine=sample_rate=48000", "-t", "0.5", "-ac", "2", "-c:a", "aac"),
            str(flv),
        ],
        check=True,
        timeout=60,
    )
    header = next(t for t in iter_tags(flv.read_bytes()) if t.tag_type == TAG_AUDIO).payload
    # FFmpeg's encoder appends the explicit "no SBR" extension (sync word 0x2b7) to the two
    # bytes every AAC-LC decoder needs; the two bytes must be ours exactly.
    assert header[:4] == aac_sequence_header(aac_audio_specific_config(48000, 2))
    assert header[4:] in (b"", h("56e500"))
    assert OpusToAac().config == aac_audio_specific_config(48000, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: avc_decoder_configuration_record(h("68 ce3c80"), [h("68ce")]), "not an SPS"),
        (lambda: avc_decoder_configuration_record(h("67 42c00b ab"), []), "at least one PPS"),
        (lambda: avc_decoder_configuration_record(h("67 640033"), [h("68ce")]), "SPS ends"),
        (lambda: avc_video_tag([], keyframe=True, composition_time=1 << 23), "24 bits"),
        (lambda: aac_audio_specific_config(48000, 0), "no AAC channel"),
        (lambda: aac_audio_specific_config(48000, 2, object_type=31), "escape"),
    ],
)
def test_bad_input_is_refused_with_a_precise_message(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


def test_built_flv_decodes_in_ffmpeg(tmp_path: Path) -> None:
    """Our tags alone (no FFmpeg muxer) make an FLV that FFmpeg decodes without a warning."""
    annexb, _flv = encode(tmp_path, "high", "yuv420p")
    units = access_units(annexb)
    nals = split_annexb(units[0])
    record = avc_decoder_configuration_record(
        next(n for n in nals if nal_type(n) == 7), [n for n in nals if nal_type(n) == 8]
    )
    out = bytearray(file_header())
    out += encode_tag(TAG_VIDEO, 0, avc_sequence_header(record))
    out += encode_tag(TAG_AUDIO, 0, aac_sequence_header(aac_audio_specific_config(48000, 2)))
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "fltp"
    encoder.open()
    audio: list[tuple[int, bytes]] = []
    for i in range(47):  # one second of silence in 1024-sample frames
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, i * 1024
        audio += [(max(p.pts or 0, 0) * 1000 // 48000, bytes(p)) for p in encoder.encode(frame)]
    tags = [(TAG_AUDIO, ms, aac_raw_tag(data)) for ms, data in audio]
    for i, au in enumerate(units):
        units_nals = [n for n in split_annexb(au) if nal_type(n) not in (7, 8)]
        key = any(nal_type(n) == 5 for n in units_nals)
        tags.append((TAG_VIDEO, i * 1000 // 30, avc_video_tag(units_nals, keyframe=key)))
    for kind, ms, payload in sorted(tags, key=lambda t: t[1]):
        out += encode_tag(kind, ms, payload)
    built = tmp_path / "built.flv"
    built.write_bytes(bytes(out))
    check = subprocess.run(
        [FFMPEG, "-hide_banner", "-v", "warning", "-i", str(built), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and check.stderr == "", check.stderr
    assert codecs(built) == {"h264", "aac"}
