"""One WHIP publish: its aiortc peer connection, its media relay, and how it ends.

A session is the registry's ``Publisher``: a takeover or the end of the live session calls
``close(reason)``. It also ends on WHIP DELETE, when ICE or DTLS fail, when no connection is
made within ``Timeouts.connect`` (a publisher that never sends its checks would otherwise
keep aioice waiting for remote candidates forever) and when media stops for
``Timeouts.media``; not on unanswered ICE consent checks (``ingest/whip/consent.py``).
However it ends, the peer connection is closed, every task is awaited and the sink hears
``on_end`` exactly once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.sdp import candidate_from_sdp

from ingest.whip.consent import stop_consent_checks
from ingest.whip.relay import MediaRelay
from ingest.whip.sdp import Fragment, Offer, for_aiortc, restore_answer
from ingest.whip.tap import FrameTap, install_tap

__all__ = ["SessionClosed", "SessionSink", "Timeouts", "WhipSession"]

log = logging.getLogger("livebase.ingest.whip")
_CLOSE_SECONDS: Final = 5.0
_PLI_INTERVAL: Final = 1.0


class SessionClosed(RuntimeError):
    """The session ended before it could answer."""


class SessionSink(Protocol):
    """What the session feeds (``ingest.registry.IngestSink`` fits)."""

    def push(self, kind: int, timestamp: int, payload: bytes) -> None: ...

    async def on_end(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 15.0  # from the answer to a connected ICE + DTLS transport
    media: float = 10.0  # silence on a connected transport before the publish is over


class WhipSession:
    def __init__(
        self,
        connection_id: int,
        room: tuple[str, str],
        peer: str,
        key: str,
        offer: Offer,
        *,
        timeouts: Timeouts | None = None,
        on_closed: Callable[[WhipSession], None] = lambda session: None,
    ) -> None:
        self.resource_id = secrets.token_urlsafe(16)
        self.etag = f'"{secrets.token_hex(8)}"'  # one ICE session for the whole publish
        self.room = room
        self.offer = offer
        self._id = connection_id
        self._peer = peer
        self._key = key
        self._timeouts = timeouts or Timeouts()
        self._on_closed = on_closed
        self.label = f"whip #{connection_id} {room[0]}/{room[1]} {peer}"
        # No ICE servers: aiortc would otherwise ask a public STUN server while answering.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.relay: MediaRelay | None = None
        self._sink: SessionSink | None = None
        self._video_tap: FrameTap | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None
        self.connected = False
        self.end_reason = ""
        self._told = False

    # --- the registry's Publisher -------------------------------------------------------------

    @property
    def connection_id(self) -> int:
        return self._id

    @property
    def peer(self) -> str:
        return self._peer

    def close(self, reason: str) -> None:
        if self._closing is None:
            self.end_reason = reason
            self._closing = asyncio.get_running_loop().create_task(
                self._shutdown(reason), name=f"{self.label} close"
            )

    # --- negotiation ----------------------------------------------------------------------------

    def key_matches(self, key: str) -> bool:
        return hmac.compare_digest(key.encode(), self._key.encode())

    async def apply_offer(self, text: str) -> None:
        """Let aiortc take the offer; raises ``ValueError`` (or aiortc's errors) if it cannot.
        Binds no socket, so it runs before the key is checked."""
        await self.pc.setRemoteDescription(
            RTCSessionDescription(for_aiortc(text, self.offer), "offer")
        )

    async def answer(self, sink: SessionSink) -> str:
        """Start relaying into ``sink`` and return the SDP answer (host candidates included).
        Raises ``SessionClosed`` if the publish was ended meanwhile (taken over at once)."""
        self._sink = sink
        await self._unless_closed()
        relay = self.relay = MediaRelay(sink.push, self.label)
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                self._video_tap = install_tap(transceiver.receiver, relay.video)
            else:
                install_tap(transceiver.receiver, relay.audio)
        self.pc.on("connectionstatechange", self._state_changed)
        try:
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except InvalidStateError:
            if self._closing is None:
                raise
        await self._unless_closed()
        for run, name in (
            (self._watch(), "watchdog"),
            (self._keyframes(), "keyframes"),
            (relay.run_audio(), "audio"),
        ):
            task = asyncio.get_running_loop().create_task(run, name=f"{self.label} {name}")
            task.add_done_callback(self._task_done)
            self._tasks.append(task)
        local = self.pc.localDescription
        return restore_answer(local.sdp, self.offer)

    async def _unless_closed(self) -> None:
        """Raise ``SessionClosed`` if a takeover ended the session while it negotiated,
        telling the sink now if the shutdown ran before there was one."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            await self._tell_sink(self.end_reason)
            raise SessionClosed(self.end_reason)

    async def add_candidates(self, fragment: Fragment) -> int:
        """Trickled candidates; those aiortc cannot use are dropped, as RFC 9725 asks."""
        added = 0
        default_mid = self.offer.media[0].mid
        for mid, value in fragment.candidates:
            bits = value.split()
            if len(bits) < 8 or not (bits[1].isdigit() and bits[3].isdigit() and bits[5].isdigit()):
                continue
            candidate = candidate_from_sdp(value)
            candidate.sdpMid = mid or default_mid
            try:
                await self.pc.addIceCandidate(candidate)
            except ValueError as exc:
                log.debug("%s: trickled candidate dropped: %s", self.label, exc)
                continue
            added += 1
        return added

    # --- running --------------------------------------------------------------------------------

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected:
            self.connected = True
            stop_consent_checks(self.pc, self.label)  # the media watchdog decides instead
            log.info("%s: connected", self.label)
        elif state == "failed":
            self.close("ICE or DTLS failed")
        elif state == "closed":
            self.close("the publisher closed the connection")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeouts.connect
        while True:
            await asyncio.sleep(0.5)
            relay = self.relay
            if not self.connected:
                if loop.time() > deadline:
                    self.close(f"no ICE/DTLS connection within {self._timeouts.connect:g} s")
                    return
            elif relay is not None and relay.idle_seconds() > self._timeouts.media:
                self.close(f"no media for {self._timeouts.media:g} s")
                return

    async def _keyframes(self) -> None:
        """Ask for a keyframe whenever the relay waits for one, at most once a second."""
        assert self.relay is not None
        while True:
            await self.relay.keyframe_wanted.wait()
            self.relay.keyframe_wanted.clear()
            if self._video_tap is not None:
                await self._video_tap.request_keyframe()
            await asyncio.sleep(_PLI_INTERVAL)

    def request_keyframe(self) -> None:
        """For a consumer that needs a fresh keyframe (a destination that reconnected)."""
        if self.relay is not None:
            self.relay.keyframe_wanted.set()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("%s: %s failed", self.label, task.get_name(), exc_info=task.exception())
        self.close(f"internal error in {task.get_name()}")

    # --- the end --------------------------------------------------------------------------------

    async def aclose(self, reason: str) -> None:
        """Close and wait until the peer connection is closed and the sink was told."""
        self.close(reason)
        assert self._closing is not None
        # Shielded: a client hanging up on DELETE must not leave the session half-closed.
        await asyncio.shield(self._closing)

    async def _shutdown(self, reason: str) -> None:
        log.info("%s: publish ends: %s", self.label, reason)
        try:
            for task in self._tasks:
                task.cancel()
            # Their failures were logged when they happened (_task_done).
            await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                async with asyncio.timeout(_CLOSE_SECONDS):
                    await self.pc.close()
            except TimeoutError:
                log.warning(
                    "%s: the peer connection took over %g s to close", self.label, _CLOSE_SECONDS
                )
        finally:
            try:
                await self._tell_sink(reason)
            finally:
                self._on_closed(self)

    async def _tell_sink(self, reason: str) -> None:
        if self._sink is not None and not self._told:
            self._told = True
            await self._sink.on_end(reason)
