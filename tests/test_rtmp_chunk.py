"""Chunk reader and writer: header formats, extended timestamps, chunk size changes, limits."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from ingest.rtmp.chunk import (
    MAX_CHUNK_SIZE,
    ChunkError,
    ChunkReader,
    ChunkWriter,
    Message,
    MessageType,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rtmp"
CAPTURES = [
    "ffmpeg_h264_aac_publish.bin",
    "ffmpeg_hevc_aac_publish.bin",
    "ffmpeg_av1_opus_publish.bin",
]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_fmt0_single_chunk() -> None:
    data = h("03 000064 000003 14 01000000 616263")
    assert ChunkReader().feed(data) == [Message(20, 1, 100, b"abc")]


def test_fmt1_fmt2_fmt3_expand_against_the_previous_header() -> None:
    data = h(
        "04 0003e8 000002 09 01000000 aaaa"  # fmt0: ts 1000, stream 1
        "44 000021 000001 08 bb"  # fmt1: +33, new length and type, stream id kept
        "84 000021 cc"  # fmt2: +33, length and type kept
        "c4 dd"  # fmt3: a new message repeating the last delta
    )
    assert ChunkReader().feed(data) == [
        Message(9, 1, 1000, b"\xaa\xaa"),
        Message(8, 1, 1033, b"\xbb"),
        Message(8, 1, 1066, b"\xcc"),
        Message(8, 1, 1099, b"\xdd"),
    ]


def test_fmt3_message_after_fmt0_repeats_the_absolute_timestamp_as_delta() -> None:
    # RTMP spec 5.3.1.2.4, and what ffmpeg's reader does.
    data = h("04 000010 000001 08 01000000 aa c4 bb")
    messages = ChunkReader().feed(data)
    assert [m.timestamp for m in messages] == [16, 32]


def test_continuation_chunks_at_the_default_chunk_size() -> None:
    payload = bytes(range(200))
    data = h("05 000000 0000c8 09 01000000") + payload[:128] + h("c5") + payload[128:]
    assert ChunkReader().feed(data) == [Message(9, 1, 0, payload)]


def test_interleaved_chunk_streams() -> None:
    video, audio = b"v" * 200, b"a" * 10
    data = (
        h("06 000000 0000c8 09 01000000")
        + video[:128]
        + h("04 000000 00000a 08 01000000")
        + audio
        + h("c6")
        + video[128:]
    )
    assert ChunkReader().feed(data) == [Message(8, 1, 0, audio), Message(9, 1, 0, video)]


def test_extended_timestamp_on_fmt0_and_its_continuation() -> None:
    payload = b"x" * 130
    data = (
        h("05 ffffff 000082 09 01000000 01000000")
        + payload[:128]
        + h("c5 01000000")  # the repeated extended timestamp, as the spec asks
        + payload[128:]
    )
    assert ChunkReader().feed(data) == [Message(9, 1, 0x01000000, payload)]


def test_continuation_without_the_repeated_extended_timestamp_is_accepted() -> None:
    payload = b"x" * 128 + b"abcdef"
    data = h("05 ffffff 000086 09 01000000 01000000") + payload[:128] + h("c5") + payload[128:]
    assert ChunkReader().feed(data) == [Message(9, 1, 0x01000000, payload)]


def test_short_continuation_without_extended_timestamp_waits_for_four_bytes() -> None:
    # Telling payload from a repeated timestamp needs four bytes; the next chunk supplies them.
    payload = b"x" * 128 + b"ab"
    data = h("05 ffffff 000082 09 01000000 01000000") + payload[:128] + h("c5") + payload[128:]
    reader = ChunkReader()
    assert reader.feed(data) == []
    following = h("04 000000 000001 08 01000000 aa")
    assert reader.feed(following) == [
        Message(9, 1, 0x01000000, payload),
        Message(8, 1, 0, b"\xaa"),
    ]


def test_extended_delta_on_fmt1_and_timestamp_wraps_at_32_bits() -> None:
    data = h(
        "04 ffffff 000001 08 01000000 fffffff0 aa"  # ts 0xfffffff0
        "44 ffffff 000001 08 01000020 bb"  # + 0x01000020 wraps
    )
    messages = ChunkReader().feed(data)
    assert [m.timestamp for m in messages] == [0xFFFFFFF0, 0x01000010]


@pytest.mark.parametrize(
    ("basic", "csid"),
    [("02", 2), ("3f", 63), ("00 00", 64), ("00 ff", 319), ("01 00 01", 320), ("01 ff ff", 65599)],
)
def test_one_two_and_three_byte_basic_headers(basic: str, csid: int) -> None:
    data = h(basic + "000000 000001 08 01000000 aa")
    assert ChunkReader().feed(data) == [Message(8, 1, 0, b"\xaa")]
    assert ChunkWriter().write(Message(8, 1, 0, b"\xaa"), csid) == data


def test_set_chunk_size_applies_to_the_following_chunks() -> None:
    payload = b"p" * 300
    data = (
        h("02 000000 000004 01 00000000 00000100")  # Set Chunk Size 256
        + h("04 000000 00012c 09 01000000")
        + payload[:256]
        + h("c4")
        + payload[256:]
    )
    reader = ChunkReader()
    messages = reader.feed(data)
    assert messages == [Message(1, 0, 0, h("00000100")), Message(9, 1, 0, payload)]
    assert reader.chunk_size == 256


def test_abort_discards_the_unfinished_message() -> None:
    data = (
        h("04 000000 0000c8 09 01000000")
        + b"x" * 128
        + h("02 000000 000004 02 00000000 00000004")  # Abort chunk stream 4
        + h("04 000000 000001 08 01000000 aa")
    )
    reader = ChunkReader()
    messages = reader.feed(data)
    assert messages[-1] == Message(8, 1, 0, b"\xaa")
    assert reader.buffered == 0


@pytest.mark.parametrize("name", CAPTURES)
def test_byte_at_a_time_equals_all_at_once(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    whole = ChunkReader().feed(data)
    reader = ChunkReader()
    trickled = [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]
    assert trickled == whole
    rng = random.Random(7)
    reader, pos, pieces = ChunkReader(), 0, []
    while pos < len(data):
        step = rng.randint(1, 9000)
        pieces += reader.feed(data[pos : pos + step])
        pos += step
    assert pieces == whole
    assert reader.buffered == 0


def test_ffmpeg_capture_parses_into_the_expected_messages() -> None:
    data = (FIXTURES / "ffmpeg_h264_aac_publish.bin").read_bytes()
    reader = ChunkReader()
    messages = reader.feed(data)
    types = [m.type_id for m in messages]
    assert types.count(MessageType.COMMAND_AMF0) == 7
    assert types.count(MessageType.DATA_AMF0) == 1
    assert types.count(MessageType.VIDEO) == 62  # sequence header, 60 frames, end of sequence
    assert types.count(MessageType.AUDIO) == 89
    assert messages[1] == Message(MessageType.SET_CHUNK_SIZE, 0, 0, h("00001000"))
    assert reader.chunk_size == 4096
    video = [m.timestamp for m in messages if m.type_id == MessageType.VIDEO]
    assert video == sorted(video) and video[-1] == 1967
    assert {m.stream_id for m in messages if m.type_id in (8, 9, 18)} == {1}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (h("02 000000 000004 01 00000000 00000000"), "chunk size 0 out of range 1..16777215"),
        (h("02 000000 000004 01 00000000 01000000"), "chunk size 16777216 out of range"),
        (h("02 000000 000004 01 00000000 7fffffff"), "chunk size 2147483647 out of range"),
        (h("02 000000 000002 01 00000000 0001"), "message type 1 with a short payload"),
        (h("44 000000 000001 08"), "fmt 1 chunk on new chunk stream 4 (stream offset 0)"),
        (h("c4"), "fmt 3 chunk on new chunk stream 4"),
        (
            h("04 000000 800000 09 01000000"),
            "message of 8388608 bytes on chunk stream 4 exceeds the 1048576-byte limit",
        ),
        (
            h("04 000000 0000c8 09 01000000") + bytes(128) + h("04 000000 000001 08 01000000"),
            "fmt 0 header on chunk stream 4 in the middle of a message (128 of 200 bytes "
            "received) (stream offset 140)",
        ),
    ],
)
def test_protocol_violations_raise_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ChunkError, match=re.escape(message)):
        ChunkReader(max_message_size=1 << 20).feed(data)


def test_too_many_chunk_streams() -> None:
    reader = ChunkReader(max_chunk_streams=3)
    data = b"".join(h(f"{csid:02x} 000000 000001 08 01000000 aa") for csid in range(2, 6))
    with pytest.raises(ChunkError, match="more than 3 chunk streams"):
        reader.feed(data)


def test_unfinished_messages_are_capped() -> None:
    # Many chunk streams each holding part of a large message must not add up without limit.
    reader = ChunkReader(max_message_size=1000, max_pending=500)
    data = b"".join(h(f"{csid:02x} 000000 0003e8 09 01000000") + bytes(128) for csid in range(2, 8))
    with pytest.raises(ChunkError, match="more than 500 bytes held in unfinished messages"):
        reader.feed(data)


def test_partial_header_waits_for_more_bytes() -> None:
    reader = ChunkReader()
    assert reader.feed(h("04 000000 0000")) == []
    assert reader.buffered == 6
    assert reader.feed(h("01 08 01000000 aa")) == [Message(8, 1, 0, b"\xaa")]


def test_writer_byte_vector_for_set_chunk_size() -> None:
    data = ChunkWriter().write(Message(1, 0, 0, h("00001000")))
    assert data == h("02 000000 000004 01 00000000 00001000")


def test_writer_compresses_headers_like_the_reader_expands_them() -> None:
    writer = ChunkWriter()
    out = [
        writer.write(Message(8, 1, 0, b"abc"), 4),
        writer.write(Message(8, 1, 20, b"def"), 4),
        writer.write(Message(8, 1, 40, b"ghi"), 4),
        writer.write(Message(8, 1, 60, b"jklm"), 4),
        writer.write(Message(8, 2, 60, b"n"), 4),
    ]
    assert [chunk[0] >> 6 for chunk in out] == [0, 2, 3, 1, 0]
    assert out[1] == h("84 000014 646566")
    assert out[2] == h("c4 676869")


def test_writer_splits_and_repeats_the_extended_timestamp() -> None:
    payload = b"z" * 300
    data = ChunkWriter(128).write(Message(9, 1, 0x01234567, payload), 6)
    assert data[:16] == h("06 ffffff 00012c 09 01000000 01234567")
    assert data[16 + 128 : 16 + 128 + 5] == h("c6 01234567")


def test_writer_round_trips_through_the_reader() -> None:
    rng = random.Random(3)
    writer = ChunkWriter(4096)
    reader = ChunkReader()
    reader.chunk_size = 4096
    sent: list[Message] = []
    stream = bytearray()
    timestamps = {8: 0, 9: 0}
    for _ in range(300):
        type_id = rng.choice((8, 9))
        timestamps[type_id] += rng.choice((0, 23, 33, 0x1000000))
        size = rng.choice((1, 7, 4096, 4097, 20000))
        message = Message(type_id, 1, timestamps[type_id] & 0xFFFFFFFF, rng.randbytes(size))
        sent.append(message)
        stream += writer.write(message, 4 if type_id == 8 else 6)
    assert reader.feed(bytes(stream)) == sent


def test_writer_rejects_bad_chunk_sizes_and_ids() -> None:
    with pytest.raises(
        ChunkError, match=re.escape(f"chunk size 0 out of range 1..{MAX_CHUNK_SIZE}")
    ):
        ChunkWriter(0)
    with pytest.raises(ValueError, match=re.escape("chunk stream id 1 out of range 2..65599")):
        ChunkWriter().write(Message(8, 1, 0, b""), 1)
