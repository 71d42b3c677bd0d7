"""The output that relays a live session to one platform destination."""

from __future__ import annotations

from collections.abc import Callable

from ingest.fanout import Feed, Tag
from ingest.outputs.base import Output, PermanentOutputError, StateListener
from ingest.outputs.rtmp_push import RtmpPushOutput
from ingest.outputs.srt_push import SrtPushOutput
from ingest.pipeline import DestinationSpec

__all__ = ["destination_output"]


class UnsupportedOutput(Output):
    """A destination this node cannot relay to: reported as failed, with the reason."""

    kind = "unsupported"

    def __init__(self, name: str, feed: Feed, reason: str, on_state: StateListener) -> None:
        super().__init__(name, feed, on_state)
        self.reason = reason

    async def session(self) -> None:
        raise PermanentOutputError(self.reason)


def destination_output(
    spec: DestinationSpec,
    name: str,
    feed: Feed,
    on_state: StateListener,
    init_tags: Callable[[], list[Tag]],
    *,
    ffmpeg: str = "",
) -> Output:
    if spec.protocol in ("rtmp", "rtmps"):
        try:
            return RtmpPushOutput(
                name, feed, spec.url, spec.stream_key, on_state, init_tags=init_tags
            )
        except ValueError as exc:  # the message is masked by the output's URL parser
            return UnsupportedOutput(name, feed, str(exc), on_state)
    if spec.protocol == "srt":
        try:
            return SrtPushOutput(
                name,
                feed,
                spec.url,
                spec.stream_key,
                on_state,
                init_tags=init_tags,
                ffmpeg_bin=ffmpeg,
            )
        except ValueError as exc:  # the SRT URL parser never quotes a secret
            return UnsupportedOutput(name, feed, str(exc), on_state)
    return UnsupportedOutput(
        name, feed, f"relaying over {spec.protocol} is not available on this node", on_state
    )
