"""One publish fanned out to many outputs, each at its own pace.

``Source`` turns what an ingest hands over (FLV-shaped audio, video and data messages) into
``Tag`` items with timestamps that stay continuous across encoder reconnects, and remembers the
codec headers a late or reconnecting output needs first.

Each output reads from its own ``Feed``, a bounded queue. An output that falls behind (a
stalled platform, a slow disk) loses its backlog and resumes at the next keyframe; it never
slows the publisher or the other outputs.

An output that has caught up can take tags as they come instead (``Feed.deliver_directly``):
a relay then writes each tag to its socket from the ingest's own call, with no task woken per
tag. That is most of what a relay costs in Python (see docs/benchmarks.md); the queue takes
over whenever the output's transport backs up, so a slow output still never slows the
publisher.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ingest.flv import TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, FlvError, parse_audio_tag, parse_video_tag

__all__ = [
    "END_OF_STREAM",
    "NEW_SOURCE",
    "Deliver",
    "EndOfStream",
    "Fanout",
    "Feed",
    "Item",
    "NewSource",
    "Source",
    "Tag",
]

log = logging.getLogger("livebase.ingest.fanout")

DEFAULT_FEED_BYTES: Final = 8 * 1024 * 1024  # ~10 s of a 6 Mbit/s stream


@dataclass(frozen=True, slots=True)
class Tag:
    kind: int  # TAG_AUDIO, TAG_VIDEO or TAG_SCRIPT (equal to the RTMP message type)
    timestamp: int  # milliseconds, continuous across reconnects
    payload: bytes
    keyframe: bool = False  # a video random-access point
    header: bool = False  # a codec sequence header or the metadata


class NewSource:
    """Marker in a feed: the encoder (re)connected; codec parameters may have changed."""

    def __repr__(self) -> str:
        return "NEW_SOURCE"


NEW_SOURCE: Final = NewSource()


class EndOfStream:
    """Marker in a feed: the session is over; finish what was written and stop."""

    def __repr__(self) -> str:
        return "END_OF_STREAM"


END_OF_STREAM: Final = EndOfStream()
Item = Tag | NewSource | EndOfStream
Deliver = Callable[[Tag], bool]
"""Takes one tag at once (True), or declines it (False: the output's transport is backed up)."""


class Source:
    """Classifies incoming media and keeps timestamps monotonic over reconnects. Pure."""

    def __init__(self) -> None:
        self.metadata: Tag | None = None
        self.video_header: Tag | None = None
        self.audio_header: Tag | None = None
        self.generation = 0
        self._offset = 0
        self._last_out = -1
        self._rebase = True
        self.video_codec = ""
        self.audio_codec = ""

    def begin_publish(self) -> None:
        """A new publish starts (first, or after a reconnect): its timestamps restart."""
        self.generation += 1
        self.metadata = self.video_header = self.audio_header = None
        self._rebase = True

    def init_tags(self) -> list[Tag]:
        return [t for t in (self.metadata, self.video_header, self.audio_header) if t]

    def accept(self, kind: int, timestamp: int, payload: bytes) -> Tag | None:
        """The tag to fan out, or None for a message no output wants (empty, unknown)."""
        if not payload or kind not in (TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT):
            return None
        if self._rebase:
            # Continue just after the last tag sent, whatever the encoder's clock says.
            self._offset = self._last_out + 1 - timestamp
            self._rebase = False
        out = max(timestamp + self._offset, 0)
        self._last_out = max(self._last_out, out)
        keyframe = header = False
        try:
            if kind == TAG_VIDEO:
                info = parse_video_tag(payload)
                keyframe, header = info.is_keyframe, info.is_sequence_header
                self.video_codec = info.codec or self.video_codec
            elif kind == TAG_AUDIO:
                audio = parse_audio_tag(payload)
                header = audio.is_sequence_header
                self.audio_codec = audio.codec or self.audio_codec
            else:
                header = b"onMetaData" in payload[:16]
        except FlvError:
            return None  # a tag we cannot classify would corrupt every output's stream
        tag = Tag(kind, out, payload, keyframe, header)
        if header:
            if kind == TAG_VIDEO:
                self.video_header = tag
            elif kind == TAG_AUDIO:
                self.audio_header = tag
            else:
                self.metadata = tag
        return tag


class Feed:
    """A bounded queue for one output. Overflow drops the backlog and waits for a keyframe."""

    def __init__(
        self,
        name: str,
        max_bytes: int = DEFAULT_FEED_BYTES,
        init: Callable[[], list[Tag]] = list,
    ) -> None:
        self.name = name
        self._init = init
        self.max_bytes = max_bytes
        self._items: collections.deque[Item] = collections.deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._deliver: Deliver | None = None
        self._awaiting_keyframe = True
        self.dropped = 0  # tags lost to overflow, for stats and logs
        self.overflows = 0

    def put(self, tag: Tag) -> None:
        if self._awaiting_keyframe:
            if tag.header:
                self._offer(tag)
                return
            if not (tag.kind == TAG_VIDEO and tag.keyframe):
                self.dropped += 1
                return
            self._awaiting_keyframe = False
        if self._bytes + len(tag.payload) > self.max_bytes:
            self.dropped += sum(1 for i in self._items if isinstance(i, Tag))
            self.overflows += 1
            self._items.clear()
            self._bytes = 0
            self._awaiting_keyframe = True
            self.put(tag)
            return
        self._offer(tag)

    def _offer(self, tag: Tag) -> None:
        deliver = self._deliver
        if deliver is not None:
            try:
                if deliver(tag):
                    return
            except Exception:
                # The output's own task meets the same tag from the queue and fails there,
                # retried like any other failure; the publisher must not see it.
                log.exception("%s: taking a tag directly failed", self.name)
        self._append(tag)

    def _append(self, item: Item) -> None:
        # Anything queued ends direct delivery, so tags keep their order: the consumer wakes,
        # empties the queue, and may ask for direct delivery again.
        self._deliver = None
        self._items.append(item)
        if isinstance(item, Tag):
            self._bytes += len(item.payload)
        self._ready.set()

    def deliver_directly(self, deliver: Deliver) -> bool:
        """Hand the following tags to ``deliver`` as they are put, until it declines one or a
        marker comes; both are queued and wake ``get()``. Refused (False) while items are
        queued: take those first."""
        if self._items:
            return False
        self._deliver = deliver
        return True

    def stop_direct(self) -> None:
        self._deliver = None

    def unget(self, items: list[Item]) -> None:
        """Put items taken with ``get()`` back in front, in order (an output looked ahead)."""
        self._deliver = None
        self._items.extendleft(reversed(items))
        self._bytes += sum(len(i.payload) for i in items if isinstance(i, Tag))
        if items:
            self._ready.set()

    def new_source(self) -> None:
        self._append(NEW_SOURCE)
        self._awaiting_keyframe = True

    def end(self) -> None:
        self._append(END_OF_STREAM)

    def rewind(self) -> None:
        """Start over from the source's current codec headers (an output restarted)."""
        self.restart(self._init())

    def restart(self, init: list[Tag]) -> None:
        """Start over (the output reconnected): headers first, media from the next keyframe."""
        self._deliver = None
        self._items.clear()
        self._bytes = 0
        self._awaiting_keyframe = True
        for tag in init:
            self._append(tag)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    async def get(self) -> Item:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, Tag):
            self._bytes -= len(item.payload)
        return item

    def get_nowait(self) -> Item | None:
        if not self._items:
            return None
        item = self._items.popleft()
        if isinstance(item, Tag):
            self._bytes -= len(item.payload)
        return item


class Fanout:
    """The source and the feeds of one live session."""

    def __init__(self) -> None:
        self.source = Source()
        self.feeds: dict[str, Feed] = {}

    def attach(self, name: str, max_bytes: int = DEFAULT_FEED_BYTES) -> Feed:
        feed = Feed(name, max_bytes, self.source.init_tags)
        feed.rewind()
        self.feeds[name] = feed
        return feed

    def detach(self, name: str) -> None:
        self.feeds.pop(name, None)

    def begin_publish(self) -> None:
        first = self.source.generation == 0
        self.source.begin_publish()
        if not first:
            for feed in self.feeds.values():
                feed.new_source()

    def push(self, kind: int, timestamp: int, payload: bytes) -> Tag | None:
        tag = self.source.accept(kind, timestamp, payload)
        if tag is not None:
            for feed in self.feeds.values():
                feed.put(tag)
        return tag
