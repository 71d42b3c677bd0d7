"""The source rendition, muxed in process for H.264 + AAC, through ffmpeg for anything else.

Each session (a publish, or a restart after an error) first looks at the codec headers in
front of its first frame. H.264 (legacy FLV AVC) with AAC or no audio, what OBS and most
encoders send, goes through ``ingest.ts`` in this process: no child, no pipe, and the tags
are taken directly from the ingest's own call (``Feed.deliver_directly``) since muxing never
waits. Anything else (HEVC or AV1 over Enhanced RTMP, MP3 audio…) runs ``HlsOutput``'s ffmpeg
as before. Segments are named, numbered and reported to the ``Rendition`` exactly as ffmpeg's
are, so playlists, discontinuities, pins and the replay do not know which one cut them.
"""

from __future__ import annotations

import logging

from ingest.fanout import EndOfStream, Item, NewSource, Tag
from ingest.flv import TAG_AUDIO, TAG_VIDEO
from ingest.hls import HlsError
from ingest.outputs.base import OutputError
from ingest.outputs.hls import HlsOutput
from ingest.ts import Finished, TsError, TsSegmenter, is_aac_header, is_avc_header

__all__ = ["SourceHlsOutput"]

log = logging.getLogger("livebase.ingest.hls")

_FLV_AVC = 7
_FLV_AAC = 10
_AUDIO_WAIT_MS = 1000  # how long a source without an audio header may take to show its audio


class SourceHlsOutput(HlsOutput):
    """``HlsOutput`` that cuts H.264 + AAC itself and leaves other codecs to ffmpeg."""

    mux: TsSegmenter | None = None
    _segment_tags: list[Tag]  # the frames of the segment being cut, to cut it again
    _first_number = 0  # the first segment number of the in-process session

    async def session(self) -> None:
        if self._after_error:
            self.feed.rewind()
            self._after_error = False
        ahead = await self._look_ahead()
        if not any(isinstance(item, Tag) and not item.header for item in ahead):
            return  # the source ended or changed before its first frame: nothing to cut
        mux = _segmenter(ahead, self.segment_seconds)
        if mux is None:
            self.feed.unget(ahead)
            await super().session()
            return
        await self._mux_session(mux, ahead)

    async def _look_ahead(self) -> list[Item]:
        """The codec headers and the first frame; without an audio header, also until the
        first audio frame (its codec decides) or a second of video, whichever comes first."""
        ahead: list[Item] = []
        first_frame: int | None = None
        audio_known = False
        while True:
            item = await self.feed.get()
            ahead.append(item)
            if not isinstance(item, Tag):
                return ahead
            if item.kind == TAG_AUDIO:
                audio_known = True  # a header, or a frame of an audio codec without one
            if item.header:
                continue
            if first_frame is None:
                first_frame = item.timestamp
            if audio_known or item.timestamp - first_frame >= _AUDIO_WAIT_MS:
                return ahead

    async def _mux_session(self, mux: TsSegmenter, ahead: list[Item]) -> None:
        rendition = self.renditions[0]
        self._after_error = True
        self.mux = mux
        self._segment_tags = []
        self._first_number = rendition.next_number
        self.went_live()
        try:
            while True:
                item = ahead.pop(0) if ahead else await self.feed.get()
                if isinstance(item, NewSource | EndOfStream):
                    break
                if not self._take(item):
                    # The next session chooses again, from the new headers and a keyframe.
                    log.info("%s: the source changed codecs mid-publish", self.name)
                    self.feed.rewind()
                    break
                self.feed.deliver_directly(self._deliver_muxed)
            self.feed.stop_direct()
            last, self.mux = self.mux, None  # (audio that came late replaced the muxer)
            assert last is not None
            self._publish(last.finish())
        finally:
            self.feed.stop_direct()
            self.mux = None
            # Whatever comes next is a new stream: players must reset their decoders.
            rendition.pending_discontinuity = True
        self._after_error = False

    def _deliver_muxed(self, tag: Tag) -> bool:
        return self.mux is not None and self._take(tag)

    def _take(self, tag: Tag) -> bool:
        """Mux one tag; False if it needs another muxer (a codec change), untouched. A change
        within a publish is rare (encoders change codecs by reconnecting): the restart skips
        to the next keyframe, as after an error."""
        mux = self.mux
        assert mux is not None
        payload = tag.payload
        try:
            if tag.kind == TAG_VIDEO:
                if tag.header:
                    if not is_avc_header(payload):
                        return False
                    mux.set_avc(payload)
                    return True
                if payload[0] & 0x8F != _FLV_AVC:
                    return False
                finished = mux.video(tag.timestamp, payload, tag.keyframe)
                if finished is not None:
                    self._segment_tags = []
                    self._publish(finished)
            elif tag.kind == TAG_AUDIO:
                if tag.header:
                    if _empty_aac_header(payload):
                        return True
                    if not is_aac_header(payload):
                        return False
                    if mux.has_audio:
                        mux.set_aac(payload)
                    else:
                        self._add_audio(payload)
                    return True
                if payload[0] >> 4 != _FLV_AAC:
                    return False
                mux.audio(tag.timestamp, payload)
            else:
                return True
        except TsError as exc:
            raise OutputError(f"cannot mux the source: {exc}") from exc
        if mux.in_segment:
            self._segment_tags.append(tag)
        return True

    def _add_audio(self, header: bytes) -> None:
        """Audio that starts after the video (an SRT caller's AAC often does): the segment
        being cut is cut again with an audio stream in its program map, from its frames."""
        mux = self.mux
        assert mux is not None
        self.mux = TsSegmenter(mux.avc_header, header, mux.segment_ms)
        tags, self._segment_tags = self._segment_tags, []
        for tag in tags:
            self._take(tag)
        if self.renditions[0].next_number > self._first_number:
            # Segments without audio were published: players must reset their decoders.
            self.renditions[0].pending_discontinuity = True

    def _publish(self, finished: Finished | None) -> None:
        """Write the segment, then report it: a player never sees a segment half written."""
        if finished is None:
            return
        rendition = self.renditions[0]
        name = f"seg_{rendition.next_number:05d}.ts"
        (rendition.dir / name).write_bytes(finished.data)
        try:
            rendition.add(f"{name},{finished.start:.6f},{finished.end:.6f}")
        except HlsError as exc:
            log.warning("%s: ignored a segment: %s", self.name, exc)


def _segmenter(ahead: list[Item], segment_seconds: float) -> TsSegmenter | None:
    """A muxer for the headers looked ahead at, or None if ffmpeg must cut this source."""
    video = audio = None
    for item in ahead:
        if not isinstance(item, Tag):
            continue
        if item.header and item.kind == TAG_VIDEO:
            video = item.payload
        elif item.header and item.kind == TAG_AUDIO:
            if not _empty_aac_header(item.payload):
                audio = item.payload
        elif item.kind == TAG_AUDIO and item.payload[0] >> 4 != _FLV_AAC:
            return None  # MP3, say: no header to look at, the frame tells
    if video is None or not is_avc_header(video):
        return None
    if audio is not None and not is_aac_header(audio):
        return None
    try:
        return TsSegmenter(video, audio, round(segment_seconds * 1000))
    except TsError as exc:
        log.info("source needs ffmpeg to cut: %s", exc)
        return None


def _empty_aac_header(payload: bytes) -> bool:
    """An AAC sequence header without a config: ffmpeg's FLV muxer writes one when its input
    (an SRT caller's MPEG-TS) has not shown the config yet; the real one follows."""
    return len(payload) < 4 and payload[0] >> 4 == _FLV_AAC and payload[1:2] == b"\x00"
