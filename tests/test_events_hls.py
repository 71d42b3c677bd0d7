"""Viewers counted from HLS playlist requests: coalesced into joins, beats and leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_support import World
from events_support import live_session

from analytics.constants import STREAM_ANALYTICS
from analytics.schemas import parse_event
from analytics.viewers import ViewerTracker
from livebase.api.analytics_ctx import VIEWERS
from livebase.api.state import BUS, SETTINGS

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_requests_every_two_seconds_become_a_join_beats_and_a_leave() -> None:
    tracker = ViewerTracker()
    for second in range(0, 96, 2):
        tracker.seen("haifeng", "studio-1", 7, "a", T0 + timedelta(seconds=second))
    tracker.seen("haifeng", "studio-1", 7, "b", T0 + timedelta(seconds=10))
    tracker.sweep(T0 + timedelta(seconds=100))
    assert len(tracker) == 1  # b has been quiet for 90 s
    tracker.sweep(T0 + timedelta(seconds=200))
    events = tracker.drain()
    kinds = [(e["viewer_id"], e["type"], e.get("watch_seconds")) for e in events]
    assert kinds == [
        ("a", "viewer.joined", None),
        ("a", "viewer.heartbeat", 30),
        ("a", "viewer.heartbeat", 30),
        ("a", "viewer.heartbeat", 30),
        ("b", "viewer.joined", None),
        ("b", "viewer.left", 0),
        ("a", "viewer.left", 4),  # last request at 94 s, last beat at 90 s
    ]
    for raw in events:
        parse_event(raw, now=T0 + timedelta(seconds=200))
    assert tracker.drain() == []


async def test_playlist_requests_publish_viewer_events_without_addresses(world: World) -> None:
    app = world.api.app
    live = await live_session(world)
    folder = app[SETTINGS].data_dir / "hls" / live.base / live.room / str(live.id)
    folder.mkdir(parents=True)
    (folder / "master.m3u8").write_text("#EXTM3U\n", encoding="utf-8")
    (folder / "seg0.ts").write_bytes(b"\x47" * 188)
    url = f"/hls/{live.base}/{live.room}/{live.id}/master.m3u8"
    client = world.api.client
    first = await client.get(url, headers={"User-Agent": "Player/1"})
    assert first.status == 200 and "lb_viewer" in first.cookies
    for _ in range(3):  # the cookie now comes along: still the same viewer
        assert (await client.get(url, headers={"User-Agent": "Player/1"})).status == 200
    client.session.cookie_jar.clear()
    assert (await client.get(url, headers={"User-Agent": "Other/2"})).status == 200
    segment = await client.get(f"/hls/{live.base}/{live.room}/{live.id}/seg0.ts")
    assert segment.status == 200  # segments are not counted
    feed = app[VIEWERS]
    assert len(feed.tracker) == 2
    await feed.flush(datetime.now(UTC))
    bus = app[BUS]
    await bus.ensure_group(STREAM_ANALYTICS, "t")
    got = [d.event for d in await bus.read(STREAM_ANALYTICS, "t", "t", count=100)]
    assert [e.type for e in got] == ["viewer.joined", "viewer.joined"]
    assert {e.data["session_id"] for e in got} == {live.id}
    assert all("127.0.0.1" not in str(e.data) for e in got)
