"""ffmpeg argument lists, built with ffmpeg-python, with the options every child must have.

No user-controlled string becomes an option: URLs are validated before they get here, and each
process is limited to the protocols it needs (``-protocol_whitelist``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ffmpeg

__all__ = ["GLOBAL_ARGS", "compile_args"]

GLOBAL_ARGS: tuple[str, ...] = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")


def compile_args(stream: Any, binary: str, extra_global: Sequence[str] = ()) -> list[str]:
    """``[binary, global options…, inputs and outputs…]``.

    ffmpeg-python appends global options after the outputs, where ffmpeg may ignore them, so
    they are put first here.
    """
    compiled: list[str] = stream.compile(cmd=binary)
    return [compiled[0], *GLOBAL_ARGS, *extra_global, *compiled[1:]]


def flv_stdin(**options: Any) -> Any:
    """The pipeline's FLV on stdin, with the protocols a child may open limited to pipes and
    plain files (``options`` are extra input options)."""
    return ffmpeg.input("pipe:0", f="flv", protocol_whitelist="pipe,file", **options)
