"""Work out which application and stream key a publisher means, and mask keys for logs.

Encoders split the same URL differently. With server `rtmp://host/live` and stream key `KEY`,
OBS and ffmpeg send app `live` and publish name `KEY`. With the whole `rtmp://host/live/KEY` in
OBS's server field and an empty key, OBS sends app `live/KEY` and an empty publish name, while
ffmpeg given that URL sends app `live` and name `KEY`. Joining app and name and splitting the
result into exactly two segments treats all of them alike, as MediaMTX does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_KEY_LENGTH", "BadStreamName", "StreamPath", "mask_key", "split_publish_target"]

MAX_KEY_LENGTH: Final = 256


class BadStreamName(ValueError):
    """The publish target is not `APP/KEY`; the message is safe to show the publisher."""


@dataclass(frozen=True, slots=True)
class StreamPath:
    app: str
    key: str
    query: str = ""  # after "?", without it; encoders append tokens there


def _split_query(text: str) -> tuple[str, str]:
    path, _, query = text.partition("?")
    return path, query


def split_publish_target(app: str, publish_name: str) -> StreamPath:
    app_path, app_query = _split_query(app.strip())
    name, name_query = _split_query(publish_name.strip())
    segments = [part for part in (*app_path.split("/"), *name.split("/")) if part]
    if not segments:
        raise BadStreamName("no application name in the URL")
    if len(segments) == 1:
        # Not echoed: a lone segment is as likely a key pasted where the app belongs.
        raise BadStreamName("missing stream key (expected APP/KEY)")
    if len(segments) > 2:
        raise BadStreamName(
            f"expected APP/KEY but got {len(segments)} path segments "
            "(is the key in both the server URL and the key field?)"
        )
    key = segments[1]
    if len(key) > MAX_KEY_LENGTH:
        raise BadStreamName(f"stream key longer than {MAX_KEY_LENGTH} characters")
    if not key.isprintable() or " " in key:
        # Keys are tokens; anything else is a paste accident, and it would land in logs.
        raise BadStreamName("stream key contains spaces or control characters")
    return StreamPath(segments[0], key, name_query or app_query)


def mask_key(key: str) -> str:
    """A stream key as it may appear in logs: enough to tell keys apart, not to reuse one."""
    if len(key) <= 8:
        return "…"
    return key[:4] + "…"
