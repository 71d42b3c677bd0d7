"""Children never outlive their owner: stop(), a crash of the child, and a killed parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ingest.process import ChildProcess, kill_all, live_children
from livebase.credentials import mask_secrets
from livebase.settings import Settings

FFMPEG = Settings().ffmpeg_path()
ENDLESS = [
    FFMPEG,
    "-hide_banner",
    "-nostats",
    "-re",
    "-f",
    "lavfi",
    "-i",
    "testsrc=rate=5",
    "-f",
    "null",
    "-",
]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: its parent just has not reaped it yet.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


async def test_stop_ends_the_child_and_forgets_it() -> None:
    child = ChildProcess(ENDLESS, name="t", stdin=True)
    await child.start()
    assert child in live_children() and child.pid and alive(child.pid)
    await child.stop(grace=0.5)
    assert not alive(child.pid) and child not in live_children()


async def test_a_crashed_child_is_reaped_with_its_last_words() -> None:
    child = ChildProcess([FFMPEG, "-hide_banner", "-i", "/nonexistent.flv"], name="crash")
    await child.start()
    assert await child.wait() != 0
    assert any("nonexistent" in line for line in child.last_error_lines)
    assert child not in live_children()


async def test_kill_all_stops_everything() -> None:
    children = [ChildProcess(ENDLESS, name=f"c{i}") for i in range(3)]
    for c in children:
        await c.start()
    await kill_all()
    assert live_children() == [] and not any(alive(c.pid or 0) for c in children)


def test_children_die_with_a_killed_parent(tmp_path: object) -> None:
    script = textwrap.dedent(f"""
        import asyncio, os, signal, sys
        from ingest.process import ChildProcess
        async def main():
            c = ChildProcess({ENDLESS!r}, name="orphan-candidate")
            await c.start()
            print(c.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_gone(child_pid), "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("rtmp://push.example.com/live/lbk_abcdefghijklmnop", "abcdefghijkl", "…mnop"),
        ("srt://h:9000?streamid=publish:room/SECRETKEY123&latency=200", "SECRETKEY", "…Y123"),
        ("srt://h:9000?mode=caller&passphrase=averylongpassphrase", "averylong", "…rase"),
    ],
)
def test_mask_secrets(text: str, hidden: str, kept: str) -> None:
    masked = mask_secrets(text)
    assert hidden not in masked and kept in masked


async def test_stop_of_a_never_started_child_is_harmless() -> None:
    assert await ChildProcess(["true"], name="idle").stop() is None
    await asyncio.sleep(0)
