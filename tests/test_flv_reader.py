"""The incremental FLV reader: exact bytes in any split give the tags ``iter_tags`` reads from
the whole, and each malformed header or tag is named precisely. The real-world input is what
the SRT ingest's own ffmpeg (``remux_args``) writes when remuxing MPEG-TS to FLV."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from media import FFMPEG, make_flv

from ingest.flv import FlvError, FlvTag, encode_tag, file_header, iter_tags
from ingest.flv_reader import FlvReader
from ingest.srt.publish import remux_args


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def read_all(data: bytes, sizes: list[int]) -> list[FlvTag]:
    reader, tags, pos = FlvReader(), [], 0
    for size in sizes:
        tags += reader.feed(data[pos : pos + size])
        pos += size
    tags += reader.feed(data[pos:])
    reader.end()
    return tags


def test_header_and_tags_byte_by_byte() -> None:
    data = h("464c5601 05 00000009 00000000") + h("09 000002 020304 01 000000 6162 0000000d")
    data += h("08 000001 000005 00 000000 61 0000000c")
    assert read_all(data, [1] * len(data)) == [
        FlvTag(9, 0x01020304, b"ab"),
        FlvTag(8, 5, b"a"),
    ]


def test_a_longer_header_is_skipped_and_its_flags_read() -> None:
    data = h("464c5601 04 0000000c aabbcc 00000000") + encode_tag(8, 0, b"x")
    reader = FlvReader()
    assert reader.feed(data) == [FlvTag(8, 0, b"x")]
    assert (reader.has_audio, reader.has_video, reader.pending) == (True, False, 0)


def test_an_incomplete_tag_is_held_until_the_rest_comes() -> None:
    tag = encode_tag(9, 7, b"abcdef")
    reader = FlvReader()
    assert reader.feed(file_header() + tag[:-1]) == []
    assert reader.pending == len(tag) - 1
    assert reader.feed(tag[-1:]) == [FlvTag(9, 7, b"abcdef")]
    assert reader.pending == 0 and reader.offset == 13 + len(tag)


def test_ffmpeg_remux_output_in_random_pieces_equals_whole_file_reading(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "src.flv", seconds=2, size="160x120")
    ts = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(flv), "-c", "copy", "-f", "mpegts", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    remuxed = subprocess.run(
        remux_args(FFMPEG), input=ts, check=True, capture_output=True, timeout=60
    ).stdout
    expected = list(iter_tags(remuxed))
    assert {t.tag_type for t in expected} == {8, 9, 18}
    # 60 frames, the AVC sequence header and the end-of-sequence tag ffmpeg closes with
    assert sum(t.tag_type == 9 for t in expected) == 62
    rng = random.Random(7)
    for _ in range(5):
        sizes = [rng.randint(1, 5000) for _ in range(len(remuxed) // 2000)]
        assert read_all(remuxed, sizes) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"FLX", "missing FLV signature"),
        (h("464c5602"), "FLV version 2 is not 1"),
        (h("464c5601 05 00000008"), "FLV header size 8 is less than 9"),
        (h("464c5601 05 00000009 00000001"), "PreviousTagSize0 is 1, not 0"),
        (file_header() + h("09 000001 000000 00 000000 61 0000000b"), "previous tag size 11 "),
        (file_header() + h("29 000001 000000 00 000000 61 0000000c"), "encrypted tag"),
    ],
)
def test_malformed_input_is_named(data: bytes, error: str) -> None:
    with pytest.raises(FlvError, match=error):
        FlvReader().feed(data)


def test_mismatch_names_its_offset() -> None:
    data = file_header() + encode_tag(8, 0, b"a") + h("09 000001 000000 00 000000 61 00000000")
    with pytest.raises(FlvError, match=r"size 0 at offset 41 does not match tag size 12"):
        FlvReader().feed(data)


def test_end_inside_the_header_or_a_tag_is_an_error() -> None:
    reader = FlvReader()
    reader.feed(b"FLV\x01")
    with pytest.raises(FlvError, match=r"ended in its header \(4 bytes\)"):
        reader.end()
    reader = FlvReader()
    reader.feed(file_header() + encode_tag(8, 0, b"abc")[:5])
    with pytest.raises(FlvError, match=r"ended inside a tag at offset 13 \(5 bytes of it\)"):
        reader.end()
