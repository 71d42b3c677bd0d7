"""Both sides of the simple (non-digest) RTMP handshake: C0 C1 → S0 S1 S2 → C2.

Pure state machines: bytes in, bytes out. Clock and randomness are injected so tests are exact.
ffmpeg and OBS publish happily with the simple handshake; only Flash-era players insist on the
digest variant, and this is an ingest server. The client side is for pushing a stream on to a
platform, whose ingest (nginx-rtmp, SRS and their descendants) accepts it from publishers.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from enum import Enum

__all__ = [
    "HANDSHAKE_SIZE",
    "RTMP_VERSION",
    "ClientHandshake",
    "ClientHandshakeState",
    "HandshakeError",
    "HandshakeState",
    "ServerHandshake",
]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536  # C1, C2, S1 and S2 are all this long
_RANDOM_SIZE = HANDSHAKE_SIZE - 8
_TWO_U32 = struct.Struct(">II")


class HandshakeError(ValueError):
    """The client did not speak the RTMP handshake we accept."""


class HandshakeState(Enum):
    WAIT_C0C1 = "waiting for C0+C1"
    WAIT_C2 = "waiting for C2"
    DONE = "done"


def _describe_version(version: int) -> str:
    # Misdirected clients are the common case on a public port; naming them makes logs useful.
    if version in (6, 8, 9):
        return f"unsupported RTMP version {version} in C0 (RTMPE encryption is not supported)"
    if version == 0x16:
        return "unsupported RTMP version 0x16 in C0 (looks like a TLS ClientHello; use rtmp://)"
    if version in b"GPHOCDT":
        return f"unsupported RTMP version 0x{version:02x} in C0 (looks like HTTP or text)"
    return f"unsupported RTMP version 0x{version:02x} in C0 (only {RTMP_VERSION} is accepted)"


class ServerHandshake:
    """Feed client bytes; send whatever `feed` returns; stop when `done`.

    Bytes the client sent after C2 (clients pipeline `connect` straight after it) are left in
    `leftover` for the chunk reader.
    """

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock_ms = clock_ms or (lambda: 0)
        self._random_bytes = random_bytes
        self._buffer = bytearray()
        self.state = HandshakeState.WAIT_C0C1
        self.leftover = b""
        self.client_version = 0
        self.client_time = 0

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    @property
    def received(self) -> int:
        """Bytes buffered towards the step in progress, for "stalled after N bytes" logs."""
        return len(self._buffer)

    def feed(self, data: bytes) -> bytes:
        if self.state is HandshakeState.DONE:
            raise HandshakeError("handshake already complete")
        self._buffer += data
        out = b""
        if self.state is HandshakeState.WAIT_C0C1:
            if self._buffer:
                version = self._buffer[0]
                # Refuse on the first byte instead of waiting for 1536 more that may never come.
                if version != RTMP_VERSION:
                    raise HandshakeError(_describe_version(version))
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            out = self._respond(c1)
            self.state = HandshakeState.WAIT_C2
        if self.state is HandshakeState.WAIT_C2 and len(self._buffer) >= HANDSHAKE_SIZE:
            # C2 should echo S1, but digest-handshake clients send something else; checking it
            # would only reject clients that otherwise work.
            self.leftover = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer.clear()
            self.state = HandshakeState.DONE
        return out

    def _respond(self, c1: bytes) -> bytes:
        self.client_version = RTMP_VERSION
        self.client_time = _TWO_U32.unpack_from(c1)[0]
        now = self._clock_ms() & 0xFFFFFFFF
        random = self._random_bytes(_RANDOM_SIZE)
        if len(random) != _RANDOM_SIZE:
            raise ValueError(f"random_bytes returned {len(random)} bytes, need {_RANDOM_SIZE}")
        # S1: our time, then zeros; a zero "version" field tells ffmpeg not to look for a digest.
        s1 = _TWO_U32.pack(now, 0) + random
        # S2 echoes C1: its time, the time we read it, and its random bytes.
        s2 = _TWO_U32.pack(self.client_time, now) + c1[8:]
        return bytes((RTMP_VERSION,)) + s1 + s2


class ClientHandshakeState(Enum):
    START = "not started"
    WAIT_S0S1 = "waiting for S0+S1"
    WAIT_S2 = "waiting for S2"
    DONE = "done"


def _describe_server_version(version: int) -> str:
    # A push URL with the wrong scheme or port is the usual cause; say which one it looks like.
    if version in (0x15, 0x16):
        return f"server answered with 0x{version:02x}, not RTMP version 3 (TLS: use rtmps://?)"
    if version in b"H<":
        return f"server answered with 0x{version:02x}, not RTMP version 3 (looks like HTTP)"
    return f"server answered with RTMP version 0x{version:02x}; only {RTMP_VERSION} is supported"


class ClientHandshake:
    """Send what `start` returns, feed server bytes, send whatever `feed` returns; stop when
    `done`. Bytes the server sent after S2 are left in `leftover` for the chunk reader."""

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock_ms = clock_ms or (lambda: 0)
        self._random_bytes = random_bytes
        self._buffer = bytearray()
        self.state = ClientHandshakeState.START
        self.c1 = b""
        self.leftover = b""
        self.server_time = 0

    @property
    def done(self) -> bool:
        return self.state is ClientHandshakeState.DONE

    @property
    def received(self) -> int:
        """Bytes buffered towards the step in progress, for "stalled after N bytes" errors."""
        return len(self._buffer)

    def start(self) -> bytes:
        """C0+C1. A zero second field in C1 asks the server for the simple handshake."""
        if self.state is not ClientHandshakeState.START:
            raise HandshakeError("handshake already started")
        random = self._random_bytes(_RANDOM_SIZE)
        if len(random) != _RANDOM_SIZE:
            raise ValueError(f"random_bytes returned {len(random)} bytes, need {_RANDOM_SIZE}")
        self.c1 = _TWO_U32.pack(self._clock_ms() & 0xFFFFFFFF, 0) + random
        self.state = ClientHandshakeState.WAIT_S0S1
        return bytes((RTMP_VERSION,)) + self.c1

    def feed(self, data: bytes) -> bytes:
        if self.state is ClientHandshakeState.START:
            raise HandshakeError("handshake not started")
        if self.state is ClientHandshakeState.DONE:
            raise HandshakeError("handshake already complete")
        self._buffer += data
        out = b""
        if self.state is ClientHandshakeState.WAIT_S0S1:
            if self._buffer and self._buffer[0] != RTMP_VERSION:
                raise HandshakeError(_describe_server_version(self._buffer[0]))
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            s1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            self.server_time = _TWO_U32.unpack_from(s1)[0]
            # C2 echoes S1 verbatim, as librtmp (OBS) and ffmpeg do: the spec's "time2" field is
            # ignored by every server, and matching the common encoders is the safer bet.
            out = s1
            self.state = ClientHandshakeState.WAIT_S2
        if self.state is ClientHandshakeState.WAIT_S2 and len(self._buffer) >= HANDSHAKE_SIZE:
            # S2 should echo C1, but digest-capable servers send their own; checking it would
            # only refuse servers that otherwise work.
            self.leftover = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer.clear()
            self.state = ClientHandshakeState.DONE
        return out
