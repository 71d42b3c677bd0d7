"""WHIP offers: what is usable, the rewrites for aiortc and back, trickle fragments.

``FFMPEG_OFFER`` is what FFmpeg 9.0's WHIP muxer POSTs (captured from
``ffmpeg … -c:v libx264 -profile:v baseline -c:a libopus -f whip``): no candidates, like OBS.
"""

from __future__ import annotations

import re

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from ingest.whip.sdp import (
    NoUsableCodec,
    SdpError,
    for_aiortc,
    parse_fragment,
    parse_offer,
    restore_answer,
)

FINGERPRINT = (
    "sha-256 04:DC:D0:30:FB:56:77:5C:83:00:C1:F3:9B:50:D4:F0:"
    "C0:21:95:13:66:41:56:5F:B8:1F:7F:2F:DD:83:74:7D"
)
FFMPEG_OFFER = """v=0
o=FFmpeg 4489045141692799359 2 IN IP4 127.0.0.1
s=FFmpegPublishSession
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=ice-ufrag:5c64f62c
a=ice-pwd:38622ef1b3d51e418f1ae2040f3a9298
a=fingerprint:FINGERPRINT
a=setup:passive
a=mid:0
a=sendonly
a=msid:FFmpeg audio
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=ssrc:3026306132 cname:FFmpeg
a=ssrc:3026306132 msid:FFmpeg audio
m=video 9 UDP/TLS/RTP/SAVPF 106 105
c=IN IP4 0.0.0.0
a=ice-ufrag:5c64f62c
a=ice-pwd:38622ef1b3d51e418f1ae2040f3a9298
a=fingerprint:FINGERPRINT
a=setup:passive
a=mid:1
a=sendonly
a=msid:FFmpeg video
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:106 H264/90000
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001e
a=rtcp-fb:106 nack
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=106
a=ssrc-group:FID 3026306133 3026306134
a=ssrc:3026306133 cname:FFmpeg
a=ssrc:3026306133 msid:FFmpeg video
""".replace("\n", "\r\n").replace("FINGERPRINT", FINGERPRINT)


def video_section(offer: str, formats: str, rtpmaps: str) -> str:
    """FFMPEG_OFFER with its video codecs replaced."""
    head, _, _ = offer.partition("m=video")
    fingerprint = re.search(r"a=fingerprint:[^\r\n]+", offer)
    assert fingerprint is not None
    lines = [
        f"m=video 9 UDP/TLS/RTP/SAVPF {formats}",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:5c64f62c",
        "a=ice-pwd:38622ef1b3d51e418f1ae2040f3a9298",
        fingerprint.group(0),
        "a=setup:passive",
        "a=mid:1",
        "a=sendonly",
        "a=rtcp-mux",
        *rtpmaps.strip().splitlines(),
    ]
    return head + "\r\n".join(lines) + "\r\n"


def test_ffmpeg_offer_is_usable() -> None:
    offer = parse_offer(FFMPEG_OFFER)
    assert offer.video.usable == [106] and offer.video.rtx == [105]
    assert offer.audio is not None and offer.audio.usable == [111]
    assert offer.candidates == 0
    assert (offer.ice_ufrag, offer.ice_pwd) == ("5c64f62c", "38622ef1b3d51e418f1ae2040f3a9298")
    assert [m.mid for m in offer.media] == ["0", "1"]


def test_for_aiortc_keeps_usable_codecs_and_drops_end_of_candidates() -> None:
    text = FFMPEG_OFFER + "a=end-of-candidates\r\n"
    rewritten = for_aiortc(text, parse_offer(text))
    assert "m=video 9 UDP/TLS/RTP/SAVPF 106 105\r\n" in rewritten
    assert "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" in (
        rewritten
    )
    assert "end-of-candidates" not in rewritten
    assert "a=fmtp:105 apt=106" in rewritten


HIGH_AND_VP8 = """
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=640032
a=rtpmap:104 H264/90000
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=104
"""


async def test_aiortc_answers_any_h264_profile_and_the_answer_keeps_it() -> None:
    """A browser-style offer: VP8 first, H.264 High in both modes. Only High with
    packetization-mode=1 may be answered, and the answer must name High, not Baseline."""
    text = video_section(FFMPEG_OFFER, "96 97 102 104 105", HIGH_AND_VP8)
    offer = parse_offer(text)
    assert offer.video.usable == [104] and offer.video.rtx == [105]
    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(for_aiortc(text, offer), "offer"))
        answer = (await pc.createAnswer()).sdp
    finally:
        await pc.close()
    assert re.search(r"m=video \d+ UDP/TLS/RTP/SAVPF 104 105\r\n", answer), answer
    restored = restore_answer(answer, offer)
    assert "profile-level-id=640032" in restored and "42e01f" not in restored
    assert "VP8" not in restored


@pytest.mark.parametrize(
    ("formats", "rtpmaps", "message"),
    [
        ("96 97", "a=rtpmap:96 VP8/90000\na=rtpmap:97 rtx/90000\na=fmtp:97 apt=96", "vp8"),
        (
            "102",
            "a=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0;profile-level-id=42e01f",
            "packetization-mode 0",
        ),
        ("98", "a=rtpmap:98 VP9/90000", "offered vp9"),
        ("100", "a=rtpmap:100 H265/90000", "h265"),
    ],
)
def test_an_offer_without_usable_video_names_what_it_offered(
    formats: str, rtpmaps: str, message: str
) -> None:
    with pytest.raises(NoUsableCodec, match="no usable video codec.*" + message):
        parse_offer(video_section(FFMPEG_OFFER, formats, rtpmaps))


def test_audio_must_be_opus() -> None:
    text = FFMPEG_OFFER.replace("SAVPF 111", "SAVPF 0").replace(
        "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000"
    )
    with pytest.raises(NoUsableCodec, match=r"no usable audio codec: offer Opus.*pcmu"):
        parse_offer(text)


def test_video_only_is_fine_and_audio_only_is_not() -> None:
    video_only = "m=video" + FFMPEG_OFFER.split("m=video")[1]
    head = FFMPEG_OFFER.split("m=audio")[0]
    assert parse_offer(head + video_only).audio is None
    audio_only = FFMPEG_OFFER.split("m=video")[0]
    with pytest.raises(NoUsableCodec, match="one video"):
        parse_offer(audio_only)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"sdp": "v=0"}', "not SDP: it must start with the line v=0"),
        ("", "empty"),
        ("v=0\r\nthis is not sdp\r\n", "line 2 is not an SDP line"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n", "no media"),
        ("v=0\r\nm=video 9\r\n", "m= line needs"),
        (FFMPEG_OFFER.replace("a=ice-ufrag:5c64f62c\r\n", ""), "no ICE credentials"),
        (re.sub(r"a=fingerprint:[^\r]+\r\n", "", FFMPEG_OFFER), "no DTLS fingerprint"),
        (FFMPEG_OFFER.replace("a=rtcp-mux\r\n", ""), "does not multiplex RTCP"),
    ],
)
def test_unusable_offers_are_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message) as caught:
        parse_offer(text)
    assert not isinstance(caught.value, NoUsableCodec)


def test_a_receive_only_offer_is_no_publish() -> None:
    with pytest.raises(NoUsableCodec, match="video section is recvonly"):
        parse_offer(FFMPEG_OFFER.replace("a=sendonly", "a=recvonly"))


def test_trickle_fragment_of_rfc_8840() -> None:
    fragment = parse_fragment(
        "a=ice-ufrag:EsAw\r\n"
        "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=mid:0\r\n"
        "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n"
        "a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\n"
        "a=end-of-candidates\r\n"
    )
    assert (fragment.ice_ufrag, fragment.ice_pwd) == ("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1")
    assert [mid for mid, _ in fragment.candidates] == ["0", "0"]
    assert fragment.candidates[0][1].startswith("1387637174 1 udp")
    assert fragment.end_of_candidates
    with pytest.raises(SdpError, match="not an SDP fragment line"):
        parse_fragment("candidate:1 1 udp 1 192.0.2.1 1 typ host")
