"""AMF0 encoding and decoding, as RTMP commands and FLV script data use it.

Pure and synchronous. Decoding is strict: every malformed input raises `AMFError` naming the byte
offset, because the payloads come straight from untrusted sockets and a vague error is useless in
a log line. Nesting is bounded so a hostile payload cannot exhaust the interpreter's stack.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "MAX_DEPTH",
    "UNDEFINED",
    "AMFDate",
    "AMFError",
    "AMFValue",
    "ECMAArray",
    "Undefined",
    "decode",
    "decode_all",
    "encode",
    "encode_all",
]

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

# Markers that are valid AMF0 but that no RTMP publisher sends; naming them makes the error
# message say "unsupported" rather than "unknown", which is the more useful hint.
_UNSUPPORTED: Final = {
    0x04: "movieclip",
    0x07: "reference",
    0x0D: "unsupported",
    0x0E: "recordset",
    0x0F: "XML document",
    0x10: "typed object",
    0x11: "AVM+ (AMF3) switch",
}

MAX_DEPTH: Final = 32

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class AMFError(ValueError):
    """Malformed or unsupported AMF0 data."""


class Undefined:
    """The AMF0 `undefined` value, distinct from `null` (None) so that round trips are exact."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class ECMAArray(dict[str, "AMFValue"]):
    """An associative array (marker 0x08); a plain dict encodes as an anonymous object (0x03)."""


@dataclass(frozen=True, slots=True)
class AMFDate:
    """Milliseconds since the Unix epoch (UTC) plus the reserved time-zone field, kept verbatim."""

    milliseconds: float
    timezone: int = 0


AMFValue: TypeAlias = (
    float | bool | str | Undefined | AMFDate | dict[str, "AMFValue"] | list["AMFValue"] | None
)


def encode(value: AMFValue) -> bytes:
    """Encode one value."""
    out = bytearray()
    _encode_into(out, value, 0)
    return bytes(out)


def encode_all(*values: AMFValue) -> bytes:
    """Encode a sequence of values back to back, as a command or data message body."""
    out = bytearray()
    for value in values:
        _encode_into(out, value, 0)
    return bytes(out)


def decode(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[AMFValue, int]:
    """Decode one value at `offset`; return it and the offset just past it."""
    return _Decoder(memoryview(data).cast("B")).value(offset, 0)


def decode_all(data: bytes | bytearray | memoryview) -> list[AMFValue]:
    """Decode every value in `data`; trailing partial values are an error."""
    decoder = _Decoder(memoryview(data).cast("B"))
    values: list[AMFValue] = []
    offset = 0
    while offset < len(decoder.data):
        value, offset = decoder.value(offset, 0)
        values.append(value)
    return values


def _encode_string_body(out: bytearray, raw: bytes) -> None:
    out += _U16.pack(len(raw))
    out += raw


def _encode_properties(out: bytearray, props: dict[str, AMFValue], depth: int) -> None:
    for key, item in props.items():
        raw = key.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise AMFError(f"property name too long ({len(raw)} bytes, the limit is 65535)")
        _encode_string_body(out, raw)
        _encode_into(out, item, depth + 1)
    out += b"\x00\x00\x09"


def _encode_into(out: bytearray, value: AMFValue, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AMFError(f"value nested deeper than {MAX_DEPTH} levels")
    # bool before number: bool is a subclass of int.
    if value is None:
        out.append(NULL)
    elif isinstance(value, Undefined):
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            _encode_string_body(out, raw)
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
            out += raw
    elif isinstance(value, ECMAArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_properties(out, value, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(out, value, depth)
    elif isinstance(value, list):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_into(out, item, depth + 1)
    elif isinstance(value, AMFDate):
        out.append(DATE)
        out += _DATE.pack(value.milliseconds, value.timezone)
    else:
        raise AMFError(f"cannot encode {type(value).__name__} as AMF0")


class _Decoder:
    __slots__ = ("data",)

    def __init__(self, data: memoryview) -> None:
        self.data = data

    def _need(self, offset: int, size: int, what: str) -> None:
        if offset + size > len(self.data):
            raise AMFError(
                f"truncated {what} at offset {offset}: need {size} bytes, "
                f"{len(self.data) - offset} left"
            )

    def _utf8(self, start: int, size: int, what: str) -> str:
        self._need(start, size, what)
        try:
            return str(self.data[start : start + size], "utf-8")
        except UnicodeDecodeError as exc:
            raise AMFError(f"invalid UTF-8 in {what} at offset {start + exc.start}") from None

    def _short_string(self, offset: int, what: str) -> tuple[str, int]:
        self._need(offset, 2, f"{what} length")
        (size,) = _U16.unpack_from(self.data, offset)
        return self._utf8(offset + 2, size, what), offset + 2 + size

    def value(self, offset: int, depth: int) -> tuple[AMFValue, int]:
        if depth > MAX_DEPTH:
            raise AMFError(f"value at offset {offset} nested deeper than {MAX_DEPTH} levels")
        self._need(offset, 1, "type marker")
        marker = self.data[offset]
        pos = offset + 1
        if marker == NUMBER:
            self._need(pos, 8, "number")
            return _DOUBLE.unpack_from(self.data, pos)[0], pos + 8
        if marker == BOOLEAN:
            self._need(pos, 1, "boolean")
            return self.data[pos] != 0, pos + 1
        if marker == STRING:
            return self._short_string(pos, "string")
        if marker == LONG_STRING:
            self._need(pos, 4, "long string length")
            (size,) = _U32.unpack_from(self.data, pos)
            return self._utf8(pos + 4, size, "long string"), pos + 4 + size
        if marker == NULL:
            return None, pos
        if marker == UNDEFINED_MARKER:
            return UNDEFINED, pos
        if marker == OBJECT:
            obj: dict[str, AMFValue] = {}
            return obj, self._properties(obj, pos, depth, offset)
        if marker == ECMA_ARRAY:
            # The count is only a hint (encoders get it wrong); the end marker is authoritative.
            self._need(pos, 4, "ECMA array count")
            array = ECMAArray()
            return array, self._properties(array, pos + 4, depth, offset)
        if marker == STRICT_ARRAY:
            return self._strict_array(pos, depth, offset)
        if marker == DATE:
            self._need(pos, 10, "date")
            millis, zone = _DATE.unpack_from(self.data, pos)
            return AMFDate(millis, zone), pos + 10
        if marker == OBJECT_END:
            raise AMFError(f"unexpected object end marker at offset {offset}")
        if marker in _UNSUPPORTED:
            raise AMFError(
                f"unsupported AMF0 type {_UNSUPPORTED[marker]} (0x{marker:02x}) at offset {offset}"
            )
        raise AMFError(f"unknown AMF0 type marker 0x{marker:02x} at offset {offset}")

    def _properties(self, into: dict[str, AMFValue], pos: int, depth: int, start: int) -> int:
        while True:
            self._need(pos, 2, f"property name length (object at offset {start})")
            if self.data[pos] == 0 and self.data[pos + 1] == 0:
                self._need(pos + 2, 1, f"object end marker (object at offset {start})")
                if self.data[pos + 2] != OBJECT_END:
                    raise AMFError(
                        f"empty property name without object end marker at offset {pos} "
                        f"(found 0x{self.data[pos + 2]:02x})"
                    )
                return pos + 3
            key, pos = self._short_string(pos, "property name")
            into[key], pos = self.value(pos, depth + 1)

    def _strict_array(self, pos: int, depth: int, start: int) -> tuple[AMFValue, int]:
        self._need(pos, 4, "strict array count")
        (count,) = _U32.unpack_from(self.data, pos)
        pos += 4
        # Every element takes at least one byte, so a larger count cannot be honest; checking
        # up front avoids looping billions of times on a forged count.
        if count > len(self.data) - pos:
            raise AMFError(
                f"strict array at offset {start} claims {count} elements "
                f"but only {len(self.data) - pos} bytes remain"
            )
        items: list[AMFValue] = []
        for _ in range(count):
            item, pos = self.value(pos, depth + 1)
            items.append(item)
        return items, pos
