from __future__ import annotations

import asyncio

from ingest.fanout import END_OF_STREAM, NEW_SOURCE, Fanout, Feed, Tag
from ingest.flv import TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO

AVC_HEADER = bytes([0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1F, 0xFF])
KEY = bytes([0x17, 0x01, 0, 0, 0]) + b"\x00" * 100
INTER = bytes([0x27, 0x01, 0, 0, 0]) + b"\x00" * 50
AAC_HEADER = bytes([0xAF, 0x00, 0x12, 0x10])
AAC = bytes([0xAF, 0x01]) + b"\x00" * 20
META = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"


def publish(fan: Fanout, start: int, frames: int) -> None:
    fan.begin_publish()
    fan.push(TAG_SCRIPT, 0, META)
    fan.push(TAG_VIDEO, start, AVC_HEADER)
    fan.push(TAG_AUDIO, start, AAC_HEADER)
    for i in range(frames):
        fan.push(TAG_VIDEO, start + i * 33, KEY if i % 30 == 0 else INTER)
        fan.push(TAG_AUDIO, start + i * 33, AAC)


def drain(feed: Feed) -> list[Tag | object]:
    out = []
    while (item := feed.get_nowait()) is not None:
        out.append(item)
    return out


def test_headers_are_remembered_for_a_late_output() -> None:
    fan = Fanout()
    publish(fan, 0, 45)
    late = fan.attach("late")
    items = drain(late)
    assert [t.payload for t in items if isinstance(t, Tag)] == [META, AVC_HEADER, AAC_HEADER]
    fan.push(TAG_VIDEO, 2000, INTER)
    fan.push(TAG_AUDIO, 2000, AAC)
    assert drain(late) == [], "nothing before the next keyframe"
    fan.push(TAG_VIDEO, 2033, KEY)
    fan.push(TAG_AUDIO, 2033, AAC)
    assert [t.payload for t in drain(late) if isinstance(t, Tag)] == [KEY, AAC]


def test_timestamps_continue_across_a_reconnect() -> None:
    fan = Fanout()
    feed = fan.attach("relay")
    publish(fan, 5000, 60)
    first = [t for t in drain(feed) if isinstance(t, Tag)]
    publish(fan, 0, 30)  # OBS restarts its clock near 0
    second = drain(feed)
    assert NEW_SOURCE in second
    tags = [t for t in second if isinstance(t, Tag)]
    assert tags[0].timestamp > first[-1].timestamp
    stamps = [t.timestamp for t in first + tags]
    assert stamps == sorted(stamps)


def test_a_stalled_output_drops_its_backlog_and_resumes_at_a_keyframe() -> None:
    fan = Fanout()
    slow = fan.attach("slow", max_bytes=2000)
    fast = fan.attach("fast")
    publish(fan, 0, 90)
    fast_items = [t for t in drain(fast) if isinstance(t, Tag)]
    assert len(fast_items) == 3 + 180, "the fast output got every tag"
    assert slow.overflows > 0 and slow.dropped > 0
    drain(slow)  # the output catches up
    fan.push(TAG_VIDEO, 3000, INTER)
    fan.push(TAG_VIDEO, 3033, KEY)
    fan.push(TAG_AUDIO, 3033, AAC)
    media = [t for t in drain(slow) if isinstance(t, Tag) and not t.header]
    assert [t.payload for t in media] == [KEY, AAC], "resumes at the keyframe"


def test_unclassifiable_tags_are_not_fanned_out() -> None:
    fan = Fanout()
    feed = fan.attach("x")
    fan.begin_publish()
    assert fan.push(TAG_VIDEO, 0, b"") is None
    assert fan.push(TAG_VIDEO, 0, b"\x17") is None  # truncated header
    assert fan.push(20, 0, b"command") is None
    assert drain(feed) == []


async def test_get_waits_for_data() -> None:
    fan = Fanout()
    feed = fan.attach("x")
    fan.begin_publish()
    waiter = asyncio.create_task(feed.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    fan.push(TAG_VIDEO, 0, AVC_HEADER)
    got = await asyncio.wait_for(waiter, 1)
    assert isinstance(got, Tag) and got.header and feed.queued_bytes == 0


def test_direct_delivery_hands_tags_over_until_the_output_declines() -> None:
    fan = Fanout()
    feed = fan.attach("relay")
    publish(fan, 0, 1)
    assert not feed.deliver_directly(lambda tag: True), "queued items come first"
    drain(feed)
    taken: list[Tag] = []
    room = [2]

    def deliver(tag: Tag) -> bool:
        if room[0] == 0:
            return False  # backed up
        room[0] -= 1
        taken.append(tag)
        return True

    assert feed.deliver_directly(deliver)
    for i in range(4):
        fan.push(TAG_VIDEO, 100 + i * 33, INTER)
    assert [t.timestamp for t in taken] == [100, 133]
    # The declined tag and every later one wait in the queue, in order; nothing is delivered
    # directly again until the output asks.
    room[0] = 10
    fan.push(TAG_VIDEO, 300, INTER)
    assert len(taken) == 2
    assert [t.timestamp for t in drain(feed) if isinstance(t, Tag)] == [166, 199, 300]


def test_direct_delivery_stops_at_markers_and_survives_a_failing_output() -> None:
    fan = Fanout()
    feed = fan.attach("relay")
    publish(fan, 0, 1)
    drain(feed)
    taken: list[Tag] = []
    feed.deliver_directly(lambda tag: taken.append(tag) is None)
    fan.push(TAG_AUDIO, 40, AAC)
    feed.end()
    fan.push(TAG_AUDIO, 60, AAC)
    assert len(taken) == 1
    assert drain(feed)[0] is END_OF_STREAM

    def broken(tag: Tag) -> bool:
        raise RuntimeError("encoder bug")

    feed.deliver_directly(broken)
    fan.push(TAG_AUDIO, 80, AAC)  # the publisher does not see the output's failure
    assert [t.timestamp for t in drain(feed) if isinstance(t, Tag)] == [80]
