"""RTMP chunk stream: `ChunkReader` reassembles messages from chunks, `ChunkWriter` splits them.

Pure and synchronous. The reader works per chunk with `struct` on one growing bytearray, never
per byte, because it carries every publisher's media: 20 publishers at 6 Mbit/s must fit on
two cores beside everything else. A chunk is only committed once its whole payload is present,
so feeding one byte at a time yields exactly what feeding everything at once yields.

Limits exist because the peer is untrusted: message size, the number of chunk streams and the
bytes held in unfinished messages are all capped, and each breach raises `ChunkError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_MESSAGE_SIZE",
    "ChunkError",
    "ChunkReader",
    "ChunkWriter",
    "Message",
    "MessageType",
]

DEFAULT_CHUNK_SIZE: Final = 128  # what both sides assume until a Set Chunk Size arrives
MAX_CHUNK_SIZE: Final = 0xFFFFFF  # the spec's ceiling; larger values are only ever hostile
# A 1080p keyframe at 6 Mbit/s is a few hundred KB; 8 MiB leaves room for 4K intra frames while
# stopping one header from reserving the protocol maximum of 16 MiB per chunk stream.
MAX_MESSAGE_SIZE: Final = 8 * 1024 * 1024
MAX_CHUNK_STREAMS: Final = 64  # OBS and ffmpeg use fewer than ten

_EXTENDED: Final = 0xFFFFFF
_HEADER_SIZES: Final = (11, 7, 3, 0)
_U32 = struct.Struct(">I")
_LE32 = struct.Struct("<I")


class MessageType:
    """RTMP message type ids (RTMP spec 5.4 and 7.1)."""

    SET_CHUNK_SIZE: Final = 1
    ABORT: Final = 2
    ACKNOWLEDGEMENT: Final = 3
    USER_CONTROL: Final = 4
    WINDOW_ACK_SIZE: Final = 5
    SET_PEER_BANDWIDTH: Final = 6
    AUDIO: Final = 8
    VIDEO: Final = 9
    DATA_AMF3: Final = 15
    SHARED_OBJECT_AMF3: Final = 16
    COMMAND_AMF3: Final = 17
    DATA_AMF0: Final = 18
    SHARED_OBJECT_AMF0: Final = 19
    COMMAND_AMF0: Final = 20
    AGGREGATE: Final = 22


@dataclass(frozen=True, slots=True)
class Message:
    """One reassembled RTMP message; `timestamp` is absolute, in milliseconds, modulo 2**32."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


class ChunkError(ValueError):
    """The peer broke the chunk stream protocol or one of our limits."""


class _ChunkStream:
    """Header state of one chunk stream id, which later headers compress against."""

    __slots__ = ("extended", "length", "partial", "stream_id", "timestamp", "ts_field", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.ts_field = 0  # last timestamp/delta field, which a fmt 3 message header repeats
        self.extended = False
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.partial: bytearray | None = None


def check_chunk_size(size: int) -> int:
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise ChunkError(f"chunk size {size} out of range 1..{MAX_CHUNK_SIZE}")
    return size


class ChunkReader:
    """Incremental chunk parser: `feed(data)` returns the messages completed by `data`.

    Set Chunk Size and Abort are applied here because they change how the following bytes
    parse; they are also returned so the caller can log them.
    """

    def __init__(
        self,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        max_chunk_streams: int = MAX_CHUNK_STREAMS,
        max_pending: int | None = None,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        # Two messages in flight at once (a keyframe and an audio frame) is normal; more
        # unfinished data than two maximal messages is not.
        self.max_pending = 2 * max_message_size if max_pending is None else max_pending
        self._streams: dict[int, _ChunkStream] = {}
        self._buf = bytearray()
        self._pending = 0
        self._offset = 0  # stream offset of _buf[0], for error messages

    @property
    def buffered(self) -> int:
        """Bytes held: the unparsed tail plus unfinished messages."""
        return len(self._buf) + self._pending

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        buf = self._buf
        buf += data
        out: list[Message] = []
        pos = 0
        try:
            with memoryview(buf) as view:
                pos = self._parse(buf, view, out)
        finally:
            # Resizing is only allowed once the memoryview is released.
            del buf[:pos]
            self._offset += pos
        return out

    def _error(self, pos: int, text: str) -> ChunkError:
        return ChunkError(f"{text} (stream offset {self._offset + pos})")

    def _parse(self, buf: bytearray, view: memoryview, out: list[Message]) -> int:
        streams = self._streams
        n = len(buf)
        pos = 0
        while pos < n:
            b0 = buf[pos]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            hpos = pos + 1
            if csid == 0:
                if n < pos + 2:
                    break
                csid = 64 + buf[pos + 1]
                hpos = pos + 2
            elif csid == 1:
                if n < pos + 3:
                    break
                csid = 64 + buf[pos + 1] + (buf[pos + 2] << 8)
                hpos = pos + 3
            p = hpos + _HEADER_SIZES[fmt]
            if n < p:
                break
            state = streams.get(csid)
            if state is None:
                if fmt != 0:
                    raise self._error(pos, f"fmt {fmt} chunk on new chunk stream {csid}")
                if len(streams) >= self.max_chunk_streams:
                    raise self._error(pos, f"more than {self.max_chunk_streams} chunk streams")
                state = _ChunkStream()
                streams[csid] = state

            if fmt == 3:
                extended = state.extended
                ts_field = state.ts_field
                if extended:
                    # Some muxers omit the repeated extended timestamp on fmt 3 chunks; accept
                    # it only when it matches, as SRS does, and otherwise treat it as payload.
                    if n < p + 4:
                        break
                    if _U32.unpack_from(buf, p)[0] == ts_field:
                        p += 4
                if state.partial is not None:
                    timestamp = state.timestamp
                else:
                    timestamp = (state.timestamp + ts_field) & 0xFFFFFFFF
                length = state.length
                type_id = state.type_id
                stream_id = state.stream_id
            else:
                if state.partial is not None:
                    raise self._error(
                        pos,
                        f"fmt {fmt} header on chunk stream {csid} in the middle of a message "
                        f"({len(state.partial)} of {state.length} bytes received)",
                    )
                ts_field = _U32.unpack_from(buf, hpos - 1)[0] & 0xFFFFFF
                if fmt != 2:
                    length = _U32.unpack_from(buf, hpos + 2)[0] & 0xFFFFFF
                    type_id = buf[hpos + 6]
                    stream_id = _LE32.unpack_from(buf, hpos + 7)[0] if fmt == 0 else state.stream_id
                    if length > self.max_message_size:
                        raise self._error(
                            pos,
                            f"message of {length} bytes on chunk stream {csid} exceeds the "
                            f"{self.max_message_size}-byte limit",
                        )
                else:
                    length = state.length
                    type_id = state.type_id
                    stream_id = state.stream_id
                extended = ts_field == _EXTENDED
                if extended:
                    if n < p + 4:
                        break
                    ts_field = _U32.unpack_from(buf, p)[0]
                    p += 4
                timestamp = ts_field if fmt == 0 else (state.timestamp + ts_field) & 0xFFFFFFFF

            partial = state.partial
            received = 0 if partial is None else len(partial)
            take = length - received
            if take > self.chunk_size:
                take = self.chunk_size
            end = p + take
            if n < end:
                break

            # The whole chunk is here: commit the header state, then the payload.
            state.timestamp = timestamp
            state.ts_field = ts_field
            state.extended = extended
            state.length = length
            state.type_id = type_id
            state.stream_id = stream_id
            pos = end
            if received + take == length:
                if partial is None:
                    payload = bytes(view[p:end])
                else:
                    partial += view[p:end]
                    payload = bytes(partial)
                    self._pending -= received
                    state.partial = None
                message = Message(type_id, stream_id, timestamp, payload)
                if type_id in (MessageType.SET_CHUNK_SIZE, MessageType.ABORT):
                    self._control(message, pos)
                out.append(message)
            else:
                if partial is None:
                    partial = state.partial = bytearray()
                partial += view[p:end]
                self._pending += take
                if self._pending > self.max_pending:
                    raise self._error(
                        pos, f"more than {self.max_pending} bytes held in unfinished messages"
                    )
        return pos

    def _control(self, message: Message, pos: int) -> None:
        if len(message.payload) < 4:
            raise self._error(pos, f"message type {message.type_id} with a short payload")
        value = _U32.unpack_from(message.payload)[0]
        if message.type_id == MessageType.SET_CHUNK_SIZE:
            try:
                self.chunk_size = check_chunk_size(value)
            except ChunkError as exc:
                raise self._error(pos, f"Set Chunk Size refused: {exc}") from None
        else:
            stream = self._streams.get(value)
            if stream is not None and stream.partial is not None:
                self._pending -= len(stream.partial)
                stream.partial = None


class _WriterState:
    __slots__ = ("length", "stream_id", "timestamp", "ts_field", "type_id")

    def __init__(self, message: Message, timestamp: int, ts_field: int) -> None:
        self.stream_id = message.stream_id
        self.type_id = message.type_id
        self.length = len(message.payload)
        self.timestamp = timestamp
        self.ts_field = ts_field


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes((fmt << 6 | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= 65599:
        return bytes((fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))
    raise ValueError(f"chunk stream id {csid} out of range 2..65599")


def default_chunk_stream(type_id: int) -> int:
    """Chunk stream 2 for protocol control, as the spec requires; 3 for everything else."""
    return 2 if type_id <= MessageType.SET_PEER_BANDWIDTH else 3


class ChunkWriter:
    """Serialise messages into chunks of `chunk_size` (announce it with Set Chunk Size first).

    Headers are compressed (fmt 1-3) against the previous message on the same chunk stream,
    exactly as the reader expands them.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = check_chunk_size(chunk_size)
        self._last: dict[int, _WriterState] = {}

    def write(self, message: Message, chunk_stream_id: int | None = None) -> bytes:
        csid = default_chunk_stream(message.type_id) if chunk_stream_id is None else chunk_stream_id
        payload = message.payload
        length = len(payload)
        if length > 0xFFFFFF:
            raise ValueError(f"message of {length} bytes does not fit the 24-bit length field")
        timestamp = message.timestamp & 0xFFFFFFFF
        last = self._last.get(csid)
        delta = -1 if last is None else timestamp - last.timestamp
        if last is None or delta < 0 or last.stream_id != message.stream_id:
            fmt, ts_field = 0, timestamp
        elif last.type_id != message.type_id or last.length != length:
            fmt, ts_field = 1, delta
        elif delta != last.ts_field:
            fmt, ts_field = 2, delta
        else:
            fmt, ts_field = 3, delta
        extended = ts_field >= _EXTENDED
        ext = _U32.pack(ts_field) if extended else b""
        field = (_EXTENDED if extended else ts_field).to_bytes(3, "big")
        header = _basic_header(fmt, csid)
        if fmt <= 1:
            field += length.to_bytes(3, "big") + bytes((message.type_id,))
        if fmt == 0:
            field += _LE32.pack(message.stream_id)
        out = bytearray(header)
        if fmt < 3:
            out += field
        out += ext
        continuation = _basic_header(3, csid) + ext
        size = self.chunk_size
        out += payload[:size]
        for start in range(size, length, size):
            out += continuation
            out += payload[start : start + size]
        self._last[csid] = _WriterState(message, timestamp, ts_field)
        return bytes(out)
