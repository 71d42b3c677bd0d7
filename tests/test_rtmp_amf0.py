"""AMF0: documented byte vectors, ffmpeg's real `connect` and metadata, and malformed input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.rtmp.amf0 import (
    MAX_DEPTH,
    UNDEFINED,
    AMFDate,
    AMFError,
    AMFValue,
    ECMAArray,
    Undefined,
    decode,
    decode_all,
    encode,
    encode_all,
)
from ingest.rtmp.chunk import ChunkReader, MessageType

FIXTURES = Path(__file__).parent / "fixtures" / "rtmp"


def _messages_of_type(type_id: int) -> list[bytes]:
    data = (FIXTURES / "ffmpeg_h264_aac_publish.bin").read_bytes()
    return [m.payload for m in ChunkReader().feed(data) if m.type_id == type_id]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "003ff0000000000000"),
        (0, "000000000000000000"),
        (-2.5, "00c004000000000000"),
        (True, "0101"),
        (False, "0100"),
        ("", "020000"),
        ("live", "0200046c697665"),
        ("é", "020002c3a9"),
        (None, "05"),
        (UNDEFINED, "06"),
        ({}, "03000009"),
        ({"a": 1.0}, "03000161003ff0000000000000000009"),
        (ECMAArray(), "0800000000000009"),
        (ECMAArray({"x": True}), "080000000100017801010000 09".replace(" ", "")),
        ([], "0a00000000"),
        ([None, "a"], "0a00000002050200016 1".replace(" ", "")),
        (AMFDate(0.0, 0), "0b00000000000000000000"),
        (AMFDate(1.0, -60), "0b3ff0000000000000ffc4"),
    ],
)
def test_known_vectors(value: AMFValue, expected: str) -> None:
    raw = bytes.fromhex(expected)
    assert encode(value) == raw
    decoded, end = decode(raw)
    assert end == len(raw)
    assert decoded == value
    assert type(decoded) is type(float(value) if type(value) is int else value)


def test_long_string_round_trip() -> None:
    text = "k" * 70_000
    raw = encode(text)
    assert raw[:5] == b"\x0c\x00\x01\x11\x70"
    assert decode_all(raw) == [text]


def test_decode_returns_offset_after_value() -> None:
    raw = encode_all("a", 2.0)
    assert decode(raw) == ("a", 4)
    assert decode(raw, 4) == (2.0, 13)


def test_undefined_is_a_singleton_distinct_from_null() -> None:
    assert Undefined() is UNDEFINED
    assert decode_all(b"\x05\x06") == [None, UNDEFINED]


def test_ffmpeg_connect_command_decodes_and_reencodes_byte_exact() -> None:
    connect = _messages_of_type(MessageType.COMMAND_AMF0)[0]
    values = decode_all(connect)
    assert values == [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf63.1.102)",
            "tcUrl": "rtmp://127.0.0.1:19350/live",
        },
    ]
    assert encode_all(*values) == connect


def test_every_ffmpeg_command_reencodes_byte_exact() -> None:
    commands = _messages_of_type(MessageType.COMMAND_AMF0)
    names = [decode_all(c)[0] for c in commands]
    assert names == [
        "connect",
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
        "FCUnpublish",
        "deleteStream",
    ]
    for payload in commands:
        assert encode_all(*decode_all(payload)) == payload


def test_ffmpeg_metadata_is_an_ecma_array_and_reencodes_byte_exact() -> None:
    (data,) = _messages_of_type(MessageType.DATA_AMF0)
    values = decode_all(data)
    assert values[:2] == ["@setDataFrame", "onMetaData"]
    metadata = values[2]
    assert isinstance(metadata, ECMAArray)
    assert metadata["width"] == 320.0
    assert metadata["videocodecid"] == 7.0
    assert metadata["encoder"] == "Lavf63.1.102"
    assert encode_all(*values) == data


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("003ff000", "truncated number at offset 1: need 8 bytes, 3 left"),
        ("01", "truncated boolean at offset 1: need 1 bytes, 0 left"),
        ("0200", "truncated string length at offset 1: need 2 bytes, 1 left"),
        ("020005616263", "truncated string at offset 3: need 5 bytes, 3 left"),
        ("0c000000ff", "truncated long string at offset 5: need 255 bytes, 0 left"),
        ("020002ffa9", "invalid UTF-8 in string at offset 3"),
        ("42", "unknown AMF0 type marker 0x42 at offset 0"),
        ("070001", "unsupported AMF0 type reference (0x07) at offset 0"),
        ("11", "unsupported AMF0 type AVM+ (AMF3) switch (0x11) at offset 0"),
        ("09", "unexpected object end marker at offset 0"),
        ("030001610500", "property name length (object at offset 0)"),
        ("0300016105000005", "empty property name without object end marker at offset 5"),
        ("0300000005", "empty property name without object end marker at offset 1"),
        ("0800000001", "truncated property name length (object at offset 0)"),
        ("0a0000000305", "strict array at offset 0 claims 3 elements but only 1 bytes remain"),
        ("0a00000001", "strict array at offset 0 claims 1 elements but only 0 bytes remain"),
        ("0b3ff00000000000", "truncated date at offset 1: need 10 bytes, 7 left"),
        ("0300016109", "unexpected object end marker at offset 4"),
    ],
)
def test_malformed_input_names_the_offset(raw: str, message: str) -> None:
    with pytest.raises(AMFError, match=re.escape(message)):
        decode_all(bytes.fromhex(raw))


def test_decode_past_the_end_and_decode_all_of_nothing() -> None:
    with pytest.raises(AMFError, match=re.escape("truncated type marker at offset 5: need 1")):
        decode(encode("ab"), 5)
    assert decode_all(b"") == []


def test_amf_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_all(b"\x42")


def test_decode_nesting_is_bounded() -> None:
    deep = b"\x0a\x00\x00\x00\x01" * (MAX_DEPTH + 1) + b"\x05"
    with pytest.raises(AMFError, match=f"nested deeper than {MAX_DEPTH} levels"):
        decode_all(deep)
    shallow = b"\x0a\x00\x00\x00\x01" * MAX_DEPTH + b"\x05"
    assert decode_all(shallow)


def test_encode_nesting_is_bounded() -> None:
    value: AMFValue = None
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    with pytest.raises(AMFError, match=f"nested deeper than {MAX_DEPTH} levels"):
        encode(value)


def test_encode_rejects_types_amf0_cannot_carry() -> None:
    with pytest.raises(AMFError, match="cannot encode bytes as AMF0"):
        encode(b"raw")  # type: ignore[arg-type]


def test_ecma_array_count_is_only_a_hint() -> None:
    # Encoders write wrong counts; the end marker decides.
    raw = bytes.fromhex("08000000630001610101000009")
    assert decode_all(raw) == [ECMAArray({"a": True})]
