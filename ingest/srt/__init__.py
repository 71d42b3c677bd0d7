"""SRT: ingest from encoders (OBS, Larix, hardware) and the socket layer the SRT push output
shares. libsrt is bound with ctypes (``libsrt``); its blocking calls run on a thread per
socket (``thread``); the stream-id grammar is pure (``streamid``); ``server`` owns the
listening socket and ``publish`` one caller's media, remuxed to FLV by ffmpeg."""

from .libsrt import LibSrt, SrtError, SrtUnavailable, libsrt
from .publish import PublishRegistry, SrtPublish, SrtSink
from .server import SrtServer
from .streamid import AccessReject, PublishTarget, StreamIdError, parse_stream_id

__all__ = [
    "AccessReject",
    "LibSrt",
    "PublishRegistry",
    "PublishTarget",
    "SrtError",
    "SrtPublish",
    "SrtServer",
    "SrtSink",
    "SrtUnavailable",
    "StreamIdError",
    "libsrt",
    "parse_stream_id",
]
