"""Which stream key an SRT caller publishes with, from its stream id. Pure.

Encoders put the key in the stream id in several ways, all accepted here:

- the key alone, ``KEY``; or ``live/KEY`` (Larix and OBS users copy the RTMP path), or
  ``publish/live/KEY``;
- SRT Access Control syntax (Haivision's ``docs/features/access-control.md``), as SRS and
  MediaMTX read it: ``#!::r=live/KEY,m=publish`` (``r`` is the resource, in any of the forms
  above), or ``#!::r=BASE/ROOM,s=KEY,m=publish`` where ``s``, the session id, carries the key
  and ``r`` names the room it must open. ``u`` (user) and ``h`` (host) are accepted and
  ignored, as are keys of other vendors (Blackmagic's ``bmd_uuid``, …).

Livebase only ingests, so a missing ``m`` means publish; ``m=request`` (play) and
``m=bidirectional`` are refused. Refusals carry the SRT_REJX code a listener sends back to the
caller. Messages never quote the stream id: it holds the key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

__all__ = ["AccessReject", "PublishTarget", "StreamIdError", "parse_stream_id"]

STREAM_ID_MAX: Final = 512  # libsrt's limit
KEY_MAX: Final = 256
_APP: Final = "live"
_ACCESS_CONTROL: Final = "#!::"


class AccessReject(enum.IntEnum):
    """``SRT_REJX_*`` codes of libsrt's access_control.h that a listener sends to a caller."""

    BAD_REQUEST = 1400
    UNAUTHORIZED = 1401
    OVERLOAD = 1402
    FORBIDDEN = 1403
    NOTFOUND = 1404
    BAD_MODE = 1405
    CONFLICT = 1409
    NOTSUP_MEDIA = 1415
    LOCKED = 1423


class StreamIdError(ValueError):
    """The stream id names no key we can use; ``reject`` is the code for the caller."""

    def __init__(self, message: str, reject: AccessReject = AccessReject.BAD_REQUEST) -> None:
        super().__init__(message)
        self.reject = reject


@dataclass(frozen=True, slots=True)
class PublishTarget:
    key: str = field(repr=False)  # secret
    room: tuple[str, str] | None = None  # (base slug, room slug) when the stream id names one


def _check_key(key: str) -> str:
    if not key:
        raise StreamIdError("the stream id names no stream key")
    if len(key) > KEY_MAX:
        raise StreamIdError(f"stream key longer than {KEY_MAX} characters")
    return key


def _key_from_path(path: str) -> str:
    """``KEY``, ``live/KEY`` or ``publish/live/KEY``."""
    if path.endswith("/"):
        raise StreamIdError("the stream id ends with / where the stream key belongs")
    *prefix, key = [part for part in path.split("/") if part] or [""]
    if prefix not in ([], [_APP], ["publish", _APP]):
        raise StreamIdError(
            f"expected KEY, {_APP}/KEY or publish/{_APP}/KEY in the stream id, "
            f"not {len(prefix) + 1} path segments"
        )
    return _check_key(key)


def _pairs(content: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in content.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise StreamIdError("stream id: expected key=value pairs after #!::")
        if name in pairs:
            raise StreamIdError("stream id: a key is given twice")
        pairs[name] = value
    return pairs


def _access_control(content: str) -> PublishTarget:
    pairs = _pairs(content)
    mode = pairs.get("m", "publish")
    if mode in ("request", "bidirectional"):
        raise StreamIdError(
            f"this server only takes publishes (m=publish), not m={mode}", AccessReject.BAD_MODE
        )
    if mode != "publish":
        raise StreamIdError("stream id: m must be publish", AccessReject.BAD_MODE)
    if pairs.get("t", "stream") != "stream":
        raise StreamIdError("stream id: only t=stream is served", AccessReject.NOTSUP_MEDIA)
    resource = pairs.get("r", "")
    if "s" not in pairs:
        if not resource:
            raise StreamIdError("stream id: r (the stream key) is missing")
        return PublishTarget(_key_from_path(resource))
    key = _check_key(pairs["s"])
    segments = [part for part in resource.split("/") if part]
    if segments in ([], [_APP]):
        return PublishTarget(key)
    if len(segments) == 2:
        return PublishTarget(key, (segments[0], segments[1]))
    raise StreamIdError("stream id: with s=KEY, r must be BASE/ROOM (or left out)")


def parse_stream_id(raw: str) -> PublishTarget:
    """The key (and maybe the room) an SRT caller publishes to; ``StreamIdError`` if none."""
    if not raw:
        raise StreamIdError("no stream id: set it to the room's stream key")
    if len(raw) > STREAM_ID_MAX:
        raise StreamIdError(f"stream id longer than {STREAM_ID_MAX} characters")
    if not raw.isprintable() or any(ch.isspace() for ch in raw):
        # Keys are tokens; anything else is a paste accident, and it would land in logs.
        raise StreamIdError("stream id contains spaces or control characters")
    if raw.startswith(_ACCESS_CONTROL):
        return _access_control(raw[len(_ACCESS_CONTROL) :])
    if raw.startswith("#!"):
        raise StreamIdError("stream id: only the #!:: form of the access control syntax is read")
    return PublishTarget(_key_from_path(raw))
