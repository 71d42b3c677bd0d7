"""The ``livebase`` command, run as a real process on a fresh data directory."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from net import free_port, free_udp_port

# The console script installed with the package, as a person would run it.
LIVEBASE = [str(Path(sys.executable).parent / "livebase")]


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        LIVEBASE + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBASE_")}
    return clean | {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}


def test_db_upgrade_creates_and_seeds(env: dict[str, str]) -> None:
    first = run(["db", "upgrade"], env)
    assert first.returncode == 0, first.stderr
    assert "added 3 bases, 6 rooms, 4 themes" in first.stderr
    again = run(["db", "upgrade"], env)
    assert again.returncode == 0 and "added 0 bases, 0 rooms, 0 themes" in again.stderr


def test_token_create_prints_only_the_token(env: dict[str, str]) -> None:
    result = run(["token", "create", "--role", "base_manager", "--base", "luhe"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lbt_") and len(lines[0]) > 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "base_manager"], "needs a base"),
        (["--role", "base_manager", "--base", "atlantis"], "no base 'atlantis'"),
        (["--role", "merchant", "--base", "luhe"], "needs a merchant"),
        (["--role", "host", "--base", "luhe", "--host", "999"], "--host 999"),
    ],
)
def test_token_create_errors_are_clear(env: dict[str, str], args: list[str], message: str) -> None:
    result = run(["token", "create", *args], env)
    assert result.returncode == 1 and result.stdout == ""
    assert message in result.stderr


def test_rooms_list_show_and_rotate(env: dict[str, str]) -> None:
    listing = run(["rooms"], env)
    assert listing.returncode == 0 and "orchard" in listing.stderr and "not set" in listing.stderr
    rotated = run(["rooms", "--rotate-key", "luhe/orchard"], env)
    key = rotated.stdout.strip()
    assert rotated.returncode == 0 and key.startswith("lbk_")
    shown = run(["rooms", "luhe/orchard"], env)
    assert shown.returncode == 0
    assert "rtmp://127.0.0.1:1935/live" in shown.stderr and key[-4:] in shown.stderr
    assert key not in shown.stderr + shown.stdout
    missing = run(["rooms", "luhe/cellar"], env)
    assert missing.returncode == 1 and "no room 'luhe/cellar'" in missing.stderr


def test_bad_setting_is_named(env: dict[str, str]) -> None:
    result = run(["rooms"], env | {"LIVEBASE_HTTP_PORT": "http"})
    assert result.returncode == 2 and "LIVEBASE_HTTP_PORT" in result.stderr


def test_serve_answers_and_stops_on_sigterm(env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*LIVEBASE, "serve"],
        env=env | {"LIVEBASE_HTTP_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("serve did not listen")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_runs_end_to_end_and_stops(env: dict[str, str]) -> None:
    env = env | {
        "LIVEBASE_HTTP_PORT": str(free_port()),
        "LIVEBASE_RTMP_PORT": str(free_port()),
        "LIVEBASE_SRT_PORT": str(free_udp_port()),
    }
    result = run(["demo", "--duration", "1"], env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is live" in result.stderr and "demo stopped" in result.stderr
    assert "/hls/haifeng/studio-1/live.m3u8" in result.stderr
    replay = Path(env["LIVEBASE_DATA_DIR"]) / "hls/haifeng/studio-1/1/source/replay.m3u8"
    assert replay.read_text().rstrip().endswith("#EXT-X-ENDLIST"), "the recording was closed"
    # It ends with the base's daily report of what it drove.
    report = re.search(r"daily report: (\S+\.demo\.html)", result.stderr)
    assert report is not None, result.stderr
    assert "¥" in Path(report.group(1)).read_text(encoding="utf-8")
    assert re.search(r"daily report \(\d{4}-\d{2}-\d{2}\): 1 session\(s\)", result.stderr)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_stops_on_ctrl_c_leaving_no_child(env: dict[str, str]) -> None:
    env = env | {
        "LIVEBASE_HTTP_PORT": str(free_port()),
        "LIVEBASE_RTMP_PORT": str(free_port()),
        "LIVEBASE_SRT_PORT": str(free_udp_port()),
    }
    proc = subprocess.Popen(
        [*LIVEBASE, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 90
        for line in proc.stderr:
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        data_dir = env["LIVEBASE_DATA_DIR"]
        assert processes_mentioning(data_dir), "the demo runs ffmpeg children"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        time.sleep(0.5)
        assert processes_mentioning(data_dir) == [], "a child outlived the demo"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
