"""Where an SRT push goes, from a platform's ``srt://`` URL and stream key. Pure.

Platforms hand out URLs written for OBS and ffmpeg, so their parameters are read as ffmpeg
reads them: ``streamid``, ``passphrase``, ``pbkeylen``, ``latency`` (microseconds),
``connect_timeout`` (milliseconds), ``mode`` (only ``caller``: we call the platform) and
``transtype`` (only ``live``). Values are percent-decoded; a ``#`` belongs to the value (stream
ids in the access control syntax start with ``#!::``), not to a fragment. A non-empty stream
key is the stream id. Anything else is refused with a message that never quotes a secret,
because a parameter this code does not apply would be silently lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from livebase.credentials import mask_secrets

__all__ = ["SrtTarget", "parse_srt_target"]

STREAM_ID_MAX: Final = 512
_PARAMETERS: Final = frozenset(
    {"streamid", "passphrase", "pbkeylen", "latency", "connect_timeout", "mode", "transtype"}
)
_SHOWN_NAME = re.compile(r"^[a-z_]{1,24}$")  # a name safe to quote back (no pasted secret)
# ffmpeg and OBS take latency in microseconds, srt-live-transmit in milliseconds; no SRT link
# runs under 10 ms, so smaller values can only be milliseconds.
_MICROSECONDS_FROM: Final = 10_000


@dataclass(frozen=True, slots=True)
class SrtTarget:
    host: str
    port: int
    stream_id: str = field(default="", repr=False)  # secret: it usually carries the key
    passphrase: str = field(default="", repr=False)  # secret
    latency_ms: int | None = None
    pbkeylen: int | None = None
    connect_timeout_ms: int | None = None

    @property
    def masked_stream_id(self) -> str:
        """The last four characters of the stream id; short ones not even those."""
        return "…" + self.stream_id[-4:] if len(self.stream_id) >= 12 else "…"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"srt://{host}:{self.port}"
        return f"{where} (stream id {self.masked_stream_id})" if self.stream_id else where

    def scrub(self, text: str) -> str:
        """``text`` with the stream id and passphrase masked wherever they appear."""
        for secret, shown in ((self.stream_id, self.masked_stream_id), (self.passphrase, "…")):
            if len(secret) >= 4:
                text = text.replace(secret, shown)
        return mask_secrets(text)


def _integer(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"SRT URL parameter {name} must be a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"SRT URL parameter {name} must be between {low} and {high}")
    return number


def _query(query: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        name, sep, value = item.partition("=")
        name = name.lower()
        if not sep:
            raise ValueError("SRT URL has a parameter without a value (expected name=value)")
        if name not in _PARAMETERS:
            shown = repr(name) if _SHOWN_NAME.match(name) else "a parameter"
            known = ", ".join(sorted(_PARAMETERS))
            raise ValueError(f"SRT URL: {shown} is not supported (supported: {known})")
        if name in values:
            raise ValueError(f"SRT URL gives {name} twice")
        values[name] = unquote(value)
    return values


def _latency_ms(value: str) -> int:
    number = _integer("latency", value, 0, 60_000_000)
    return number // 1000 if number >= _MICROSECONDS_FROM else number


def parse_srt_target(url: str, stream_key: str = "") -> SrtTarget:
    """The platform's address and secrets; ``ValueError`` for a URL we cannot honour."""
    url, key = url.strip(), stream_key.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "srt":
        raise ValueError("SRT push URL must start with srt://")
    netloc, _, query = rest.partition("?")
    if "#" in netloc:
        raise ValueError("SRT push URL: put the stream id after ?streamid=")
    address, _, path = netloc.partition("/")
    if path.strip("/"):
        raise ValueError(
            "SRT URLs have no path: give the stream id as ?streamid=… or as the stream key"
        )
    if "@" in address:
        raise ValueError("SRT push URL cannot carry a user name or password before the host")
    try:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("SRT push URL is not a valid URL (check the host and port)") from None
    if not host:
        raise ValueError("SRT push URL has no host")
    if not port:
        raise ValueError("SRT push URL needs a port (srt://host:port)")
    values = _query(query)
    if values.get("mode", "caller") != "caller":
        raise ValueError("SRT push URL: mode must be caller (Livebase connects to the platform)")
    if values.get("transtype", "live") != "live":
        raise ValueError("SRT push URL: transtype must be live")
    stream_id = values.get("streamid", "")
    if key and stream_id and key != stream_id:
        raise ValueError("give the SRT stream id in the URL (?streamid=) or as the key, not both")
    stream_id = key or stream_id
    if len(stream_id) > STREAM_ID_MAX:
        raise ValueError(f"SRT stream id longer than {STREAM_ID_MAX} characters")
    if stream_id and not stream_id.isprintable():
        raise ValueError("SRT stream id contains control characters (a paste accident?)")
    passphrase = values.get("passphrase", "")
    if passphrase and not 10 <= len(passphrase) <= 79:
        raise ValueError("SRT passphrase must be 10 to 79 characters long")
    pbkeylen = None
    if "pbkeylen" in values:
        pbkeylen = _integer("pbkeylen", values["pbkeylen"], 0, 32)
        if pbkeylen not in (0, 16, 24, 32):
            raise ValueError("SRT URL parameter pbkeylen must be 16, 24 or 32")
    return SrtTarget(
        host=host,
        port=port,
        stream_id=stream_id,
        passphrase=passphrase,
        latency_ms=_latency_ms(values["latency"]) if "latency" in values else None,
        pbkeylen=pbkeylen,
        connect_timeout_ms=(
            _integer("connect_timeout", values["connect_timeout"], 100, 60_000)
            if "connect_timeout" in values
            else None
        ),
    )
