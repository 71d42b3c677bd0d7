"""``livebase demo``: the whole stack on the embedded default, driven end to end.

It starts the service, seeds the sample bases, then acts as the people who use it, through the
real HTTP API and the real ingest: a merchant lists products (sample data, clearly marked), a
manager plans a session, the host goes live (an ffmpeg test source pushed over RTMP as OBS
pushes), pins products and sells. It prints where to look (API, HLS player, replay) and stops
cleanly on Ctrl-C or after ``--duration`` seconds, leaving no child process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from ingest.process import ChildProcess
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role
from livebase.service import Running, running_service, wait_for_stop_signal
from livebase.settings import Settings

SAMPLE = "【示例数据 sample】"
PRODUCTS = [
    ("陆河青梅 (示例)", "Luhe green plums (sample)", 3980, 200),
    ("海丰莲花山茶 (示例)", "Haifeng Lianhuashan tea (sample)", 12800, 80),
    ("海丰油占米 (示例)", "Haifeng Youzhan rice (sample)", 5990, 150),
]


class DemoError(RuntimeError):
    pass


@dataclass
class Driver:
    """Calls the API as a person would, over HTTP, with a token."""

    http: aiohttp.ClientSession
    url: str
    token: str
    calls: int = 0
    log: list[str] = field(default_factory=list)

    async def __call__(self, method: str, path: str, body: Any = None) -> Any:
        self.calls += 1
        async with self.http.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else None
            if resp.status >= 400:
                raise DemoError(f"{method} {path} → {resp.status}: {payload}")
            return payload


async def _admin_token(app: Any) -> str:
    async with app[DB_SESSIONS]() as db, db.begin():
        return (await issue_token(db, Role.ADMIN, name="demo")).token


@dataclass
class Scene:
    session_id: int
    room: str
    stream_key: str
    products: list[dict[str, Any]]


async def prepare(api: Driver) -> Scene:
    """What a merchant and a base manager do before a session: listings, a host, a plan."""
    base = "/api/v1/bases/haifeng"
    merchant = await api("POST", f"{base}/merchants", {"name": f"海丰农特产合作社 {SAMPLE}"})
    rooms = await api("GET", f"{base}/rooms")
    room = rooms["items"][0]
    host = await api(
        "POST", f"{base}/hosts", {"display_name": "小梅 (示例主播)", "room_id": room["id"]}
    )
    products = []
    for title_zh, title_en, price, stock in PRODUCTS:
        products.append(
            await api(
                "POST",
                f"{base}/products",
                {
                    "merchant_id": merchant["id"],
                    "title_zh": title_zh,
                    "title_en": title_en,
                    "description_zh": SAMPLE,
                    "price_fen": price,
                    "stock": stock,
                    "status": "active",
                },
            )
        )
    themes = await api("GET", "/api/v1/themes")
    theme = next(t for t in themes["items"] if t["slug"] == "gi-produce")
    session = await api(
        "POST",
        f"{base}/sessions",
        {
            "room_id": room["id"],
            "host_id": host["id"],
            "theme_id": theme["id"],
            "title": "海丰好物 · 地理标志农产品专场 (示例)",
            "scheduled_start": datetime.now(UTC).isoformat(),
        },
    )
    sid = session["id"]
    await api("PUT", f"{base}/sessions/{sid}/lineup", {"product_ids": [p["id"] for p in products]})
    key = await api("POST", f"{base}/rooms/{room['slug']}/stream-key")
    return Scene(sid, room["slug"], key["stream_key"], products)


def encoder(settings: Settings, rtmp_url: str, key: str) -> ChildProcess:
    """An ffmpeg test source pushed the way OBS pushes: H.264 CBR, 2 s keyframes, AAC."""
    return ChildProcess(
        [
            settings.ffmpeg_path(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-b:v",
            "2500k",
            "-maxrate",
            "2500k",
            "-bufsize",
            "5000k",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "flv",
            f"{rtmp_url}/{key}",
        ],
        name="demo-encoder",
    )


async def sell(api: Driver, scene: Scene, console: Console, rng: random.Random) -> int:
    """The host pins each product in turn while viewers buy; returns the orders placed."""
    base = "/api/v1/bases/haifeng"
    sid = scene.session_id
    orders = 0
    for product in scene.products:
        pin = await api("POST", f"{base}/sessions/{sid}/pins", {"product_id": product["id"]})
        console.print(f"  📌 pinned {product['title_zh']}")
        for n in range(rng.randint(2, 5)):
            qty = rng.randint(1, 3)
            await api(
                "POST",
                f"{base}/orders",
                {
                    "platform": rng.choice(["douyin", "kuaishou", "channels"]),
                    "platform_order_id": f"demo-{sid}-{product['id']}-{n}",
                    "product_id": product["id"],
                    "session_id": sid,
                    "quantity": qty,
                    "amount_fen": qty * product["price_fen"],
                    "placed_at": datetime.now(UTC).isoformat(),
                },
            )
            orders += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5))
        await api("POST", f"{base}/sessions/{sid}/pins/{pin['id']}/unpin")
    return orders


async def _wait_live(api: Driver, svc: Running, scene: Scene, within: float = 30) -> str:
    """Wait until the session is live and its first HLS segment is out; returns the URL."""
    deadline = asyncio.get_running_loop().time() + within
    url = f"{svc.http_url}/hls/haifeng/{scene.room}/{scene.session_id}/source/index.m3u8"
    while asyncio.get_running_loop().time() < deadline:
        session = await api("GET", f"/api/v1/bases/haifeng/sessions/{scene.session_id}")
        if session["status"] == "live":
            async with api.http.get(url) as resp:
                if resp.status == 200:
                    return f"{svc.http_url}/hls/haifeng/{scene.room}/live.m3u8"
        await asyncio.sleep(0.25)
    raise DemoError("the demo stream did not go live; see the log lines above")


async def run_demo(settings: Settings, *, duration: float, console: Console) -> int:
    rng = random.Random(7)  # noqa: S311 (simulated shoppers, not security)
    async with running_service(settings) as svc, aiohttp.ClientSession() as http:
        api = Driver(http, svc.http_url, await _admin_token(svc.app))
        with console.status("preparing listings and a session…"):
            scene = await prepare(api)
        source = encoder(settings, svc.rtmp_url, scene.stream_key)
        await source.start()
        selling: asyncio.Task[int] | None = None
        try:
            with console.status("the host goes live (ffmpeg test source over RTMP)…"):
                hls = await _wait_live(api, svc, scene)
            console.print(f"[green]●[/] session {scene.session_id} is live in {scene.room}")
            selling = asyncio.create_task(sell(api, scene, console, rng))
            table = Table(title="Livebase demo", show_header=False)
            table.add_row("API", f"{svc.http_url}/api/v1/bases")
            table.add_row("OpenAPI", f"{svc.http_url}/openapi.json")
            table.add_row("HLS player URL", hls)
            table.add_row("Health / metrics", f"{svc.http_url}/healthz · {svc.http_url}/metrics")
            table.add_row("RTMP ingest", f"{svc.rtmp_url} (key: livebase rooms --rotate-key)")
            table.add_row("Admin token", api.token)
            console.print(table)
            console.print(
                "Play the HLS URL in VLC or ffplay. "
                + ("Press Ctrl-C to stop." if not duration else f"Stopping in {duration:g} s.")
            )
            waiter = asyncio.ensure_future(wait_for_stop_signal())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout=duration or None)
            except TimeoutError:
                pass
            finally:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        finally:
            if selling is not None:
                selling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await selling
            await source.stop(grace=2)
        orders = selling.result() if selling and not selling.cancelled() else None
        console.print(
            f"replay: {svc.http_url}/hls/haifeng/{scene.room}/{scene.session_id}/master.m3u8"
            + (f" · {orders} orders" if orders is not None else "")
        )
    console.print("demo stopped")
    return 0
