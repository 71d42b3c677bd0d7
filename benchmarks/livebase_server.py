"""The service under test, alone in its process so its CPU time is its own:

    python -m benchmarks.livebase_server --data-dir DIR --http-port P --rtmp-port R --srt-port S

It runs ``running_service`` (HTTP API, HLS, RTMP ingest) on SQLite in ``DIR``, on the event
loop ``livebase serve`` uses (uvloop when installed), with the ladder off (source rendition
only, as the issue's relay test asks), prints one JSON line with its URLs and an admin token,
and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path

from livebase import eventloop
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role
from livebase.service import running_service
from livebase.settings import load_settings


async def _run(args: argparse.Namespace) -> None:
    settings = load_settings(
        {
            "LIVEBASE_DATA_DIR": str(args.data_dir),
            "LIVEBASE_HTTP_PORT": str(args.http_port),
            "LIVEBASE_RTMP_PORT": str(args.rtmp_port),
            "LIVEBASE_SRT_PORT": str(args.srt_port),
            "LIVEBASE_HLS_SEGMENT_SECONDS": str(args.segment_seconds),
            "LIVEBASE_RECONNECT_GRACE_SECONDS": str(args.grace_seconds),
        }
    )
    settings = settings.model_copy(update={"hls_ladder": ()})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_service(settings) as svc:
        async with svc.app[DB_SESSIONS]() as db, db.begin():
            token = (await issue_token(db, Role.ADMIN, name="benchmark")).token
        ready = {"http_url": svc.http_url, "rtmp_url": svc.rtmp_url, "token": token}
        print(json.dumps(ready), flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--rtmp-port", type=int, required=True)
    parser.add_argument("--srt-port", type=int, required=True, help="UDP; unused here")
    parser.add_argument("--segment-seconds", type=float, default=2.0)
    parser.add_argument("--grace-seconds", type=float, default=1.0)
    args = parser.parse_args()
    # As `livebase serve` logs (INFO), without the terminal colouring.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    eventloop.run(_run(args))  # as `livebase serve` runs


if __name__ == "__main__":
    main()
