"""The three relays under test, behind one small interface: Livebase, nginx-rtmp, bare ffmpeg.

Each takes publishes named by a label (``s01`` …) and relays every one to the same two
destination ports, with the label as the stream name there, plus HLS of the source. ``proc``
is the root of the process tree whose CPU time is counted: the server under test alone.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from benchmarks.cpu import Reaped
from benchmarks.media import FFMPEG
from benchmarks.nginx import nginx_cmd, write_conf
from benchmarks.procs import Proc, free_port, free_udp_port, spawn, wait_for

__all__ = ["BareFfmpeg", "Livebase", "NginxRtmp", "System"]

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_S = 2.0  # HLS segment length for every system, as the issue asks


class System(ABC):
    name: str
    proc: Proc

    def __init__(self, workdir: Path, dests: tuple[int, ...]) -> None:
        self.workdir = workdir
        self.dests = dests
        workdir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def start(self, labels: list[str]) -> dict[str, str]:
        """Start the server for these publishes; returns the publish URL of each label."""

    @abstractmethod
    def hls_index(self, label: str) -> Path | None:
        """The live HLS playlist of ``label`` (None until it is known where it will be)."""

    @abstractmethod
    def recording(self, label: str) -> Path | None:
        """The playlist listing every segment of ``label``, to count its frames."""

    def hls_finished(self, label: str) -> bool:
        return True

    def stop(self) -> Reaped:
        return self.proc.stop(signal.SIGTERM, grace=20)


class Livebase(System):
    name = "livebase"

    def start(self, labels: list[str]) -> dict[str, str]:
        self.data = self.workdir / "data"
        http_port, rtmp_port = free_port(), free_port()
        ready = self.workdir / "ready.json"
        self.proc = spawn(
            [
                sys.executable,
                *["-m", "benchmarks.livebase_server", "--data-dir"],
                str(self.data),
                *f"--http-port {http_port} --rtmp-port {rtmp_port}".split(),
                *f"--srt-port {free_udp_port()}".split(),
                *f"--segment-seconds {SEGMENT_S:g} --grace-seconds 1".split(),
            ],
            "livebase",
            stdout=ready,
            stderr=self.workdir / "livebase.log",
            cwd=ROOT,
        )
        deadline = time.monotonic() + 120
        while not ready.read_text().strip():
            if not self.proc.running or time.monotonic() > deadline:
                raise RuntimeError(f"Livebase did not start; see {self.workdir}/livebase.log")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        self.http, self.token = info["http_url"], info["token"]
        urls = {}
        self.keys: dict[str, str] = {}
        for label in labels:
            room = self.api(
                "POST",
                "/api/v1/bases/haifeng/rooms",
                {"slug": f"bench-{label}", "name_zh": f"基准 {label}", "name_en": f"Bench {label}"},
            )
            key = self.api("POST", f"/api/v1/bases/haifeng/rooms/bench-{label}/stream-key")
            for i, port in enumerate(self.dests):
                self.api(
                    "POST",
                    "/api/v1/bases/haifeng/destinations",
                    {
                        "room_id": room["id"],
                        "name": f"platform {i + 1}",
                        "url": f"rtmp://127.0.0.1:{port}/live/",
                        "stream_key": label,
                    },
                )
            self.keys[label] = key["stream_key"]
            urls[label] = f"{info['rtmp_url']}/{key['stream_key']}"
        return urls

    def whip(self, label: str) -> tuple[str, str]:
        """The WHIP endpoint of ``label``'s room and its bearer token (the stream key)."""
        return f"{self.http}/whip/haifeng/bench-{label}", self.keys[label]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.http + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def _rendition(self, label: str) -> Path | None:
        found = sorted((self.data / "hls/haifeng" / f"bench-{label}").glob("*/source"))
        return found[-1] if found else None

    def hls_index(self, label: str) -> Path | None:
        source = self._rendition(label)
        return source / "index.m3u8" if source else None

    def recording(self, label: str) -> Path | None:
        source = self._rendition(label)
        return source / "replay.m3u8" if source else None

    def hls_finished(self, label: str) -> bool:
        replay = self.recording(label)
        return replay is not None and replay.exists() and "#EXT-X-ENDLIST" in replay.read_text()


class NginxRtmp(System):
    name = "nginx-rtmp"

    def start(self, labels: list[str]) -> dict[str, str]:
        port = free_port()
        self.hls = self.workdir / "hls"
        conf = write_conf(self.workdir, port, self.dests, self.hls)
        self.proc = spawn(nginx_cmd(conf, self.workdir), "nginx", stderr=self.workdir / "stderr")
        wait_for([port], [self.proc])
        return {label: f"rtmp://127.0.0.1:{port}/live/{label}" for label in labels}

    def hls_index(self, label: str) -> Path | None:
        return self.hls / f"{label}.m3u8"

    def recording(self, label: str) -> Path | None:
        return self.hls / f"{label}.m3u8"

    def stop(self) -> Reaped:
        return self.proc.stop(signal.SIGQUIT, grace=20)  # nginx: graceful shutdown


class BareFfmpeg(System):
    """``ffmpeg -listen 1`` + tee: one publish per process, the floor for "just copy bytes"."""

    name = "ffmpeg-tee"

    def start(self, labels: list[str]) -> dict[str, str]:
        (label,) = labels
        port = free_port()
        self.hls = self.workdir / "hls"
        self.hls.mkdir(exist_ok=True)
        d1, d2 = (f"[f=flv]rtmp://127.0.0.1:{p}/live/{label}" for p in self.dests)
        hls = (
            f"[f=hls:hls_time={SEGMENT_S:g}:hls_list_size=0:hls_segment_filename={self.hls}/seg_%05d.ts]"
            f"{self.hls}/index.m3u8"
        )
        self.proc = spawn(
            [
                FFMPEG,
                *["-hide_banner", "-loglevel", "error", "-listen", "1", "-timeout", "60", "-i"],
                f"rtmp://127.0.0.1:{port}/live/{label}",
                *["-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "tee"],
                f"{d1}|{d2}|{hls}",
            ],
            "ffmpeg-tee",
            stderr=self.workdir / "stderr",
        )
        wait_for([port], [self.proc])
        return {label: f"rtmp://127.0.0.1:{port}/live/{label}"}

    def hls_index(self, label: str) -> Path | None:
        return self.hls / "index.m3u8"

    def recording(self, label: str) -> Path | None:
        return self.hls / "index.m3u8"

    def hls_finished(self, label: str) -> bool:
        return not self.proc.running
