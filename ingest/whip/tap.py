"""Encoded frames out of aiortc's receivers, before its decoders: the relay's one hook.

aiortc has no public way to receive encoded media: an ``RTCRtpReceiver`` reassembles each
frame in its jitter buffer, then hands it to a decoder thread, and the track yields decoded
pictures. Decoding H.264 only to encode it again for FLV costs several times the CPU of the
whole relay, and loses quality; so each receiver's jitter buffer is wrapped: the same
reassembly (with aiortc's NACK, RTX and loss handling around it), but complete frames come
here and the decoder thread never gets any.

The hook relies on two private details of aiortc (checked at install time, and covered by
the end-to-end tests): the receiver keeps its buffer in ``__jitter_buffer`` and calls only
``add(packet)`` on it; ``_send_rtcp_pli`` sends a picture loss indication.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["FrameSink", "FrameTap", "TapError", "install_tap"]

log = logging.getLogger("livebase.ingest.whip")

_BUFFER_ATTRIBUTE: Final = "_RTCRtpReceiver__jitter_buffer"


class TapError(RuntimeError):
    """The installed aiortc no longer has the internals the hook relies on."""


class FrameSink(Protocol):
    def first_packet(self, rtp_timestamp: int) -> None:
        """The stream's first RTP packet has just arrived (its arrival anchors the clock)."""

    def frame(self, data: bytes, rtp_timestamp: int) -> None:
        """A complete encoded frame: an Annex B access unit, or one Opus packet."""

    def lost(self) -> None:
        """Packets were given up on: what follows may reference missing data."""


class FrameTap:
    """Stands in for a receiver's jitter buffer and keeps the frames from its decoder."""

    def __init__(self, receiver: RTCRtpReceiver, inner: JitterBuffer, sink: FrameSink) -> None:
        self._receiver = receiver
        self._inner = inner
        self._sink = sink
        self.ssrc: int | None = None
        self.packets = 0

    @property
    def capacity(self) -> int:
        return self._inner.capacity

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self.ssrc is None:
            self.ssrc = packet.ssrc
            self._sink.first_packet(packet.timestamp)
        self.packets += 1
        lost, frame = self._inner.add(packet)
        try:
            if lost:
                self._sink.lost()
            if frame is not None:
                self._sink.frame(frame.data, frame.timestamp)
        except Exception:
            # Raising here would end aiortc's receive loop and with it the whole connection.
            log.exception("a received frame could not be relayed")
        # Returning the loss flag keeps aiortc's own reaction to it (a PLI to the sender).
        return lost, None

    async def request_keyframe(self) -> None:
        """Ask the sender for a keyframe (RTCP PLI, RFC 4585 6.3.1)."""
        if self.ssrc is not None:
            await self._receiver._send_rtcp_pli(self.ssrc)


def install_tap(receiver: RTCRtpReceiver, sink: FrameSink) -> FrameTap:
    """Wrap the receiver's jitter buffer; call before the connection starts receiving."""
    inner = getattr(receiver, _BUFFER_ATTRIBUTE, None)
    if not isinstance(inner, JitterBuffer) or not callable(
        getattr(receiver, "_send_rtcp_pli", None)
    ):
        raise TapError(
            "this aiortc version keeps its jitter buffer elsewhere: "
            "WHIP cannot relay encoded media with it"
        )
    tap = FrameTap(receiver, inner, sink)
    setattr(receiver, _BUFFER_ATTRIBUTE, tap)
    return tap
