"""Keep a WHIP publish alive while its media flows, whether or not the publisher answers
ICE consent checks.

aioice checks consent (RFC 7675) from both ends: every 4–6 s it sends a binding request on
the nominated pair and closes the whole connection after six unanswered ones. FFmpeg's WHIP
muxer sends its own consent checks and answers none, so every FFmpeg publish was cut about
30 s in ("Consent to send expired"). A WHIP ingest only receives media; it sends nothing
but RTCP, so the consent that matters is the publisher's, which the publisher checks itself.
The session's own watchdog ends a publish after ``Timeouts.media`` of silence, which covers
a publisher that went away. So once connected, the ingest stops aioice's consent task.

This reaches into two private details of aiortc and aioice (the ICE transport's
``_connection`` and the connection's ``_query_consent_task``); if they change,
``stop_consent_checks`` logs it and the publish goes on with aioice's checks, and the
end-to-end test that publishes with consent checks every 0.2 s fails.
"""

from __future__ import annotations

import logging

from aiortc import RTCPeerConnection

__all__ = ["stop_consent_checks"]

log = logging.getLogger("livebase.ingest.whip")


def stop_consent_checks(pc: RTCPeerConnection, label: str) -> None:
    """Cancel aioice's consent checks on every ICE connection of ``pc``."""
    for transceiver in pc.getTransceivers():
        connection = getattr(transceiver.receiver.transport.transport, "_connection", None)
        if connection is None or not hasattr(connection, "_query_consent_task"):
            log.warning("%s: aioice has no consent task to stop; its checks stay on", label)
            continue
        task = connection._query_consent_task
        if task is not None:
            task.cancel()
        connection._query_consent_task = None
