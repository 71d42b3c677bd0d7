"""The SRT push output against real peers on 127.0.0.1: an ffmpeg SRT listener standing in for
a platform (with a passphrase), our own SRT ingest (which refuses stream ids), and a port with
nobody listening. Secrets must never reach a command line, a log line or the output's state."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from media import FFMPEG, make_flv, video_packets
from net import free_udp_port, wait_until
from srt_support import Registry, child_command_lines

from ingest.destinations import UnsupportedOutput, destination_output
from ingest.fanout import Fanout
from ingest.flv import TAG_VIDEO, iter_tags, parse_video_tag
from ingest.outputs.base import OutputState
from ingest.outputs.srt_push import SrtPushOutput
from ingest.pipeline import DestinationSpec
from ingest.process import live_children
from ingest.srt import SrtServer

PASSPHRASE = "correct-horse-battery-staple"
STREAM_ID = "#!::r=live/platform-key-0001,m=publish"
SECRETS = (PASSPHRASE, "platform-key-0001")


def platform(port: int, out: Path, passphrase: str = PASSPHRASE) -> Any:
    """A stand-in platform: an ffmpeg SRT listener that records what it is sent."""
    return subprocess.Popen(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            f"srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}&timeout=30000000",
            "-c",
            "copy",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def feed_file(fanout: Fanout, flv: Path) -> None:
    fanout.begin_publish()
    for tag in iter_tags(flv.read_bytes()):
        fanout.push(tag.tag_type, tag.timestamp, tag.payload)


@pytest.fixture
async def fanout() -> AsyncIterator[Fanout]:
    yield Fanout()
    assert live_children() == [], "a child process outlived its output"


async def test_relay_reaches_the_platform_without_losing_a_frame(
    fanout: Fanout, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    flv = make_flv(tmp_path / "obs.flv", seconds=3, gop=30)
    port, received = free_udp_port(), tmp_path / "platform.ts"
    listener = platform(port, received)
    states: list[OutputState] = []
    url = f"srt://127.0.0.1:{port}?passphrase={PASSPHRASE}&latency=200000"
    output = SrtPushOutput(
        "douyin", fanout.attach("douyin"), url, STREAM_ID, lambda o: states.append(o.state)
    )
    output.start()
    try:
        feed_file(fanout, flv)
        await wait_until(lambda: asyncio.sleep(0, output.state), OutputState.LIVE.__eq__)
        lines = child_command_lines()
        assert lines and not any(s.encode() in line for s in SECRETS for line in lines)
        await output.finish(within=20)
        assert await asyncio.to_thread(listener.wait, 20) == 0
    finally:
        await output.stop()
        if listener.poll() is None:
            listener.kill()
    assert states == [OutputState.LIVE, OutputState.STOPPED]
    assert video_packets(received) == video_packets(flv), "the platform lost frames"
    assert output.connections == 1 and output.last_error == ""
    assert not any(secret in caplog.text for secret in SECRETS)


async def test_wrong_passphrase_fails_for_good_and_says_so(
    fanout: Fanout, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_udp_port()
    listener = platform(port, tmp_path / "never.ts")
    wrong = "incorrect-horse-battery"
    url = f"srt://127.0.0.1:{port}?passphrase={wrong}"
    output = SrtPushOutput("kuaishou", fanout.attach("kuaishou"), url, STREAM_ID)
    try:
        await asyncio.sleep(0.3)  # the listener binds
        output.start()
        await wait_until(lambda: asyncio.sleep(0, output.state), OutputState.FAILED.__eq__)
        error = output.last_error
    finally:
        await output.stop()
        listener.kill()
        listener.wait()
    assert error == (
        f"srt://127.0.0.1:{port} (stream id …lish) refused the connection: wrong passphrase"
    )
    assert output.connections == 1, "a refusal is not retried"
    for secret in (wrong, *SECRETS):
        assert secret not in caplog.text and secret not in error


async def test_a_refused_stream_id_fails_for_good(fanout: Fanout) -> None:
    registry = Registry({"lbk_room-key-0001"})
    async with SrtServer(registry, 0) as srt:
        url = f"srt://127.0.0.1:{srt.port}"
        output = SrtPushOutput(
            "ours", fanout.attach("ours"), url, "#!::r=live/lbk_room-key-0001,m=request"
        )
        output.start()
        try:
            await wait_until(lambda: asyncio.sleep(0, output.state), OutputState.FAILED.__eq__)
            error = output.last_error
        finally:
            await output.stop()
    assert error.endswith("refused the stream id: refused by the listener: BAD_MODE (1405)")
    assert "room-key" not in error and registry.begins == []


async def test_round_trip_through_our_own_srt_ingest_copies_the_streams(
    fanout: Fanout, tmp_path: Path
) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=2, gop=30)
    source = list(iter_tags(flv.read_bytes()))
    key = "lbk_room-key-0001"
    registry = Registry({key})
    async with SrtServer(registry, 0, passphrase=PASSPHRASE) as srt:
        spec = DestinationSpec(
            7, "relay", "srt", f"srt://127.0.0.1:{srt.port}?passphrase={PASSPHRASE}", f"live/{key}"
        )
        output = destination_output(
            spec, "destination-7", fanout.attach("d"), lambda o: None, fanout.source.init_tags
        )
        assert isinstance(output, SrtPushOutput)
        output.start()
        try:
            feed_file(fanout, flv)
            await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(key)), bool, within=10)
            await output.finish(within=20)
        finally:
            await output.stop()
        sink = registry.sinks[key][0]
        async with asyncio.timeout(10):
            await sink.ended.wait()

    def frames(tags: list[tuple[int, bytes]]) -> list[list[bytes]]:
        """Each frame's coded slices; MPEG-TS adds delimiters and repeats SPS/PPS around them."""
        slices = []
        for kind, payload in tags:
            if kind != TAG_VIDEO or parse_video_tag(payload).packet_type != 1:
                continue
            pos, nals = 5, []
            while pos < len(payload):
                size = int.from_bytes(payload[pos : pos + 4], "big")
                nal = payload[pos + 4 : pos + 4 + size]
                if nal[0] & 0x1F in (1, 5):  # coded slices (non-IDR, IDR)
                    nals.append(nal)
                pos += 4 + size
            slices.append(nals)
        return slices

    def avc_header(tags: list[tuple[int, bytes]]) -> bytes:
        return next(p for k, p in tags if k == TAG_VIDEO and parse_video_tag(p).is_sequence_header)

    sent = [(t.tag_type, t.payload) for t in source]
    got = [(k, p) for k, _, p in sink.tags]
    # Copied, not transcoded: the same codec header, and every frame's slices bit for bit.
    assert avc_header(got) == avc_header(sent)
    assert frames(got) == frames(sent)


async def test_an_encoder_reconnect_keeps_the_connection_unless_the_codec_changes(
    fanout: Fanout, tmp_path: Path
) -> None:
    same = make_flv(tmp_path / "a.flv", seconds=1, gop=15)
    bigger = make_flv(tmp_path / "b.flv", seconds=1, gop=15, size="640x360")
    key = "lbk_room-key-0001"
    registry = Registry({key})
    async with SrtServer(registry, 0) as srt:
        url = f"srt://127.0.0.1:{srt.port}"
        output = SrtPushOutput("r", fanout.attach("r"), url, key, init_tags=fanout.source.init_tags)
        output.start()
        try:
            for flv in (same, same, bigger):  # the encoder reconnects twice, then rescales
                feed_file(fanout, flv)
            await output.finish(within=20)
        finally:
            await output.stop()
        sinks = registry.sinks[key]
        async with asyncio.timeout(10):
            for sink in sinks:
                await sink.ended.wait()

    def coded(sink: Any) -> int:
        return sum(
            1 for k, _, p in sink.tags if k == TAG_VIDEO and parse_video_tag(p).packet_type == 1
        )

    assert output.connections == 2 and len(sinks) == 2
    assert [coded(sink) for sink in sinks] == [60, 30], "no frame lost over the reconnects"


async def test_an_unreachable_platform_is_retried(fanout: Fanout) -> None:
    url = f"srt://127.0.0.1:{free_udp_port()}?connect_timeout=500"
    output = SrtPushOutput("nobody", fanout.attach("nobody"), url, "")
    output.start()
    try:
        await wait_until(lambda: asyncio.sleep(0, output.state), OutputState.RETRYING.__eq__)
        assert output.last_error.startswith(f"cannot connect to {output.target}: ")
        assert "timed out" in output.last_error
    finally:
        await output.stop()


def test_a_bad_srt_url_fails_only_its_destination() -> None:
    spec = DestinationSpec(3, "x", "srt", "srt://push.example.com/live/secret-key-0001", "")
    output = destination_output(spec, "destination-3", Fanout().attach("x"), lambda o: None, list)
    assert isinstance(output, UnsupportedOutput)
    assert "SRT URLs have no path" in output.reason and "secret" not in output.reason
