"""The WHIP relay's media parts: H.264 access units to FLV, RTP clocks, Opus to AAC, and
the hook that takes encoded frames out of aiortc's receivers."""

from __future__ import annotations

import fractions
import itertools
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from media import FFMPEG

from ingest.flv_build import avc_decoder_configuration_record, avc_sequence_header, nal_type
from ingest.whip.audio import OpusToAac
from ingest.whip.h264 import H264Relay, split_annexb
from ingest.whip.tap import TapError, install_tap
from ingest.whip.timing import RtpTimeline


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.fixture(scope="module")
def gop(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Access units of libx264 as WebRTC carries them: Annex B, SPS/PPS before each IDR."""
    path: Path = tmp_path_factory.mktemp("h264") / "gop.h264"
    subprocess.run(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi"),
            *("-i", "testsrc=size=160x120:rate=30", "-t", "1", "-c:v", "libx264"),
            *("-pix_fmt", "yuv420p", "-bf", "0", "-g", "10", "-x264-params", "aud=1"),
            *("-f", "h264", str(path)),
        ],
        check=True,
        timeout=60,
    )
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux() if p.size]


def test_split_annexb_start_codes_garbage_and_trailing_zeros() -> None:
    data = h("aabb 00000001 6742 000001 68ce 0000 00000001 65888400 000000")
    assert split_annexb(data) == [h("6742"), h("68ce"), h("658884")]
    assert split_annexb(h("0102 03")) == []


def test_relay_sends_a_sequence_header_then_pictures_without_parameter_sets(
    gop: list[bytes],
) -> None:
    relay = H264Relay()
    first = relay.feed(gop[0])
    nals = split_annexb(gop[0])
    assert [nal_type(n) for n in nals][:3] == [9, 7, 8]  # AUD, SPS, PPS (x264 aud=1)
    record = avc_decoder_configuration_record(nals[1], [nals[2]])
    assert [t.header for t in first] == [True, False]
    assert first[0].payload == avc_sequence_header(record)
    assert first[1].keyframe and first[1].payload[:2] == h("1701")
    body = first[1].payload[5:]
    assert nal_type(body[4:]) == 6  # SEI first: AUD, SPS and PPS are not in the picture
    later = [relay.feed(au) for au in gop[1:]]
    assert all(len(tags) == 1 for tags in later)
    assert [tags[0].keyframe for tags in later].count(True) == 2  # frames 10 and 20
    assert not any(tags[0].header for tags in later), "the same SPS/PPS are announced once"


def test_relay_waits_for_a_keyframe_at_start_and_after_loss(gop: list[bytes]) -> None:
    relay = H264Relay()
    assert relay.feed(gop[3]) == [] and relay.waiting_for_keyframe
    assert len(relay.feed(gop[0])) == 2 and not relay.waiting_for_keyframe
    assert len(relay.feed(gop[1])) == 1
    relay.lost()
    assert relay.feed(gop[2]) == [] and relay.waiting_for_keyframe
    resumed = relay.feed(gop[10])
    assert len(resumed) == 1 and resumed[0].keyframe  # same parameter sets: no new header


def test_a_keyframe_without_parameter_sets_is_held_back(gop: list[bytes]) -> None:
    relay = H264Relay()
    idr_only = b"".join(b"\x00\x00\x00\x01" + n for n in split_annexb(gop[0]) if nal_type(n) == 5)
    assert relay.feed(idr_only) == [] and relay.missing_parameter_sets
    assert len(relay.feed(gop[0])) == 2 and not relay.missing_parameter_sets


def test_new_parameter_sets_are_announced_again(gop: list[bytes]) -> None:
    relay = H264Relay()
    relay.feed(gop[0])
    nals = split_annexb(gop[10])
    changed = b"".join(
        b"\x00\x00\x00\x01" + (n[:-1] + bytes((n[-1] ^ 1,)) if nal_type(n) == 8 else n)
        for n in nals
    )
    tags = relay.feed(changed)
    assert [t.header for t in tags] == [True, False]


def test_rtp_timeline_wraps_and_steps_back() -> None:
    line = RtpTimeline(90000, first_timestamp=(1 << 32) - 3000, arrival_ms=500.0)
    assert line.position((1 << 32) - 3000) == 0
    assert line.position(0) == 3000  # wrapped
    assert line.position(3000) == 6000
    assert line.position(0) == 3000  # reordered, not a wrap backwards
    assert line.to_ms(0) == 500 and line.to_ms(90000) == 1500
    assert line.to_ms(90000) == 1501, "never repeats a timestamp"
    assert line.to_ms(0) == 1502, "never goes back"


def opus_packets(seconds: float) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    encoder.open()
    packets: list[bytes] = []
    for i in range(int(seconds * 50)):
        t = np.arange(i * 960, (i + 1) * 960)
        mono = (np.sin(t * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, i * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def decoded_samples(frames: list[bytes], config: bytes) -> int:
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = config
    return sum(f.samples for data in frames for f in decoder.decode(av.Packet(data)))


def test_opus_to_aac_keeps_the_sample_clock_through_loss() -> None:
    packets = opus_packets(2)
    transcoder = OpusToAac()
    start = 123_456  # positions are on the stream's RTP clock, from wherever it started
    out = []
    for i, packet in enumerate(packets):
        if i in (20, 21, 22):
            continue  # lost: 60 ms of silence instead
        out += transcoder.feed(packet, start + i * 960)
    out += transcoder.feed(packets[5], start + 5 * 960)  # a late duplicate: ignored
    out += transcoder.flush()
    pts = [f.pts for f in out]
    assert pts[0] == start - 1024  # the encoder's priming frame
    assert all(b - a == 1024 for a, b in itertools.pairwise(pts))
    total = 100 * 960
    assert abs(decoded_samples([f.data for f in out], transcoder.config) - total) <= 2048


def test_opus_to_aac_counts_garbage_and_jumps_long_pauses() -> None:
    packets = opus_packets(0.4)
    transcoder = OpusToAac()
    out = []
    for i, packet in enumerate(packets[:10]):
        out += transcoder.feed(packet, i * 960)
    out += transcoder.feed(b"\xff\xff\xff\xff", 10 * 960)
    assert transcoder.bad_packets == 1
    resume = 10 * 48000  # ten seconds later: 2 s of silence, then the clock jumps
    for i, packet in enumerate(packets[10:]):
        out += transcoder.feed(packet, resume + i * 960)
    pts = [f.pts for f in out]
    jumps = [b - a for a, b in itertools.pairwise(pts) if b - a != 1024]
    assert len(jumps) == 1 and jumps[0] > 7 * 48000
    assert pts[-1] >= resume


class Frames:
    """A FrameSink that records what the tap hands over."""

    def __init__(self, fail: bool = False) -> None:
        self.first: list[int] = []
        self.frames: list[tuple[bytes, int]] = []
        self.losses = 0
        self.fail = fail

    def first_packet(self, rtp_timestamp: int) -> None:
        self.first.append(rtp_timestamp)

    def frame(self, data: bytes, rtp_timestamp: int) -> None:
        if self.fail:
            raise RuntimeError("a sink bug")
        self.frames.append((data, rtp_timestamp))

    def lost(self) -> None:
        self.losses += 1


BUFFER = "_RTCRtpReceiver__jitter_buffer"


def rtp(seq: int, timestamp: int, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, ssrc=7)
    packet._data = data  # type: ignore[attr-defined]  # what aiortc's depayloader sets
    return packet


def fake_receiver(capacity: int = 64) -> RTCRtpReceiver:
    """A receiver as far as the tap sees one: aiortc's jitter buffer in its private slot."""
    receiver = object.__new__(RTCRtpReceiver)
    setattr(receiver, BUFFER, JitterBuffer(capacity, is_video=True))
    return receiver


def test_tap_hands_frames_over_and_keeps_them_from_the_decoder() -> None:
    receiver = fake_receiver()
    sink = Frames()
    tap = install_tap(receiver, sink)
    assert getattr(receiver, BUFFER) is tap
    assert tap.add(rtp(10, 1000, b"\x00\x00\x00\x01\x65a")) == (False, None)
    assert tap.add(rtp(11, 1000, b"b")) == (False, None)
    assert tap.add(rtp(12, 4000, b"\x00\x00\x00\x01\x41c")) == (False, None)
    assert sink.first == [1000] and tap.ssrc == 7
    assert sink.frames == [(b"\x00\x00\x00\x01\x65ab", 1000)]
    assert tap.add(rtp(12 + 200, 7000, b"x"))[0] is True  # far ahead: the buffer gave up
    assert sink.losses == 1


def test_a_failing_sink_does_not_break_aiortcs_receive_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tap = install_tap(fake_receiver(), Frames(fail=True))
    tap.add(rtp(1, 0, b"a"))
    assert tap.add(rtp(2, 3000, b"b")) == (False, None)
    assert "could not be relayed" in caplog.text


def test_tap_refuses_an_aiortc_without_the_expected_internals() -> None:
    with pytest.raises(TapError, match="keeps its jitter buffer elsewhere"):
        install_tap(object.__new__(RTCRtpReceiver), Frames())
