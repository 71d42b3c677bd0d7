"""The WeChat Channels live-data adapter against a local API that behaves as documented:
the access token's fetch, reuse and expiry, errcode errors, the rate limit, and the figures
stored through the same path as a Douyin Compass import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from api_support import World
from channels_support import APPID, SECRET, Clock, FakeChannels
from platform_support import session_of, theme_id

from analytics.platform.channels import ChannelsClient, ChannelsError, Credentials, RateLimited
from analytics.platform.store import save_figures
from livebase.api.state import DB_SESSIONS

EXPORT_ID = "export/UzFfAgtgekIEAQAAAAAA1qBnRqLkgQAAAAstQy6ubaLX4KHWvLEZgBPE"
START = datetime(2025, 5, 1, 12, tzinfo=UTC)  # 20:00 in Shanghai
LIVE = {
    "start_time": int(START.timestamp()), "live_duration": 5400,
    "summary": {"new_watch_uv": 1500, "max_online_watch_uv": 210, "impression_uv": 9000,
                "average_watch_seconds_per_audience": 75, "comment_uv": 90},
    "ec": {"total_gmv": 456_789, "total_pay_pv": 30, "total_pay_uv": 27, "total_clk_pv": 800,
           "total_exp_pv": 12_000, "refund_amount": 1999, "cumulative_audience_count": 1500},
}  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[tuple[FakeChannels, str]]:
    platform = FakeChannels(clock, lives={EXPORT_ID: LIVE})
    server = TestServer(platform.app())
    await server.start_server()
    yield platform, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(http: aiohttp.ClientSession, api: str, clock: Clock, secret: str = SECRET):
    return ChannelsClient(http, Credentials(APPID, secret), api=api, clock=clock)


async def test_figures_map_to_ours_and_the_token_is_reused(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock
) -> None:
    platform, api = fake
    channels = client(http, api, clock)
    fig = await channels.live_figures(EXPORT_ID, account="海丰茶哥")
    again = await channels.live_figures(EXPORT_ID, account="海丰茶哥")
    assert platform.token_fetches == 1 and platform.answers == [0, 0]
    assert fig == again
    assert (fig.platform, fig.row_key, fig.account) == ("channels", f"id:{EXPORT_ID}", "海丰茶哥")
    assert (fig.started_at, fig.live_seconds) == (START, 5400)
    assert (fig.uv, fig.peak_concurrent, fig.viewer_seconds) == (1500, 210, 75 * 1500)
    assert (fig.gmv_fen, fig.orders, fig.buyers, fig.refund_fen) == (456_789, 30, 27, 1999)
    assert (fig.clicks, fig.impressions) == (800, 12_000)


async def test_a_token_is_renewed_before_its_stated_expiry(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock
) -> None:
    platform, api = fake
    channels = client(http, api, clock)
    await channels.live_figures(EXPORT_ID)
    clock.now += 7200 - 299  # inside the renewal margin, still valid at the platform
    await channels.live_figures(EXPORT_ID)
    assert platform.token_fetches == 2 and platform.answers == [0, 0]


@pytest.mark.parametrize(("how", "code"), [("expired", 42001), ("superseded", 40001)])
async def test_a_rejected_token_is_renewed_once_and_the_call_retried(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock, how: str,
    code: int,
) -> None:  # fmt: skip
    platform, api = fake
    channels = client(http, api, clock)
    await channels.live_figures(EXPORT_ID)
    if how == "expired":
        platform.expire_all()
    else:  # another holder of the app's secret fetched a token, and the overlap ran out
        other = client(http, api, clock)
        await other.token()
        clock.now += 301
    fig = await channels.live_figures(EXPORT_ID)
    assert fig.uv == 1500
    assert platform.answers == [0, code, 0] and platform.token_fetches == 2 + (how != "expired")


async def test_the_rate_limit_is_raised_not_hammered(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock
) -> None:
    platform, api = fake
    platform.quota_per_minute = 2
    channels = client(http, api, clock)
    await channels.live_figures(EXPORT_ID)
    await channels.live_figures(EXPORT_ID)
    with pytest.raises(RateLimited) as caught:
        await channels.live_figures(EXPORT_ID)
    assert caught.value.errcode == 45009
    assert platform.answers == [0, 0, 45009]
    clock.now += 61  # the next minute
    assert (await channels.live_figures(EXPORT_ID)).uv == 1500


async def test_errors_name_the_code_and_never_the_secrets(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    platform, api = fake
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ChannelsError) as caught:
        await client(http, api, clock, secret="wrong-secret").live_figures(EXPORT_ID)
    assert caught.value.errcode == 40001 and platform.answers == []
    with pytest.raises(ChannelsError) as unknown:
        await client(http, api, clock).live_figures("export/nope")
    assert unknown.value.errcode == 40097
    # The fake platform's own access log shows its query strings; ours must show nothing.
    ours = " ".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp"))
    told = f"{caught.value} {unknown.value} {ours} {Credentials(APPID, SECRET)!r}"
    assert SECRET not in told and "ACCESSTOKEN" not in told


async def test_absurd_figures_are_an_error_not_a_crash(
    fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock
) -> None:
    platform, api = fake
    platform.lives["export/huge"] = {**LIVE, "ec": {"total_gmv": 10**30}}
    with pytest.raises(ChannelsError, match="cannot be read"):
        await client(http, api, clock).live_figures("export/huge")


async def test_figures_are_stored_like_an_import(
    world: World, fake: tuple[FakeChannels, str], http: aiohttp.ClientSession, clock: Clock
) -> None:
    _, api = fake
    host = world.ids["haifeng.host"]
    gi = await theme_id(world, "gi-produce")
    session = await session_of(world, "haifeng", host, gi, START)
    fig = await client(http, api, clock).live_figures(EXPORT_ID, account="haifeng host")
    async with world.api.app[DB_SESSIONS]() as db, db.begin():
        base_id = world.ids["haifeng.base"]
        saved = await save_figures(db, base_id, [fig])
        assert (saved.created, saved.matched_sessions) == (1, 1)
        assert saved.rows[0]["session_id"] == session.id
        again = await save_figures(db, base_id, [fig])
        assert (again.created, again.unchanged) == (0, 1)
    status, body = await world.api.call(
        "GET", "/api/v1/bases/haifeng/rankings?kind=themes&date=2025-05-01&source=channels",
        world.tokens["haifeng.manager"],
    )  # fmt: skip
    assert status == 200, body
    (row,) = body["rows"]
    assert (row["entity_id"], row["uv"], row["gmv_fen"], row["rank"]) == (gi, 1500, 456_789, 1)
