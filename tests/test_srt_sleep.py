"""The SRT listener sleeps while no caller is connected: libsrt's listener and its threads are
closed, only the port's UDP socket stays bound, and the next caller's handshake opens the
listener again. Real ffmpeg and bare libsrt callers on 127.0.0.1, with a fake registry."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from media import make_flv
from net import wait_until
from service_support import live_service
from srt_support import Caller, Registry, finished, publish

from ingest.flv import TAG_VIDEO
from ingest.process import live_children
from ingest.srt import SrtServer

KEY = "lbk_9f8e7d6c5b4a39210fed"
SLEEP_AFTER = 1.0


def srt_threads() -> set[int]:
    """Ids of this process's libsrt threads (libsrt names them ``SRT:…``)."""
    found = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{tid}/comm").read_text()
        except OSError:
            continue  # ended meanwhile
        if name.startswith("SRT:"):
            found.add(int(tid))
    return found


async def state(srt: SrtServer) -> tuple[bool, set[int]]:
    return srt.awake, srt_threads()


@pytest.fixture
async def server() -> AsyncIterator[tuple[SrtServer, Registry]]:
    registry = Registry({KEY})
    async with SrtServer(registry, 0, idle_timeout=1.5, sleep_after=SLEEP_AFTER) as srt:
        yield srt, registry
    assert live_children() == []


async def test_a_publish_wakes_the_listener_which_sleeps_again_without_threads(
    server: tuple[SrtServer, Registry], tmp_path: Path
) -> None:
    srt, registry = server
    # Threads of libsrt users that other tests left behind are not this server's.
    before = srt_threads()
    assert not srt.awake
    flv = make_flv(tmp_path / "obs.flv", seconds=2, gop=30)
    for round_ in range(2):  # asleep, awake, asleep, and again
        encoder = publish(srt.port, f"#!::r=live/{KEY},m=publish", flv)
        try:
            _, threads = await wait_until(lambda: state(srt), lambda s: s[0], within=10)
            assert threads - before, "libsrt's threads run while the listener is awake"
            assert await asyncio.to_thread(finished, encoder) == 0
        finally:
            if encoder.poll() is None:
                encoder.kill()
        sink = registry.sinks[KEY][round_]
        async with asyncio.timeout(10):
            await sink.ended.wait()
        # All but what the listener had not played out when the caller left.
        assert sink.count(TAG_VIDEO) >= 60 - 8
        # Asleep again after the last connection, and libsrt's threads have ended.
        await wait_until(
            lambda: state(srt), lambda s: not s[0] and s[1] <= before, within=SLEEP_AFTER + 10
        )
    assert len(registry.begins) == 2


async def test_garbage_wakes_the_listener_for_a_while_and_breaks_nothing(
    server: tuple[SrtServer, Registry],
) -> None:
    srt, registry = server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for size in (1, 16, 1500):
            udp.sendto(b"\xff" * size, ("127.0.0.1", srt.port))
    await wait_until(lambda: state(srt), lambda s: s[0], within=5)
    await wait_until(lambda: state(srt), lambda s: not s[0], within=SLEEP_AFTER + 10)
    caller = Caller(srt.port, KEY)
    try:
        await asyncio.to_thread(caller.connect)
        await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(KEY)), bool, within=5)
        assert srt.awake and len(srt.connections) == 1
    finally:
        caller.close()


async def test_stop_while_asleep_frees_the_port() -> None:
    srt = SrtServer(Registry({KEY}), 0, sleep_after=SLEEP_AFTER)
    await srt.start()
    port = srt.port
    await srt.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", port))


async def test_every_interface_over_ipv6_takes_ipv4_callers() -> None:
    registry = Registry({KEY})
    async with SrtServer(registry, 0, host="::", sleep_after=SLEEP_AFTER) as srt:
        caller = Caller(srt.port, KEY)
        try:
            await asyncio.to_thread(caller.connect)
            await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(KEY)), bool, within=5)
            assert srt.connections[0].peer.startswith("127.0.0.1:")
        finally:
            caller.close()


async def test_the_service_wakes_its_listener_for_a_publish(
    database_url: str, tmp_path: Path
) -> None:
    flv = make_flv(tmp_path / "larix.flv", seconds=2, gop=30)
    env = {"LIVEBASE_SRT_SLEEP_AFTER_SECONDS": "1", "LIVEBASE_RECONNECT_GRACE_SECONDS": "1"}
    async with live_service(database_url, tmp_path, env) as live:
        path = "/api/v1/bases/haifeng/rooms/studio-1/stream-key"
        key = (await live.api("POST", path))["stream_key"]
        encoder = publish(live.settings.srt_port, f"#!::r=live/{key},m=publish", flv)
        try:
            await wait_until(
                lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
                lambda page: page["items"],
                within=15,
            )
            assert await asyncio.to_thread(finished, encoder) == 0
        finally:
            if encoder.poll() is None:
                encoder.kill()
        await wait_until(
            lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=ended"),
            lambda page: page["items"],
            within=20,
        )
