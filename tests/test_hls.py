from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.hls import (
    DateRange,
    HlsError,
    MediaPlaylist,
    Segment,
    Variant,
    parse_segment_list_line,
    render_master,
)

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def seg(i: int, *, disc: bool = False, duration: float = 2.0) -> Segment:
    return Segment(f"s{i:05d}.ts", duration, T0 + timedelta(seconds=2 * i), disc)


def test_live_window_slides_and_counts_discontinuities() -> None:
    pl = MediaPlaylist(window=3)
    for i in range(5):
        pl.add(seg(i, disc=(i == 1)))
    text = pl.render()
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n"
        "#EXT-X-DISCONTINUITY-SEQUENCE:1\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:00:04.000Z\n#EXTINF:2.000,\ns00002.ts\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:00:06.000Z\n#EXTINF:2.000,\ns00003.ts\n"
        "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T12:00:08.000Z\n#EXTINF:2.000,\ns00004.ts\n"
    )


def test_replay_lists_everything_with_discontinuity_and_pins() -> None:
    pl = MediaPlaylist(window=3)
    for i in range(4):
        pl.add(seg(i, disc=(i == 2)))
    pl.end()
    pin = DateRange(
        "pin-7",
        T0 + timedelta(seconds=3),
        T0 + timedelta(seconds=5.5),
        attributes={"X-PRODUCT-ID": 42, "X-TITLE": "陆河青梅"},
    )
    text = pl.render([pin], replay=True)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    assert "#EXT-X-MEDIA-SEQUENCE:0" in text and text.count("#EXTINF") == 4
    assert text.index("#EXT-X-DISCONTINUITY\n") < text.index("s00002.ts")
    assert (
        '#EXT-X-DATERANGE:ID="pin-7",CLASS="com.livebase.pin",'
        'START-DATE="2026-05-01T12:00:03.000Z",END-DATE="2026-05-01T12:00:05.500Z",'
        'DURATION=2.500,X-PRODUCT-ID=42,X-TITLE="陆河青梅"'
    ) in text


def test_target_duration_rounds_up_longest_segment() -> None:
    pl = MediaPlaylist()
    pl.add(seg(0, duration=2.02))
    pl.add(seg(1, duration=1.9))
    assert "#EXT-X-TARGETDURATION:3" in pl.render()


def test_old_pins_leave_the_live_window() -> None:
    pl = MediaPlaylist(window=3)
    for i in range(10):
        pl.add(seg(i))
    old = DateRange("old", T0, T0 + timedelta(seconds=1))
    current = DateRange("now", T0 + timedelta(seconds=15))
    text = pl.render([old, current])
    assert 'ID="old"' not in text and 'ID="now"' in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MediaPlaylist(window=2), "window"),
        (lambda: MediaPlaylist().add(seg(0, duration=0)), "bad duration"),
        (lambda: MediaPlaylist().add(seg(0, duration=float("nan"))), "bad duration"),
        (lambda: render_master([]), "at least one"),
        (lambda: parse_segment_list_line("nope"), "not a segment list line"),
        (lambda: parse_segment_list_line("a.ts,x,1"), "bad times"),
        (lambda: parse_segment_list_line("../a.ts,0,1"), "bad segment"),
        (lambda: parse_segment_list_line("a.ts,2,1"), "bad segment"),
    ],
)
def test_bad_entries_raise_clear_errors(make: object, message: str) -> None:
    with pytest.raises(HlsError, match=message):
        make()  # type: ignore[operator]


def test_bad_daterange_attributes_are_refused() -> None:
    pl = MediaPlaylist()
    pl.add(seg(0))
    with pytest.raises(HlsError, match="X-"):
        pl.render([DateRange("a", T0, attributes={"PRODUCT": 1})])
    with pytest.raises(HlsError, match="quoted"):
        pl.render([DateRange('a"b', T0)])
    with pytest.raises(HlsError, match="ends before"):
        DateRange("a", T0, T0 - timedelta(seconds=1))
    ended = MediaPlaylist()
    ended.end()
    with pytest.raises(HlsError, match="ended"):
        ended.add(seg(0))


def test_master_playlist() -> None:
    text = render_master(
        [
            Variant(
                "source/index.m3u8", 6_000_000, (1920, 1080), "avc1.640028,mp4a.40.2", "source"
            ),
            Variant("720p/index.m3u8", 2_800_000, (1280, 720)),
        ]
    )
    assert text.splitlines()[3] == (
        "#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080,"
        'CODECS="avc1.640028,mp4a.40.2",NAME="source"'
    )
    assert text.splitlines()[-1] == "720p/index.m3u8"


def test_segment_list_line() -> None:
    assert parse_segment_list_line("s00001.ts,2.000000,4.005000\n") == ("s00001.ts", 2.0, 4.005)
