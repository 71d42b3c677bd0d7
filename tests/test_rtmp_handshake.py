"""Server handshake state machine against ffmpeg's real C0+C1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.rtmp.handshake import (
    HANDSHAKE_SIZE,
    ClientHandshake,
    ClientHandshakeState,
    HandshakeError,
    HandshakeState,
    ServerHandshake,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rtmp"
RANDOM = bytes(range(256)) * 5 + bytes(range(248))  # 1528 bytes, recognisable in S1


def _handshake() -> ServerHandshake:
    return ServerHandshake(clock_ms=lambda: 0x01020304, random_bytes=lambda n: RANDOM[:n])


def test_s0_s1_s2_answer_ffmpeg_c0_c1_byte_exact() -> None:
    c0c1 = (FIXTURES / "ffmpeg_c0c1.bin").read_bytes()
    assert len(c0c1) == 1 + HANDSHAKE_SIZE and c0c1[0] == 3
    handshake = _handshake()
    reply = handshake.feed(c0c1)
    s1 = bytes.fromhex("01020304 00000000") + RANDOM
    s2 = c0c1[1:5] + bytes.fromhex("01020304") + c0c1[9:]
    assert reply == b"\x03" + s1 + s2
    assert handshake.state is HandshakeState.WAIT_C2
    assert handshake.client_time == int.from_bytes(c0c1[1:5], "big")


def test_c2_completes_and_pipelined_bytes_are_left_over() -> None:
    c0c1 = (FIXTURES / "ffmpeg_c0c1.bin").read_bytes()
    handshake = _handshake()
    s0s1s2 = handshake.feed(c0c1)
    c2 = s0s1s2[1 : 1 + HANDSHAKE_SIZE]
    assert handshake.feed(c2[:1000]) == b""
    assert handshake.received == 1000
    assert not handshake.done
    assert handshake.feed(c2[1000:] + b"\x03connect...") == b""
    assert handshake.done
    assert handshake.leftover == b"\x03connect..."


def test_one_byte_at_a_time_gives_the_same_reply() -> None:
    c0c1 = (FIXTURES / "ffmpeg_c0c1.bin").read_bytes()
    whole = _handshake().feed(c0c1)
    handshake = _handshake()
    pieces = [handshake.feed(c0c1[i : i + 1]) for i in range(len(c0c1))]
    assert b"".join(pieces) == whole
    assert all(piece == b"" for piece in pieces[:-1])


def test_c2_is_not_validated() -> None:
    # Digest-handshake clients send a C2 that does not echo S1; they work anyway.
    handshake = _handshake()
    handshake.feed(b"\x03" + bytes(HANDSHAKE_SIZE))
    handshake.feed(b"\xff" * HANDSHAKE_SIZE)
    assert handshake.done and handshake.leftover == b""


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b"\x06", "unsupported RTMP version 6 in C0 (RTMPE encryption is not supported)"),
        (b"GET / HTTP/1.1\r\n", "unsupported RTMP version 0x47 in C0 (looks like HTTP or text)"),
        (b"\x16\x03\x01", "unsupported RTMP version 0x16 in C0 (looks like a TLS ClientHello"),
        (b"\x00", "unsupported RTMP version 0x00 in C0 (only 3 is accepted)"),
        (b"\xff\xfe", "unsupported RTMP version 0xff in C0 (only 3 is accepted)"),
    ],
)
def test_other_versions_are_refused_on_the_first_byte(first: bytes, message: str) -> None:
    with pytest.raises(HandshakeError, match=re.escape(message)):
        _handshake().feed(first)


def test_feeding_after_completion_is_an_error() -> None:
    handshake = _handshake()
    handshake.feed(b"\x03" + bytes(2 * HANDSHAKE_SIZE))
    with pytest.raises(HandshakeError, match="handshake already complete"):
        handshake.feed(b"x")


def test_default_randomness_is_fresh() -> None:
    one = ServerHandshake().feed(b"\x03" + bytes(HANDSHAKE_SIZE))
    two = ServerHandshake().feed(b"\x03" + bytes(HANDSHAKE_SIZE))
    assert len(one) == 1 + 2 * HANDSHAKE_SIZE
    assert one[9 : 1 + HANDSHAKE_SIZE] != two[9 : 1 + HANDSHAKE_SIZE]


def _client() -> ClientHandshake:
    return ClientHandshake(clock_ms=lambda: 0x0A0B0C0D, random_bytes=lambda n: RANDOM[:n])


def test_client_c0_c1_asks_for_the_simple_handshake() -> None:
    c0c1 = _client().start()
    assert c0c1 == b"\x03" + bytes.fromhex("0a0b0c0d 00000000") + RANDOM


def test_client_and_server_complete_each_other() -> None:
    client, server = _client(), _handshake()
    s0s1s2 = server.feed(client.start())
    c2 = client.feed(s0s1s2 + b"\x02pipelined")
    assert client.done and client.leftover == b"\x02pipelined"
    assert c2 == s0s1s2[1 : 1 + HANDSHAKE_SIZE]  # S1 echoed verbatim, as OBS and ffmpeg do
    assert client.server_time == 0x01020304
    assert server.feed(c2 + b"connect") == b""
    assert server.done and server.leftover == b"connect"


def test_client_answers_s1_before_s2_arrives_and_accepts_bytes_one_at_a_time() -> None:
    client = _client()
    s0s1s2 = _handshake().feed(client.start())
    replies = [client.feed(s0s1s2[i : i + 1]) for i in range(len(s0s1s2))]
    assert replies[HANDSHAKE_SIZE] == s0s1s2[1 : 1 + HANDSHAKE_SIZE]
    assert sum(1 for reply in replies if reply) == 1
    assert client.done and client.leftover == b""
    assert client.state is ClientHandshakeState.DONE


def test_client_does_not_validate_s2() -> None:
    client = _client()
    client.start()
    client.feed(b"\x03" + bytes(HANDSHAKE_SIZE))
    assert client.state is ClientHandshakeState.WAIT_S2 and client.received == 0
    client.feed(b"\xff" * HANDSHAKE_SIZE)
    assert client.done


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b"\x15\x03\x03", "server answered with 0x15, not RTMP version 3 (TLS: use rtmps://?)"),
        (b"HTTP/1.1 400", "server answered with 0x48, not RTMP version 3 (looks like HTTP)"),
        (b"\x06", "server answered with RTMP version 0x06; only 3 is supported"),
    ],
)
def test_client_refuses_a_server_that_is_not_rtmp_on_the_first_byte(
    first: bytes, message: str
) -> None:
    client = _client()
    client.start()
    with pytest.raises(HandshakeError, match=re.escape(message)):
        client.feed(first)


def test_client_steps_out_of_order_are_errors() -> None:
    client = _client()
    with pytest.raises(HandshakeError, match="handshake not started"):
        client.feed(b"\x03")
    client.start()
    with pytest.raises(HandshakeError, match="handshake already started"):
        client.start()
    client.feed(b"\x03" + bytes(2 * HANDSHAKE_SIZE))
    with pytest.raises(HandshakeError, match="handshake already complete"):
        client.feed(b"x")
