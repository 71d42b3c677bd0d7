"""The pin writer: pins and unpins applied together, each judged on its own."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import World
from listings_support import HF, PRODUCTS, envelope, gi_claim, ok
from sqlalchemy import select

from livebase.api.pin_writer import PIN_WRITER, PinJob, PinWriter
from livebase.api.state import BUS, DB_SESSIONS, TOKENS, WRITE_QUEUE
from livebase.auth import authenticate
from livebase.bus import STREAM_DOMAIN
from livebase.db.models import Pin
from livebase.errors import ApiError, Conflict, NotFound, ValidationFailed


async def _live_session(world: World) -> dict[str, Any]:
    """A live session whose lineup holds two good products, a sold-out one and one with an
    incomplete GI claim, and a product outside the lineup."""
    api, m = world.api, world.tokens["haifeng.manager"]
    mid = world.ids["haifeng.merchant"]

    async def product(title: str, **extra: Any) -> int:
        body = {"merchant_id": mid, "title_zh": title, "price_fen": 100, **extra}
        return int((await ok(api, "POST", PRODUCTS, m, body))["id"])

    ids = {
        "good1": await product("一", stock=3),
        "good2": await product("二", stock=2),
        "sold_out": await product("三"),
        "unclaimed": await product("四", stock=1, gi=gi_claim(holder=None)),
        "outside": await product("五", stock=5),
    }
    room = world.ids["haifeng.room"]
    sessions = {}
    for name in ("live", "planned"):
        session = await ok(api, "POST", HF + "/sessions", m, {"room_id": room, "title": name})
        sessions[name] = session["id"]
        lineup = [ids[k] for k in ("good1", "good2", "sold_out", "unclaimed")]
        await ok(api, "PUT", f"{HF}/sessions/{session['id']}/lineup", m, {"product_ids": lineup})
    await ok(api, "PATCH", f"{HF}/sessions/{sessions['live']}", m, {"status": "live"})
    return {**ids, **sessions}


async def _pins(world: World, session_id: int) -> list[tuple[int, int, bool]]:
    async with world.api.app[DB_SESSIONS]() as db:
        rows = await db.execute(
            select(Pin.id, Pin.product_id, Pin.unpinned_at)
            .where(Pin.session_id == session_id)
            .order_by(Pin.id)
        )
        return [(pid, product, ended is None) for pid, product, ended in rows]


async def test_a_batch_applies_the_good_jobs_and_refuses_each_bad_one(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    x = await _live_session(world)
    live = x["live"]
    first = await ok(api, "POST", f"{HF}/sessions/{live}/pins", m, {"product_id": x["good1"]})
    bus = api.app[BUS]
    await bus.ensure_group(STREAM_DOMAIN, "pin-batch-test")
    await bus.read(STREAM_DOMAIN, "pin-batch-test", "t", count=1000)  # what came before
    async with api.app[DB_SESSIONS]() as db:
        principal = await authenticate(db, m, api.app[TOKENS])

    def pin(product: str, session: int = live, base: str = "haifeng") -> PinJob:
        return PinJob(principal, base, session, product_id=x[product], stream_offset_ms=5)

    def unpin(pin_id: int) -> PinJob:
        return PinJob(principal, "haifeng", live, pin_id=pin_id, pin_raw=str(pin_id))

    jobs = [
        pin("good2"),  # ends the pin made before the batch
        pin("sold_out"),
        pin("unclaimed"),
        pin("outside"),
        pin("good1", session=x["planned"]),
        unpin(first["id"]),  # already ended by the first job
        pin("good1"),  # ends the first job's pin
        unpin(2**31 - 1),
        pin("good1", base="luhe"),  # the session is not in that base
        pin("good1", session=2**31 - 1),
    ]
    writer = PinWriter(api.app[DB_SESSIONS], bus, api.app[WRITE_QUEUE])
    calls = [asyncio.create_task(writer.submit(job)) for job in jobs]
    await asyncio.sleep(0)  # every job is waiting before the writer starts
    running = asyncio.create_task(writer.run())
    try:
        got = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        running.cancel()
        await asyncio.wait([running])
    assert writer.batches == 1

    def refused(i: int, kind: type[ApiError], code: str) -> None:
        assert isinstance(got[i], kind) and got[i].code == code, got[i]

    refused(1, Conflict, "out_of_stock")
    refused(2, ValidationFailed, "gi_incomplete")
    refused(3, ValidationFailed, "validation_error")
    refused(4, Conflict, "session_not_live")
    refused(7, NotFound, "not_found")
    assert got[8] is None and got[9] is None
    second, ended, third = got[0], got[5], got[6]
    assert not isinstance(second, BaseException) and second is not None
    assert not isinstance(ended, BaseException) and ended is not None
    assert not isinstance(third, BaseException) and third is not None
    assert (second.product_id, third.product_id) == (x["good2"], x["good1"])
    assert second.stream_offset_ms == 5 and third.unpinned_at is None
    assert second.unpinned_at is not None  # the batch's later pin ended it
    assert ended.id == first["id"] and ended.unpinned_at is not None
    assert await _pins(world, live) == [
        (first["id"], x["good1"], False),
        (second.id, x["good2"], False),
        (third.id, x["good1"], True),
    ]
    assert await _pins(world, x["planned"]) == []
    events = await bus.read(STREAM_DOMAIN, "pin-batch-test", "t", count=1000)
    pins = [(d.event.type, d.event.data) for d in events if d.event.type.startswith("pin.")]
    assert pins == [
        ("pin.created", {"session_id": live, "product_id": x["good2"], "pin_id": second.id}),
        ("pin.created", {"session_id": live, "product_id": x["good1"], "pin_id": third.id}),
    ]


async def test_concurrent_calls_each_get_their_own_answer(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    x = await _live_session(world)
    sp = f"{HF}/sessions/{x['live']}"
    first = await ok(api, "POST", sp + "/pins", m, {"product_id": x["good1"]})
    before = api.app[PIN_WRITER].batches
    calls: list[tuple[str, str, dict[str, int] | None]] = [
        ("POST", sp + "/pins", {"product_id": x["sold_out"]}),
        ("POST", sp + f"/pins/{first['id']}/unpin", None),
        ("POST", sp + "/pins", {"product_id": x["unclaimed"]}),
        ("POST", sp + "/pins", {"product_id": x["outside"]}),
        ("POST", sp + "/pins/nope/unpin", None),
    ]
    answers = await asyncio.gather(*(api.call(mt, path, m, body) for mt, path, body in calls))
    codes = [envelope(st, p)["code"] if st >= 400 else st for st, p in answers]
    assert codes == [
        "out_of_stock",
        200,
        "gi_incomplete",
        "validation_error",
        "not_found",
    ]
    assert answers[1][1]["unpinned_at"] is not None
    assert api.app[PIN_WRITER].batches > before
    assert await _pins(world, x["live"]) == [(first["id"], x["good1"], False)]


async def test_a_session_the_writer_does_not_find_is_a_404(world: World) -> None:
    api, m = world.api, world.tokens["haifeng.manager"]
    x = await _live_session(world)
    body = {"product_id": x["good1"]}
    for path in (f"{HF}/sessions/{2**31 - 1}/pins", f"{HF}/sessions/nope/pins/1/unpin"):
        status, payload = await api.call("POST", path, m, body if path.endswith("pins") else None)
        assert status == 404 and envelope(status, payload)["code"] == "not_found", payload
    luhe = HF.replace("haifeng", "luhe")
    status, payload = await api.call("POST", f"{luhe}/sessions/{x['live']}/pins", m, body)
    assert status == 404, payload
    assert await _pins(world, x["live"]) == []
