"""FLV framing and tag headers, legacy and Enhanced RTMP, checked against captured ffmpeg output;
FLV files built from the captures must decode in ffmpeg."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from ingest.flv import (
    AudioTagInfo,
    FlvError,
    FlvTag,
    VideoTagInfo,
    encode_tag,
    file_header,
    iter_tags,
    message_to_tag,
    parse_audio_tag,
    parse_video_tag,
    strip_set_data_frame,
)
from ingest.rtmp.chunk import ChunkReader, Message, MessageType

FIXTURES = Path(__file__).parent / "fixtures" / "rtmp"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def capture(name: str) -> list[Message]:
    return ChunkReader().feed((FIXTURES / f"ffmpeg_{name}_publish.bin").read_bytes())


def of_type(messages: list[Message], type_id: int) -> list[Message]:
    return [m for m in messages if m.type_id == type_id]


def test_file_header_bytes() -> None:
    assert file_header() == h("464c5601 05 00000009 00000000")
    assert file_header(has_video=False) == h("464c5601 04 00000009 00000000")
    assert file_header(has_audio=False) == h("464c5601 01 00000009 00000000")


def test_tag_bytes_carry_the_upper_timestamp_byte_separately() -> None:
    assert encode_tag(9, 0x01020304, b"ab") == h("09 000002 020304 01 000000 6162 0000000d")


def test_iter_tags_round_trip() -> None:
    data = file_header() + encode_tag(8, 5, b"a") + encode_tag(9, 0xFF000001, b"bc")
    assert list(iter_tags(data)) == [FlvTag(8, 5, b"a"), FlvTag(9, 0xFF000001, b"bc")]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"NOPE", "missing FLV signature"),
        (file_header() + b"\x09\x00", "truncated tag header at offset 13"),
        (file_header() + encode_tag(9, 0, b"abc")[:-1], "truncated tag at offset 13: body of 3"),
        (
            file_header() + encode_tag(9, 0, b"abc")[:-4] + h("00000099"),
            "previous tag size 153 at offset 27 does not match tag size 14",
        ),
    ],
)
def test_iter_tags_errors(data: bytes, error: str) -> None:
    with pytest.raises(FlvError, match=re.escape(error)):
        list(iter_tags(data))


def test_set_data_frame_is_stripped_byte_exact() -> None:
    (data,) = of_type(capture("h264_aac"), MessageType.DATA_AMF0)
    stripped = strip_set_data_frame(data.payload)
    assert data.payload == b"\x02\x00\x0d@setDataFrame" + stripped
    assert stripped.startswith(b"\x02\x00\x0aonMetaData\x08")
    assert strip_set_data_frame(stripped) == stripped
    tag = message_to_tag(data)
    assert tag is not None and tag[0] == 18 and tag[11:-4] == stripped


def test_message_to_tag_only_for_media_and_data() -> None:
    assert message_to_tag(Message(8, 1, 7, b"\xaf\x01")) == encode_tag(8, 7, b"\xaf\x01")
    assert message_to_tag(Message(20, 0, 0, b"\x05")) is None


def test_h264_capture_headers() -> None:
    video = [parse_video_tag(m.payload) for m in of_type(capture("h264_aac"), 9)]
    assert video[0] == VideoTagInfo("avc1", False, 1, 0, True, False)
    assert video[1] == VideoTagInfo("avc1", False, 1, 1, False, True, composition_time=67)
    assert sum(v.is_keyframe for v in video) == 1  # -g 60 over 60 frames
    assert video[-1].packet_type == 2 and not video[-1].is_keyframe  # end of sequence
    audio = [parse_audio_tag(m.payload) for m in of_type(capture("h264_aac"), 8)]
    assert audio[0] == AudioTagInfo("mp4a", False, 0, True)
    assert all(a == AudioTagInfo("mp4a", False, 1, False) for a in audio[1:])


def test_hevc_capture_uses_enhanced_rtmp() -> None:
    video = [parse_video_tag(m.payload) for m in of_type(capture("hevc_aac"), 9)]
    assert video[0] == VideoTagInfo("hvc1", True, 1, 0, True, False)
    # The colour-info metadata packet has frame type 5 but is not a command.
    assert video[1] == VideoTagInfo("hvc1", True, 5, 4, False, False)
    assert video[2] == VideoTagInfo("hvc1", True, 1, 1, False, True, composition_time=67)
    assert {v.packet_type for v in video[3:]} == {1, 3}  # CodedFrames and CodedFramesX
    assert sum(v.is_keyframe for v in video) == 1


def test_av1_opus_capture_uses_enhanced_audio_and_video() -> None:
    messages = capture("av1_opus")
    video = [parse_video_tag(m.payload) for m in of_type(messages, 9)]
    assert video[0] == VideoTagInfo("av01", True, 1, 0, True, False)
    assert [v.is_keyframe for v in video].count(True) == 1
    audio = [parse_audio_tag(m.payload) for m in of_type(messages, 8)]
    assert audio[0] == AudioTagInfo("Opus", True, 0, True)
    assert audio[1] == AudioTagInfo("Opus", True, 4, False)  # MultichannelConfig
    assert {a.packet_type for a in audio[2:]} == {1}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (h("93 76703039 00"), VideoTagInfo("vp09", True, 1, 3, False, True)),
        (h("a3 76703038 00"), VideoTagInfo("vp08", True, 2, 3, False, False)),
        (h("d1 00"), VideoTagInfo("", True, 5, 1, False, False)),  # seek command
        (
            h("97 00 aa 01 68766331 000021 00"),  # ModEx with one byte of data
            VideoTagInfo("hvc1", True, 1, 1, False, True, composition_time=33),
        ),
        (
            h("97 ff 0001" + "00" * 2 + " 03 61763031 00"),  # ModEx with a 16-bit size
            VideoTagInfo("av01", True, 1, 3, False, True),
        ),
        (
            h("96 00 61763031 00 aa"),  # one-track multitrack sequence start
            VideoTagInfo("av01", True, 1, 0, True, False, multitrack=True),
        ),
        (
            h("96 21 68766331 00 000003 aabbcc"),  # many tracks, many codecs
            VideoTagInfo("hvc1", True, 1, 1, False, True, multitrack=True),
        ),
        (h("1c 00 000000"), VideoTagInfo("hvc1", False, 1, 0, True, False)),  # legacy id 12
        (h("22 aabb"), VideoTagInfo("h263", False, 2, -1, False, False)),
        (h("1f"), VideoTagInfo("codec-15", False, 1, -1, False, True)),
        (h("17 01 ffffff"), VideoTagInfo("avc1", False, 1, 1, False, True, composition_time=-1)),
    ],
)
def test_video_tag_headers(payload: bytes, expected: VideoTagInfo) -> None:
    assert parse_video_tag(payload) == expected


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", "video tag of 0 bytes is too short for its header (need 1)"),
        (h("17 01 00"), "avc1 video tag of 3 bytes is too short for its header (need 5)"),
        (h("90 6876"), "enhanced video tag of 3 bytes is too short for its header (need 5)"),
        (h("91 68766331 00"), "enhanced video tag of 6 bytes is too short for its header (need 8)"),
        (h("97 05 00"), "enhanced video tag of 3 bytes is too short for its header (need 9)"),
        (h("96"), "enhanced video tag of 1 bytes is too short for its header (need 2)"),
    ],
)
def test_video_tag_errors(payload: bytes, error: str) -> None:
    with pytest.raises(FlvError, match=re.escape(error)):
        parse_video_tag(payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (h("af 00 1210"), AudioTagInfo("mp4a", False, 0, True)),
        (h("af 01 21"), AudioTagInfo("mp4a", False, 1, False)),
        (h("2f ff"), AudioTagInfo(".mp3", False, -1, False)),
        (h("d2"), AudioTagInfo("format-13", False, -1, False)),
        (h("90 4f707573"), AudioTagInfo("Opus", True, 0, True)),
        (h("95 01 6d703461 00"), AudioTagInfo("mp4a", True, 1, False, multitrack=True)),
        (h("97 00 aa 00 664c6143"), AudioTagInfo("fLaC", True, 0, True)),
    ],
)
def test_audio_tag_headers(payload: bytes, expected: AudioTagInfo) -> None:
    assert parse_audio_tag(payload) == expected


def test_audio_tag_errors() -> None:
    with pytest.raises(FlvError, match=re.escape("audio tag of 0 bytes is too short")):
        parse_audio_tag(b"")
    with pytest.raises(FlvError, match=re.escape("AAC audio tag of 1 bytes")):
        parse_audio_tag(b"\xaf")
    with pytest.raises(FlvError, match=re.escape("enhanced audio tag of 3 bytes")):
        parse_audio_tag(h("90 4f70"))


@pytest.mark.parametrize(
    ("name", "video_frames"),
    [("h264_aac", 60), ("hevc_aac", 30), ("av1_opus", 30)],
)
def test_flv_built_from_captured_messages_decodes_in_ffmpeg(
    name: str, video_frames: int, tmp_path: Path
) -> None:
    tags = [message_to_tag(m) for m in capture(name)]
    path = tmp_path / "out.flv"
    path.write_bytes(file_header() + b"".join(tag for tag in tags if tag is not None))
    result = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framecrc", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    frames = [line for line in result.stdout.splitlines() if line and not line.startswith(b"#")]
    assert len(frames) == video_frames
