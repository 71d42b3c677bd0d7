"""RTP timestamps of one stream placed on the publish's millisecond clock. Pure.

Each RTP stream starts at a random 32-bit timestamp that wraps; audio and video use different
clocks (48 kHz for Opus, 90 kHz for video). Each stream is anchored at the arrival time of its
first packet, so audio and video line up to within network jitter without RTCP sender reports.
"""

from __future__ import annotations

__all__ = ["RtpTimeline"]

_WRAP = 1 << 32
_HALF = 1 << 31


class RtpTimeline:
    def __init__(self, clock_rate: int, first_timestamp: int, arrival_ms: float) -> None:
        self.clock_rate = clock_rate
        self.arrival_ms = arrival_ms
        self._last_timestamp = first_timestamp
        self._last_position = 0
        self._last_ms = -1

    def position(self, timestamp: int) -> int:
        """Ticks since the first packet; a step back (reordering) stays a step back rather
        than becoming a wrap, as long as it is shorter than half the 32-bit range."""
        step = (timestamp - self._last_timestamp) % _WRAP
        if step >= _HALF:
            step -= _WRAP
        self._last_timestamp = timestamp
        self._last_position += step
        return self._last_position

    def to_ms(self, position: int) -> int:
        """Milliseconds on the publish clock for a position in ticks, never going back and
        never repeating (FLV consumers refuse non-increasing timestamps within a stream)."""
        ms = max(round(self.arrival_ms + position * 1000 / self.clock_rate), 0)
        if ms <= self._last_ms:
            ms = self._last_ms + 1
        self._last_ms = ms
        return ms
