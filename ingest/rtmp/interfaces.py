"""What the RTMP server needs from the core, and what it hands over.

The server owns sockets and the protocol; whether a key may publish, and where the media goes,
belongs to the core's registry of rooms and live sessions. These Protocols are the whole
contract, so the core can be faked with a few callables in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .amf0 import AMFValue
from .chunk import Message

__all__ = ["MediaSink", "PublishAuthority", "PublishGrant", "PublishRequest", "Publisher"]


class Publisher(Protocol):
    """A live publishing connection, so the core can end it (a takeover, a revoked key)."""

    @property
    def connection_id(self) -> int: ...

    @property
    def peer(self) -> str: ...

    def close(self, reason: str) -> None:
        """End the connection soon; the sink's `on_end` receives `reason`. Never blocks."""


@dataclass(frozen=True, slots=True)
class PublishRequest:
    app: str
    stream_key: str  # secret: log only `ingest.rtmp.streamkey.mask_key(stream_key)`
    peer: str  # "host:port" of the encoder
    publisher: Publisher
    query: str = ""  # what followed "?" in the stream name, for token schemes
    tc_url: str = ""
    encoder: str = ""  # the connect command's flashVer, e.g. "FMLE/3.0 (compatible; FMSc/1.0)"


class MediaSink(Protocol):
    """Receives one publish, in order. Calls are awaited one at a time per connection, so a
    slow sink slows only its own publisher (TCP pushes back), never other connections."""

    async def on_metadata(self, metadata: Mapping[str, AMFValue]) -> None:
        """The decoded `onMetaData` object (resolution, frame rate, encoder name)."""

    async def on_media(self, message: Message) -> None:
        """An audio (8), video (9) or AMF0 data (18) message, ready to become an FLV tag:
        `@setDataFrame` is already stripped, so `onMetaData` arrives here too, in order."""

    async def on_end(self, reason: str) -> None:
        """Called exactly once when the publish ends, for whatever reason."""


@dataclass(frozen=True, slots=True)
class PublishGrant:
    sink: MediaSink
    label: str = ""  # how logs name the session, e.g. the room id


class PublishAuthority(Protocol):
    async def authorize_publish(self, request: PublishRequest) -> PublishGrant | None:
        """A grant to start publishing, or None to refuse (unknown, wrong or revoked key)."""
