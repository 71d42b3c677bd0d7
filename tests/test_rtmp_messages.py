"""Control messages, command builders and parsers, acknowledgements and stream-key splitting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.flv import encode_tag
from ingest.rtmp import messages as msg
from ingest.rtmp.amf0 import UNDEFINED, decode_all, encode_all
from ingest.rtmp.chunk import ChunkReader, Message, MessageType
from ingest.rtmp.messages import AckCounter, Command, CommandError, Status, parse_command
from ingest.rtmp.streamkey import BadStreamName, StreamPath, mask_key, split_publish_target

FIXTURES = Path(__file__).parent / "fixtures" / "rtmp"


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(
    ("message", "type_id", "payload"),
    [
        (msg.set_chunk_size(4096), 1, "00001000"),
        (msg.acknowledgement(2_500_000), 3, "002625a0"),
        (msg.acknowledgement(2**32 + 5), 3, "00000005"),
        (msg.window_ack_size(2_500_000), 5, "002625a0"),
        (msg.set_peer_bandwidth(2_500_000), 6, "002625a0 02"),
        (msg.stream_begin(1), 4, "0000 00000001"),
        (msg.stream_eof(1), 4, "0001 00000001"),
        (msg.ping_response(1234), 4, "0007 000004d2"),
    ],
)
def test_control_message_bytes(message: Message, type_id: int, payload: str) -> None:
    assert (message.type_id, message.stream_id, message.timestamp) == (type_id, 0, 0)
    assert message.payload == h(payload)


def test_parse_control_values() -> None:
    assert msg.parse_u32(msg.window_ack_size(5000)) == 5000
    assert msg.parse_user_control(Message(4, 0, 0, h("0006 0000002a"))) == (6, 42)
    with pytest.raises(ValueError, match="message type 5 needs 4 bytes, got 2"):
        msg.parse_u32(Message(5, 0, 0, b"\x00\x01"))
    with pytest.raises(ValueError, match="user control message needs 6 bytes, got 3"):
        msg.parse_user_control(Message(4, 0, 0, b"\x00\x01\x02"))


def test_connect_result_is_what_fms_sends() -> None:
    message = msg.connect_result(1.0)
    assert message.type_id == MessageType.COMMAND_AMF0 and message.stream_id == 0
    assert decode_all(message.payload) == [
        "_result",
        1.0,
        {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "mode": 1.0},
        {
            "level": "status",
            "code": "NetConnection.Connect.Success",
            "description": "Connection succeeded.",
            "objectEncoding": 0.0,
        },
    ]


def test_stream_results_and_status() -> None:
    assert decode_all(msg.create_stream_result(4.0, 1).payload) == ["_result", 4.0, None, 1.0]
    assert decode_all(msg.empty_result(2.0).payload) == ["_result", 2.0, None, UNDEFINED]
    status = msg.on_status(1, "error", Status.PUBLISH_DENIED, "Publish denied.")
    assert status.stream_id == 1
    assert status.payload == encode_all(
        "onStatus",
        0.0,
        None,
        {"level": "error", "code": "NetStream.Publish.Denied", "description": "Publish denied."},
    )


def test_parse_ffmpeg_commands() -> None:
    data = (FIXTURES / "ffmpeg_h264_aac_publish.bin").read_bytes()
    commands = [parse_command(m) for m in ChunkReader().feed(data) if m.type_id == 20]
    assert commands[4] == Command("publish", 5.0, None, ["abcd1234", "live"], stream_id=1)
    assert commands[3] == Command("createStream", 4.0, None, [], stream_id=0)
    assert commands[6].name == "deleteStream" and commands[6].argument(0) == 1.0
    assert commands[6].argument(5) is None


def test_amf3_command_skips_the_format_byte() -> None:
    payload = b"\x00" + encode_all("connect", 1.0, {"app": "live"})
    command = parse_command(Message(MessageType.COMMAND_AMF3, 0, 0, payload))
    assert command == Command("connect", 1.0, {"app": "live"}, [])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (Message(9, 0, 0, b""), "message type 9 is not a command"),
        (Message(20, 0, 0, h("02 0003 616263 42")), "malformed command: unknown AMF0 type"),
        (Message(20, 0, 0, encode_all("connect")), "command has 1 values, need at least"),
        (Message(20, 0, 0, encode_all(1.0, 1.0)), "command name is float, not a string"),
        (Message(20, 0, 0, encode_all("connect", "1")), "transaction id of 'connect' is str"),
        (Message(20, 0, 0, encode_all("connect", True)), "transaction id of 'connect' is bool"),
    ],
)
def test_malformed_commands(message: Message, error: str) -> None:
    with pytest.raises(CommandError, match=re.escape(error)):
        parse_command(message)


def test_ack_counter_acknowledges_each_window() -> None:
    acks = AckCounter(100)
    assert acks.received(60) is None
    assert acks.received(50) == 110
    assert acks.received(99) is None
    assert acks.received(1) == 210
    assert AckCounter(0).received(10**9) is None


def test_ack_sequence_number_wraps_at_32_bits() -> None:
    acks = AckCounter(2_500_000)
    assert acks.received(2**32 + 2_500_000) == 2_500_000


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        ("live", "abcd1234", StreamPath("live", "abcd1234")),
        ("live/abcd1234", "", StreamPath("live", "abcd1234")),  # OBS, whole URL as server
        ("live", "abcd1234?token=x&y=1", StreamPath("live", "abcd1234", "token=x&y=1")),
        ("live?sig=1", "abcd1234", StreamPath("live", "abcd1234", "sig=1")),
        ("live/abcd1234?sig=1", "", StreamPath("live", "abcd1234", "sig=1")),
        ("live/", "abcd1234", StreamPath("live", "abcd1234")),
        ("/live", " abcd1234\n", StreamPath("live", "abcd1234")),
        ("other", "k", StreamPath("other", "k")),  # the server decides which apps exist
    ],
)
def test_publish_target_split(app: str, name: str, expected: StreamPath) -> None:
    assert split_publish_target(app, name) == expected


@pytest.mark.parametrize(
    ("app", "name", "error"),
    [
        ("", "", "no application name in the URL"),
        ("live", "", "missing stream key (expected APP/KEY)"),
        ("live", "?token=x", "missing stream key (expected APP/KEY)"),
        ("abcd1234secret", "", "missing stream key (expected APP/KEY)"),
        ("live/abcd1234", "abcd1234", "expected APP/KEY but got 3 path segments"),
        ("live", "k" * 257, "stream key longer than 256 characters"),
        ("live", "ab cd", "stream key contains spaces or control characters"),
        ("live", "ab\x00cd", "stream key contains spaces or control characters"),
    ],
)
def test_publish_target_errors(app: str, name: str, error: str) -> None:
    with pytest.raises(BadStreamName, match=re.escape(error)):
        split_publish_target(app, name)


def test_mask_key_never_reveals_a_short_key() -> None:
    assert mask_key("abcd1234") == "…"
    assert mask_key("") == "…"
    assert mask_key("sk_live_0123456789") == "sk_l…"


def test_split_aggregate_rebases_timestamps() -> None:
    body = encode_tag(9, 1000, b"v") + encode_tag(8, 1033, b"a")
    assert msg.split_aggregate(Message(22, 1, 5000, body)) == [
        Message(9, 1, 5000, b"v"),
        Message(8, 1, 5033, b"a"),
    ]
    assert msg.split_aggregate(Message(22, 1, 0, b"")) == []
