"""Protocol control messages, user control events and the commands an ingest server exchanges.

Pure builders and parsers over `Message`. Status codes follow what publishers act on: librtmp
(inside OBS) and GStreamer treat `NetStream.Publish.Denied` as "permission denied", and every
server uses `NetStream.Publish.BadName` for a name that cannot be published. ffmpeg prints the
description of any status whose level is "error", so descriptions are written for people.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from ingest.flv import iter_tags

from .amf0 import UNDEFINED, AMFError, AMFValue, decode_all, encode_all
from .chunk import Message, MessageType

__all__ = [
    "AckCounter",
    "Command",
    "CommandError",
    "Status",
    "UserControl",
    "acknowledgement",
    "command",
    "connect_result",
    "create_stream_result",
    "empty_result",
    "on_status",
    "parse_command",
    "parse_u32",
    "parse_user_control",
    "ping_response",
    "set_chunk_size",
    "set_peer_bandwidth",
    "split_aggregate",
    "stream_begin",
    "stream_eof",
    "window_ack_size",
]

_U32 = struct.Struct(">I")
_EVENT = struct.Struct(">HI")

# What FMS answered; some clients gate features on the version string, none on anything newer.
FMS_VERSION: Final = "FMS/3,0,1,123"
FMS_CAPABILITIES: Final = 31.0
PEER_BANDWIDTH_DYNAMIC: Final = 2


class Status:
    """`onStatus` / `_result` info codes."""

    CONNECT_SUCCESS: Final = "NetConnection.Connect.Success"
    CONNECT_REJECTED: Final = "NetConnection.Connect.Rejected"
    PUBLISH_START: Final = "NetStream.Publish.Start"
    PUBLISH_BAD_NAME: Final = "NetStream.Publish.BadName"
    PUBLISH_DENIED: Final = "NetStream.Publish.Denied"
    UNPUBLISH_SUCCESS: Final = "NetStream.Unpublish.Success"
    PLAY_FAILED: Final = "NetStream.Play.Failed"


class UserControl:
    """User control event types (RTMP spec 7.1.7)."""

    STREAM_BEGIN: Final = 0
    STREAM_EOF: Final = 1
    STREAM_DRY: Final = 2
    SET_BUFFER_LENGTH: Final = 3
    STREAM_IS_RECORDED: Final = 4
    PING_REQUEST: Final = 6
    PING_RESPONSE: Final = 7


class CommandError(ValueError):
    """A command message that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    transaction_id: float
    command_object: AMFValue
    arguments: list[AMFValue] = field(default_factory=list)
    stream_id: int = 0

    def argument(self, index: int) -> AMFValue:
        return self.arguments[index] if index < len(self.arguments) else None


def _control(type_id: int, payload: bytes) -> Message:
    return Message(type_id, 0, 0, payload)


def set_chunk_size(size: int) -> Message:
    return _control(MessageType.SET_CHUNK_SIZE, _U32.pack(size))


def acknowledgement(sequence: int) -> Message:
    return _control(MessageType.ACKNOWLEDGEMENT, _U32.pack(sequence & 0xFFFFFFFF))


def window_ack_size(size: int) -> Message:
    return _control(MessageType.WINDOW_ACK_SIZE, _U32.pack(size))


def set_peer_bandwidth(size: int, limit_type: int = PEER_BANDWIDTH_DYNAMIC) -> Message:
    return _control(MessageType.SET_PEER_BANDWIDTH, _U32.pack(size) + bytes((limit_type,)))


def _user_control(event: int, value: int) -> Message:
    return _control(MessageType.USER_CONTROL, _EVENT.pack(event, value & 0xFFFFFFFF))


def stream_begin(stream_id: int) -> Message:
    return _user_control(UserControl.STREAM_BEGIN, stream_id)


def stream_eof(stream_id: int) -> Message:
    return _user_control(UserControl.STREAM_EOF, stream_id)


def ping_response(timestamp: int) -> Message:
    return _user_control(UserControl.PING_RESPONSE, timestamp)


def parse_u32(message: Message) -> int:
    """The single 32-bit field of Acknowledgement, Window Ack Size or Set Peer Bandwidth."""
    if len(message.payload) < 4:
        raise ValueError(
            f"message type {message.type_id} needs 4 bytes, got {len(message.payload)}"
        )
    value: int = _U32.unpack_from(message.payload)[0]
    return value


def parse_user_control(message: Message) -> tuple[int, int]:
    """(event type, first 32-bit value); Set Buffer Length's second value is not needed here."""
    if len(message.payload) < 6:
        raise ValueError(f"user control message needs 6 bytes, got {len(message.payload)}")
    event, value = _EVENT.unpack_from(message.payload)
    return event, value


def command(
    name: str,
    transaction_id: float,
    command_object: AMFValue,
    *arguments: AMFValue,
    stream_id: int = 0,
) -> Message:
    payload = encode_all(name, transaction_id, command_object, *arguments)
    return Message(MessageType.COMMAND_AMF0, stream_id, 0, payload)


def parse_command(message: Message) -> Command:
    payload = message.payload
    if message.type_id == MessageType.COMMAND_AMF3:
        # An AMF3 command starts with a format byte and then, from every encoder we know of,
        # carries plain AMF0 values.
        payload = payload[1:]
    elif message.type_id != MessageType.COMMAND_AMF0:
        raise CommandError(f"message type {message.type_id} is not a command")
    try:
        values = decode_all(payload)
    except AMFError as exc:
        raise CommandError(f"malformed command: {exc}") from None
    if len(values) < 2:
        raise CommandError(f"command has {len(values)} values, need at least a name and an id")
    name, transaction_id = values[0], values[1]
    if not isinstance(name, str):
        raise CommandError(f"command name is {type(name).__name__}, not a string")
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, float):
        raise CommandError(f"transaction id of {name!r} is {type(transaction_id).__name__}")
    command_object = values[2] if len(values) > 2 else None
    return Command(name, transaction_id, command_object, values[3:], message.stream_id)


def connect_result(transaction_id: float, object_encoding: float = 0.0) -> Message:
    return command(
        "_result",
        transaction_id,
        {"fmsVer": FMS_VERSION, "capabilities": FMS_CAPABILITIES, "mode": 1.0},
        {
            "level": "status",
            "code": Status.CONNECT_SUCCESS,
            "description": "Connection succeeded.",
            "objectEncoding": object_encoding,
        },
    )


def create_stream_result(transaction_id: float, stream_id: int) -> Message:
    return command("_result", transaction_id, None, float(stream_id))


def empty_result(transaction_id: float) -> Message:
    """The reply FMS gives to releaseStream and FCPublish; some encoders wait for it."""
    return command("_result", transaction_id, None, UNDEFINED)


def on_status(stream_id: int, level: str, code: str, description: str) -> Message:
    info: dict[str, AMFValue] = {"level": level, "code": code, "description": description}
    return command("onStatus", 0.0, None, info, stream_id=stream_id)


def split_aggregate(message: Message) -> list[Message]:
    """Expand an Aggregate message (type 22), whose body is a run of FLV tags, rebasing the
    tags' timestamps onto the aggregate's own as RTMP spec 7.1.6 requires."""
    tags = list(iter_tags(message.payload, file=False))
    if not tags:
        return []
    base = tags[0].timestamp
    return [
        Message(
            tag.tag_type,
            message.stream_id,
            (message.timestamp + tag.timestamp - base) & 0xFFFFFFFF,
            tag.payload,
        )
        for tag in tags
    ]


class AckCounter:
    """Counts received bytes and says when an Acknowledgement is due (RTMP spec 5.4.3).

    The sequence number is the total received, modulo 2**32 as the field is 32 bits wide.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.total = 0
        self._acked = 0

    def received(self, count: int) -> int | None:
        self.total += count
        if self.window <= 0 or self.total - self._acked < self.window:
            return None
        self._acked = self.total
        return self.total & 0xFFFFFFFF
