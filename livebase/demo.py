"""``livebase demo``: the whole stack on the embedded default, driven end to end.

It starts the service, seeds the sample bases, then acts as the people who use it, through the
real HTTP API and the real ingest: a merchant lists products (sample data, clearly marked), a
manager plans a session, the host goes live (an ffmpeg test source pushed over RTMP as OBS
pushes), pins products and sells. It prints where to look (API, HLS player, replay) and stops
cleanly on Ctrl-C or after ``--duration`` seconds, leaving no child process behind. It ends with
the base's daily report of what it drove (HTML, beside where the scheduled reports go).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from analytics.report import build_daily_report, fmt, render
from analytics.report.files import report_path, write_atomic
from ingest.process import ChildProcess
from livebase import gi
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Base, Role
from livebase.service import Running, running_service, stop_signals
from livebase.settings import Settings

VIEWERS = 5  # simulated players watching the base's own HLS stream
SAMPLE = "【示例数据 sample】"


def _sample_credit_code(first17: str) -> str:
    """A well-formed but made-up unified social credit code (the check character is real)."""
    return first17 + gi.credit_code_check_char(first17)


# 93 = a farmers' cooperative registered by market regulation; 441521 = 海丰县. Made up.
SAMPLE_CREDIT_CODE = _sample_credit_code("93441521MA0000001")


def _sample_gi(system: str, name: str, number: str, area: str, spec: str | None) -> dict[str, Any]:
    # Sample data: the names and areas are the products' own, every number and document is
    # invented (示例), so the listings can go live in the demo without claiming a real register.
    return {
        "system": system,
        "registered_name": name,
        "registration_number": number,
        "holder": f"示例持有人（{name}）",
        "protected_area": area + "（示例）",
        "standard_code": spec,
        "credit_code": SAMPLE_CREDIT_CODE,
        "authorisation_ref": f"示例-授权书-{name}",
    }


PRODUCTS: list[dict[str, Any]] = [
    {
        "title_zh": "陆河青梅 (示例)",
        "title_en": "Luhe green plums (sample)",
        "category": "fruit",
        "price_fen": 3980,
        "skus": [
            {"sku": "500g", "spec_zh": "鲜果 500g", "price_fen": 3980, "stock": 200},
            {"sku": "gift-2500g", "spec_zh": "礼盒 2.5kg", "price_fen": 16800, "stock": 40},
        ],
        "gi": _sample_gi(
            "protected_product", "陆河青梅", "示例-0001", "广东省汕尾市陆河县现辖行政区域", None
        ),
    },
    {
        "title_zh": "海丰莲花山茶 (示例)",
        "title_en": "Haifeng Lianhuashan tea (sample)",
        "category": "tea",
        "price_fen": 12800,
        "skus": [{"sku": "250g", "spec_zh": "250g 罐装", "price_fen": 12800, "stock": 80}],
        # AGI numbers have a published format (AGI + 5 digits); 9xxxx marks these as samples.
        "gi": _sample_gi(
            "agricultural",
            "海丰莲花山茶",
            "AGI90001",
            "广东省汕尾市海丰县海城镇、公平镇、平东镇、黄羌镇",
            "AGI2020-03-9001",
        ),
    },
    {
        "title_zh": "海丰油占米 (示例)",
        "title_en": "Haifeng Youzhan rice (sample)",
        "category": "rice",
        "price_fen": 5990,
        "skus": [
            {"sku": "5kg", "spec_zh": "5kg 袋装", "price_fen": 5990, "stock": 150},
            {"sku": "10kg", "spec_zh": "10kg 袋装", "price_fen": 10990, "stock": 60},
        ],
        "gi": _sample_gi(
            "agricultural", "海丰油占米", "AGI90002", "广东省汕尾市海丰县现辖行政区域", None
        ),
    },
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
    merchant = await api(
        "POST",
        f"{base}/merchants",
        {"name": f"海丰农特产合作社 {SAMPLE}", "credit_code": SAMPLE_CREDIT_CODE},
    )
    rooms = await api("GET", f"{base}/rooms")
    room = rooms["items"][0]
    host = await api(
        "POST", f"{base}/hosts", {"display_name": "小梅 (示例主播)", "room_id": room["id"]}
    )
    products = []
    for listing in PRODUCTS:
        products.append(
            await api(
                "POST",
                f"{base}/products",
                {
                    **listing,
                    "merchant_id": merchant["id"],
                    "description_zh": SAMPLE,
                    "themes": ["gi-produce"],
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


@dataclass
class Sales:
    orders: int = 0


async def sell(
    api: Driver, scene: Scene, console: Console, rng: random.Random, sales: Sales
) -> None:
    """The host pins each product in turn, round after round until the demo stops (so the
    player page always has a card to show soon), while viewers buy."""
    base = "/api/v1/bases/haifeng"
    sid = scene.session_id
    for round_ in itertools.count(1):
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
                        "platform_order_id": f"demo-{sid}-{round_}-{product['id']}-{n}",
                        "product_id": product["id"],
                        "session_id": sid,
                        "quantity": qty,
                        "amount_fen": qty * product["price_fen"],
                        "placed_at": datetime.now(UTC).isoformat(),
                    },
                )
                sales.orders += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5))
            await api("POST", f"{base}/sessions/{sid}/pins/{pin['id']}/unpin")


async def watch(url: str, viewer: int, stop: asyncio.Event) -> None:
    """One viewer's player on a device of its own: reloads the live playlist every couple of
    seconds, as hls.js or Safari do, keeping the server's viewer cookie."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        headers={"User-Agent": f"LivebaseDemoPlayer/1.0 (device {viewer})"},
    ) as player:
        while not stop.is_set():
            async with player.get(url) as master:
                text = await master.text()
                variant = next((ln for ln in text.splitlines() if ln.endswith(".m3u8")), "")
                base_url = str(master.url).rsplit("/", 1)[0]
            if variant:
                async with player.get(f"{base_url}/{variant}") as media:
                    await media.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2)


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


async def daily_report(
    svc: Running, settings: Settings, console: Console, *, expected_orders: int
) -> None:
    """Today's report of the base so far, from the rollups, once they hold the orders the
    live counters saw (the rollup consumer runs a moment behind)."""
    base = "haifeng"
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with svc.app[DB_SESSIONS]() as db:
            timezone = await db.scalar(select(Base.timezone).where(Base.slug == base))
            today = datetime.now(ZoneInfo(timezone or "Asia/Shanghai")).date()
            report = await build_daily_report(db, today, base=base)
        orders = report.figure("orders") if report.has_data else 0
        if (orders or 0) >= expected_orders or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    # Beside, not in place of, the scheduled report of the whole day (written tomorrow).
    path = report_path(settings.data_dir.resolve(), base, today, "demo.html")
    await asyncio.to_thread(write_atomic, path, render(report, "html").body)
    if report.has_data:
        summary = (
            f"{len(report.sessions)} session(s), {orders} orders, "
            f"GMV {fmt.yuan(int(report.figure('gmv_fen') or 0))}, "
            f"peak {report.figure('pcu') or 0} viewers, {len(report.anomalies)} anomalies"
        )
    else:
        summary = "no data yet"
    console.print(f"daily report ({today}): {summary}")
    console.print(f"daily report: {path}")


async def run_demo(settings: Settings, *, duration: float, console: Console) -> int:
    with stop_signals() as stop:
        return await _run(settings, duration, console, stop)


async def _run(settings: Settings, duration: float, console: Console, stop: asyncio.Event) -> int:
    rng = random.Random(7)  # noqa: S311 (simulated shoppers, not security)
    async with running_service(settings) as svc, aiohttp.ClientSession() as http:
        api = Driver(http, svc.http_url, await _admin_token(svc.app))
        with console.status("preparing listings and a session…"):
            scene = await prepare(api)
        source = encoder(settings, svc.rtmp_url, scene.stream_key)
        await source.start()
        selling: asyncio.Task[None] | None = None
        sales = Sales()
        live_orders = 0
        stop_viewers = asyncio.Event()
        viewers: list[asyncio.Task[None]] = []
        try:
            with console.status("the host goes live (ffmpeg test source over RTMP)…"):
                hls = await _wait_live(api, svc, scene)
            console.print(f"[green]●[/] session {scene.session_id} is live in {scene.room}")
            selling = asyncio.create_task(sell(api, scene, console, rng, sales))
            viewers = [asyncio.create_task(watch(hls, i, stop_viewers)) for i in range(VIEWERS)]
            table = Table(title="Livebase demo", show_header=False)
            table.add_row("API", f"{svc.http_url}/api/v1/bases")
            table.add_row("OpenAPI", f"{svc.http_url}/openapi.json")
            table.add_row("Player page", f"{svc.http_url}/watch/haifeng/{scene.room}")
            table.add_row("HLS player URL", hls)
            table.add_row("Health / metrics", f"{svc.http_url}/healthz · {svc.http_url}/metrics")
            table.add_row("RTMP ingest", f"{svc.rtmp_url} (key: livebase rooms --rotate-key)")
            table.add_row("Admin token", api.token)
            console.print(table)
            console.print(
                "Open the player page in a browser (the pinned product shows on it), "
                "or play the HLS URL in VLC or ffplay. "
                + ("Press Ctrl-C to stop." if not duration else f"Stopping in {duration:g} s.")
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=duration or None)
            live = await api("GET", "/api/v1/bases/haifeng/analytics/live")
            live_orders = live["orders"]
            console.print(
                f"live counters: {live['concurrent_viewers']} watching now, "
                f"peak {live['peak_concurrent_viewers']}, {live['orders']} orders, "
                f"GMV ¥{live['gmv_fen'] / 100:.2f}"
            )
        finally:
            stop_viewers.set()
            await asyncio.gather(*viewers, return_exceptions=True)
            if selling is not None:
                selling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await selling
            await source.stop(grace=2)
        console.print(
            f"replay: {svc.http_url}/watch/haifeng/{scene.room}/sessions/{scene.session_id}"
            f" · {svc.http_url}/hls/haifeng/{scene.room}/{scene.session_id}/master.m3u8"
            + f" · {sales.orders} orders"
        )
        await daily_report(svc, settings, console, expected_orders=live_orders)
    console.print("demo stopped")
    return 0
