"""FLV read incrementally: bytes in as they arrive (from a pipe), complete tags out. Pure.

``ingest.flv.iter_tags`` reads a whole buffer; a remuxing ffmpeg writes FLV to a pipe in
pieces that end anywhere, so this reader keeps what does not yet make a whole tag. The checks
are those of the FLV specification (v10.1, annex E): the signature, version 1, a header of at
least 9 bytes, and each PreviousTagSize equal to the tag it follows.
"""

from __future__ import annotations

import struct
from typing import Final

from ingest.flv import FlvError, FlvTag

__all__ = ["FlvReader"]

_HEADER_SIZE: Final = 9
_TAG_HEADER_SIZE: Final = 11
_U32 = struct.Struct(">I")
_FILTER: Final = 0x20  # the tag body is encrypted (FLV "Filter" bit); never produced by ffmpeg


class FlvReader:
    """Feed bytes with ``feed``; each call returns the tags completed by them, in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_done = False
        self.has_audio = False
        self.has_video = False
        self.offset = 0  # stream position of the first byte not yet consumed, for messages

    @property
    def pending(self) -> int:
        """Bytes held back: part of a header or of a tag."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FlvTag]:
        self._buffer += data
        tags: list[FlvTag] = []
        pos = 0
        if not self._header_done:
            pos = self._header()
            if not self._header_done:
                return tags
        buffer, end = self._buffer, len(self._buffer)
        while end - pos >= _TAG_HEADER_SIZE:
            kind = buffer[pos]
            size = int.from_bytes(buffer[pos + 1 : pos + 4], "big")
            total = _TAG_HEADER_SIZE + size + 4
            if end - pos < total:
                break
            where = self.offset + pos
            if kind & _FILTER:
                raise FlvError(f"encrypted tag (filter bit set) at offset {where}")
            (back,) = _U32.unpack_from(buffer, pos + _TAG_HEADER_SIZE + size)
            if back != _TAG_HEADER_SIZE + size:
                raise FlvError(
                    f"previous tag size {back} at offset {where + _TAG_HEADER_SIZE + size} "
                    f"does not match tag size {_TAG_HEADER_SIZE + size}"
                )
            stamp = int.from_bytes(buffer[pos + 4 : pos + 7], "big") | (buffer[pos + 7] << 24)
            body = pos + _TAG_HEADER_SIZE
            tags.append(FlvTag(kind & 0x1F, stamp, bytes(buffer[body : body + size])))
            pos += total
        self._consume(pos)
        return tags

    def _header(self) -> int:
        """Read the file header and PreviousTagSize0 once whole; the bytes they took."""
        buffer = self._buffer
        probe = bytes(buffer[:4])
        if not b"FLV".startswith(probe[:3]):
            raise FlvError("missing FLV signature")
        if len(probe) == 4 and probe[3] != 1:
            raise FlvError(f"FLV version {probe[3]} is not 1")
        if len(buffer) < _HEADER_SIZE:
            return 0
        data_offset = int(_U32.unpack_from(buffer, 5)[0])
        if data_offset < _HEADER_SIZE:
            raise FlvError(f"FLV header size {data_offset} is less than {_HEADER_SIZE}")
        if len(buffer) < data_offset + 4:
            return 0
        (first,) = _U32.unpack_from(buffer, data_offset)
        if first != 0:
            raise FlvError(f"PreviousTagSize0 is {first}, not 0")
        self.has_audio = bool(buffer[4] & 0x04)
        self.has_video = bool(buffer[4] & 0x01)
        self._header_done = True
        return data_offset + 4

    def _consume(self, size: int) -> None:
        if size:
            del self._buffer[:size]
            self.offset += size

    def end(self) -> None:
        """The stream ended: raise if it stopped inside the header or a tag."""
        if not self._header_done:
            raise FlvError(f"FLV stream ended in its header ({len(self._buffer)} bytes)")
        if self._buffer:
            raise FlvError(
                f"FLV stream ended inside a tag at offset {self.offset} "
                f"({len(self._buffer)} bytes of it)"
            )
