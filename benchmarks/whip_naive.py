"""The reference for the WHIP benchmark: the naive aiortc relay, alone in its process.

    python -m benchmarks.whip_naive --port P --destination rtmp://127.0.0.1:D/live/KEY

A WHIP endpoint (``POST /whip`` with the offer, ``DELETE`` on the ``Location`` it returns)
that does what aiortc's documentation and examples do: each received track goes to a
``MediaRecorder`` writing FLV to the RTMP destination. aiortc decodes the H.264 to pictures
and the Opus to samples; the recorder encodes them again (libx264, AAC) and muxes them with
PyAV. It prints one JSON line when it listens and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import uuid

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder

SESSIONS: web.AppKey[dict[str, tuple[RTCPeerConnection, MediaRecorder]]] = web.AppKey("sessions")
DESTINATION: web.AppKey[str] = web.AppKey("destination")
CLOSING: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("closing")


async def post(request: web.Request) -> web.Response:
    offer = await request.text()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    recorder = MediaRecorder(request.app[DESTINATION], format="flv")
    pc.on("track", recorder.addTrack)
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())

    @pc.on("connectionstatechange")
    async def started() -> None:
        if pc.connectionState == "connected":
            await recorder.start()

    resource = uuid.uuid4().hex
    request.app[SESSIONS][resource] = (pc, recorder)
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": f"/whip/{resource}"},
    )


async def delete(request: web.Request) -> web.Response:
    session = request.app[SESSIONS].pop(request.match_info["resource"], None)
    if session is None:
        raise web.HTTPNotFound()
    # Answered at once (the publisher is done); the recorder finishes in the background.
    task = asyncio.create_task(_close(*session))
    request.app[CLOSING].add(task)
    task.add_done_callback(request.app[CLOSING].discard)
    return web.Response(status=200)


async def _close(pc: RTCPeerConnection, recorder: MediaRecorder) -> None:
    await recorder.stop()
    await pc.close()


async def _run(port: int, destination: str) -> None:
    app = web.Application()
    app[SESSIONS] = {}
    app[DESTINATION] = destination
    app[CLOSING] = set()
    app.router.add_post("/whip", post)
    app.router.add_delete("/whip/{resource}", delete)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"whip_url": f"http://127.0.0.1:{port}/whip"}), flush=True)
    try:
        await stop.wait()
    finally:
        for session in list(app[SESSIONS].values()):
            await _close(*session)
        await asyncio.gather(*app[CLOSING])
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--destination", required=True, help="rtmp://host:port/app/key")
    args = parser.parse_args()
    asyncio.run(_run(args.port, args.destination))


if __name__ == "__main__":
    main()
