"""The base's player pages in a real headless Chromium against the running service.

Live: the product card appears when the host pins through the API and goes on unpin; a title
with markup is shown as text. Replay: a recording cut as the HLS output cuts it (our own
MPEG-TS muxer, played by hls.js), with the pin as an ``EXT-X-DATERANGE`` in its playlist,
shows the card while the position is inside the pin.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import PIL.Image
from api_support import World
from cdp_support import Page, browser
from listings_support import gi_claim
from media import make_segments
from orders_support import ok

from ingest.hls import DateRange, Variant, render_master
from ingest.outputs.hls import Rendition, write_atomic
from livebase.api.state import SETTINGS

HF = "/api/v1/bases/haifeng"
HOSTILE = '<script>window.hacked = 1</script><img src=x onerror="window.hacked = 2">茶'
CARD_SHOWN = "!document.getElementById('card').hidden"
CARD_HIDDEN = "document.getElementById('card').hidden"
VIDEO_PLAYS = "document.getElementById('video').readyState >= 2"
CARD_TEXT = """JSON.stringify({
  title: document.getElementById('card-title-zh').textContent,
  en: document.getElementById('card-title-en').textContent,
  price: document.getElementById('card-price').textContent,
  gi: document.getElementById('card-gi').hidden ? null
      : document.getElementById('card-gi-name').textContent,
  image: document.getElementById('card-image').getAttribute('src'),
  elements: document.getElementById('card-title-zh').children.length,
  scripts: document.scripts.length,
  hacked: window.hacked === undefined ? null : window.hacked,
})"""


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    PIL.Image.new("RGB", (160, 160), color).save(out, "PNG")
    return out.getvalue()


async def gi_product(world: World, title: str) -> dict[str, Any]:
    product = await ok(world, "POST", f"{HF}/products", {
        "merchant_id": world.ids["haifeng.merchant"], "title_zh": title,
        "title_en": "Lianhua Mountain tea", "price_fen": 6800, "stock": 20,
        "gi": gi_claim(), "status": "active",
    })  # fmt: skip
    status, image = await world.api.call(
        "POST",
        f"{HF}/products/{product['id']}/images",
        world.tokens["admin"],
        data=png((46, 125, 50)),
        headers={"Content-Type": "image/png"},
    )
    assert status == 201, image
    return product


async def live_session(world: World, product_id: int) -> str:
    session = await ok(world, "POST", f"{HF}/sessions", {
        "room_id": world.ids["haifeng.room"], "host_id": world.ids["haifeng.host"],
        "title": "莲花山茶专场",
    })  # fmt: skip
    sp = f"{HF}/sessions/{session['id']}"
    await ok(world, "PUT", sp + "/lineup", {"product_ids": [product_id]})
    await ok(world, "PATCH", sp, {"status": "live"})
    return sp


def url(world: World, path: str) -> str:
    return str(world.api.client.make_url(path))


async def card(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(await page.evaluate(CARD_TEXT))
    return result


async def test_the_live_page_shows_the_pinned_card_and_hides_it_on_unpin(
    world: World, tmp_path: Path
) -> None:
    product = await gi_product(world, HOSTILE)
    sp = await live_session(world, product["id"])
    host = world.tokens["haifeng.host"]
    async with browser(tmp_path / "profile") as page:
        await page.goto(url(world, "/watch/haifeng/studio-1"))
        assert await page.evaluate("document.title") == "一号直播间 · 直播"
        # Nothing is pinned, and the room has no stream yet: the page says it waits.
        await page.wait_for("document.getElementById('status').textContent.includes('Waiting')")
        assert await page.evaluate(CARD_HIDDEN)
        pin = await ok(world, "POST", sp + "/pins", {"product_id": product["id"]}, token=host)
        await page.wait_for(CARD_SHOWN)
        shown = await card(page)
        await page.screenshot(tmp_path / "live.png")
        assert shown == {
            "title": HOSTILE, "en": "Lianhua Mountain tea", "price": "¥68.00",
            "gi": "海丰莲花山茶", "image": product_image(await product_of(world, product["id"])),
            "elements": 0, "scripts": 2, "hacked": None,
        }  # fmt: skip
        await ok(world, "POST", f"{sp}/pins/{pin['id']}/unpin", token=host)
        await page.wait_for(CARD_HIDDEN)
        # The stream comes up; the next pin shows the card again and the page, which waited
        # for the stream, plays it.
        assert await page.evaluate(VIDEO_PLAYS) is False
        record(world, pin["session_id"], datetime.now(UTC), [], ended=False)
        await ok(world, "POST", sp + "/pins", {"product_id": product["id"]}, token=host)
        await page.wait_for(CARD_SHOWN)
        await page.wait_for(VIDEO_PLAYS)
        assert await page.evaluate("document.getElementById('badge').textContent") == "直播 LIVE"


async def product_of(world: World, product_id: int) -> dict[str, Any]:
    product: dict[str, Any] = await ok(world, "GET", f"{HF}/products/{product_id}")
    return product


def product_image(product: dict[str, Any]) -> str:
    return str(product["images"][0]["url"])


def record(
    world: World, session_id: int, origin: datetime, ranges: list[DateRange], *, ended: bool
) -> None:
    """HLS of the session as the HLS output writes it, 8 s of video from ``origin``: the
    master and live playlists, and the recording (ended, or still growing)."""
    directory = world.api.app[SETTINGS].data_dir / "hls" / "haifeng" / "studio-1" / str(session_id)
    rendition = Rendition(directory / "source", origin, window=6, dateranges=lambda: ranges)
    for line in make_segments(rendition.dir, seconds=8, segment_seconds=2):
        rendition.add(line)
    if ended:
        rendition.end()
    write_atomic(directory / "master.m3u8", render_master([Variant("source/index.m3u8", 600_000)]))


async def seek(page: Page, seconds: float) -> None:
    await page.evaluate(
        "new Promise(done => { const v = document.getElementById('video');"
        f" v.addEventListener('seeked', done, {{once: true}}); v.currentTime = {seconds}; }})"
    )


async def test_the_replay_shows_the_card_while_the_position_is_inside_the_pin(
    world: World, tmp_path: Path
) -> None:
    product = await gi_product(world, "海丰莲花山茶 <b>新茶</b>")
    sp = await live_session(world, product["id"])
    pin = await ok(world, "POST", sp + "/pins", {"product_id": product["id"]})
    await ok(world, "POST", f"{sp}/pins/{pin['id']}/unpin")
    await ok(world, "PATCH", sp, {"status": "ended"})
    session_id = int(sp.rsplit("/", 1)[1])
    pinned_at = datetime.fromisoformat(pin["pinned_at"])
    # The pin as the ingest writes it, held 2.5 s: from 3 s to 5.5 s into the recording.
    held = DateRange(
        f"pin-{pin['id']}",
        pinned_at,
        pinned_at + timedelta(seconds=2.5),
        attributes={"X-PRODUCT-ID": product["id"], "X-TITLE": "海丰莲花山茶"},
    )
    record(world, session_id, pinned_at - timedelta(seconds=3), [held], ended=True)
    playlist = await world.api.client.get(f"/hls/haifeng/studio-1/{session_id}/source/replay.m3u8")
    assert f'#EXT-X-DATERANGE:ID="pin-{pin["id"]}"' in await playlist.text()

    async with browser(tmp_path / "profile") as page:
        await page.goto(url(world, f"/watch/haifeng/studio-1/sessions/{session_id}"))
        assert await page.evaluate("document.title") == "莲花山茶专场 · 回放"
        await page.wait_for("document.getElementById('player').dataset.ready")
        # hls.js loaded the recording: the browser knows its length.
        duration = await page.wait_for("document.getElementById('video').duration")
        assert 7 < duration < 9
        await seek(page, 1.0)
        assert await page.evaluate(CARD_HIDDEN)
        await seek(page, 4.0)
        await page.wait_for(CARD_SHOWN)
        # The frame at the position is decoded: the video itself plays, not only the card.
        await page.wait_for(VIDEO_PLAYS)
        shown = await card(page)
        assert shown["title"] == "海丰莲花山茶 <b>新茶</b>" and shown["elements"] == 0
        assert shown["price"] == "¥68.00" and shown["gi"] == "海丰莲花山茶"
        await page.screenshot(tmp_path / "replay.png")
        await seek(page, 6.5)
        await page.wait_for(CARD_HIDDEN)
        await seek(page, 3.5)
        await page.wait_for(CARD_SHOWN)


async def test_pages_of_unknown_rooms_and_sessions_are_404(world: World) -> None:
    sp = await live_session(world, (await gi_product(world, "茶"))["id"])
    session_id = sp.rsplit("/", 1)[1]
    for path, code in [
        ("/watch/haifeng/nowhere", "not_found"),
        ("/watch/nobase/studio-1", "not_found"),
        ("/watch/haifeng/studio-1/sessions/abc", "not_found"),
        ("/watch/haifeng/studio-1/sessions/99999", "not_found"),
        (f"/watch/haifeng/studio-2/sessions/{session_id}", "not_found"),  # another room's
        (f"/watch/haifeng/studio-1/sessions/{session_id}", "no_recording"),
        (f"/watch/luhe/studio-1/sessions/{session_id}/cards", "not_found"),
    ]:
        status, payload = await world.api.call("GET", path, None)
        assert (status, payload["error"]["code"]) == (404, code), path


async def test_pages_and_cards_are_public_and_the_page_allows_only_our_scripts(
    world: World,
) -> None:
    product = await gi_product(world, "茶")
    sp = await live_session(world, product["id"])
    pin = await ok(world, "POST", sp + "/pins", {"product_id": product["id"]})
    client = world.api.client  # no token anywhere below
    page = await client.get("/watch/haifeng/studio-1")
    assert page.status == 200 and page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    html = await page.text()
    assert 'data-pins="/live/haifeng/studio-1/pins"' in html
    assert "http" not in html  # nothing from elsewhere
    status, cards = await world.api.call(
        "GET", f"/watch/haifeng/studio-1/sessions/{pin['session_id']}/cards", None
    )
    assert status == 200 and list(cards["cards"]) == [f"pin-{pin['id']}"]
    assert cards["cards"][f"pin-{pin['id']}"]["product"]["gi"]["registered_name"] == "海丰莲花山茶"
    for path in ("/static/vendor/hls.js/hls.min.js", "/static/vendor/hls.js/LICENSE"):
        assert (await client.get(path)).status == 200
    for path in (
        "/static/player/nothing.js",
        "/static/player/watch.html",  # the template is not a page
        "/static/" + "..%2F" * 12 + "etc%2Fpasswd",
    ):
        status, payload = await world.api.call("GET", path, None)
        assert status == 404 and payload["error"]["status"] == 404, path
