"""RTMP ingest: pure protocol modules (handshake, chunk, AMF0, messages, stream keys) and the
asyncio server that owns the sockets.

The server needs two things from the core, declared in `interfaces`: a `PublishAuthority` that
grants or refuses a stream key, and the `MediaSink` a grant carries.
"""

from .chunk import ChunkError, ChunkReader, ChunkWriter, Message, MessageType
from .connection import RtmpConnection
from .interfaces import MediaSink, PublishAuthority, Publisher, PublishGrant, PublishRequest
from .server import RtmpServer, RtmpServerConfig
from .streamkey import mask_key

__all__ = [
    "ChunkError",
    "ChunkReader",
    "ChunkWriter",
    "MediaSink",
    "Message",
    "MessageType",
    "PublishAuthority",
    "PublishGrant",
    "PublishRequest",
    "Publisher",
    "RtmpConnection",
    "RtmpServer",
    "RtmpServerConfig",
    "mask_key",
]
