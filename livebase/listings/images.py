"""Uploaded product images: decoded with Pillow before they are kept, stored by content hash.

A file is accepted only if Pillow identifies it as PNG, JPEG, WebP or GIF and decodes it whole:
a renamed text file, a truncated photo or a pixel bomb is refused with a message saying which.
The functions here block (decoding, file I/O); the API runs them on a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 MP: larger than any phone photo, small enough to decode safely
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"),
           "WEBP": ("webp", "image/webp"), "GIF": ("gif", "image/gif")}  # fmt: skip
URL_PREFIX = "/media/images/"


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, for the uploader."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    sha256: str
    extension: str
    content_type: str
    width: int
    height: int
    size_bytes: int

    @property
    def name(self) -> str:
        return f"{self.sha256}.{self.extension}"

    @property
    def url(self) -> str:
        return URL_PREFIX + self.name


def inspect(data: bytes) -> ImageInfo:
    """What the image is, or ``ImageRejected``."""
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageRejected(f"the image is larger than {MAX_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = img.format or "unknown"
            width, height = img.size
            if kind not in FORMATS:
                raise ImageRejected(f"{kind} images are not accepted; use PNG, JPEG, WebP or GIF")
            if width * height > MAX_PIXELS:
                raise ImageRejected(
                    f"the image is {width}×{height} pixels; at most {MAX_PIXELS} are accepted"
                )
            img.verify()
        # verify() checks structure only; decoding the pixels catches truncated files.
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except ImageRejected:
        raise
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            "the file is not an image: it is not a PNG, JPEG, WebP or GIF file"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError,
            IndexError, TypeError) as exc:  # fmt: skip
        raise ImageRejected(f"the image is damaged or incomplete: {exc}") from exc
    extension, content_type = FORMATS[kind]
    return ImageInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        extension=extension,
        content_type=content_type,
        width=width,
        height=height,
        size_bytes=len(data),
    )


def store(directory: Path, data: bytes) -> ImageInfo:
    """Check ``data`` and keep it as ``<directory>/<sha256>.<ext>`` (once per content)."""
    info = inspect(data)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / info.name
    if not target.exists():
        # Written aside and renamed, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return info


def stored(directory: Path, name: str) -> ImageInfo | None:
    """The stored image ``name`` (``<sha256>.<ext>``), or None if there is no such file."""
    path = directory / name
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    try:
        info = inspect(data)
    except ImageRejected:
        return None
    return info if info.name == name else None
