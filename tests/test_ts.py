"""The in-process MPEG-TS muxer, byte by byte, and what ffprobe makes of its segments."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from media import make_flv

from ingest.flv import iter_tags
from ingest.ts import (
    AUDIO_PID,
    PMT_PID,
    VIDEO_PID,
    AacConfig,
    TsError,
    TsSegmenter,
    crc32_mpeg,
    is_aac_header,
    is_avc_header,
)

SPS = b"\x67\x64\x00\x1f\xac\xd9"
PPS = b"\x68\xeb\xe3\xcb"
AVC_HEADER = (
    b"\x17\x00\x00\x00\x00"
    + b"\x01\x64\x00\x1f\xff\xe1"
    + len(SPS).to_bytes(2, "big")
    + SPS
    + b"\x01"
    + len(PPS).to_bytes(2, "big")
    + PPS
)
AAC_HEADER = b"\xaf\x00\x11\x90"  # AAC LC, 48 kHz, stereo
START = b"\x00\x00\x00\x01"


def frame(nals: list[bytes], *, key: bool, cts: int = 0, size: int = 4) -> bytes:
    head = bytes((0x17 if key else 0x27, 1)) + cts.to_bytes(3, "big", signed=True)
    return head + b"".join(len(n).to_bytes(size, "big") + n for n in nals)


@dataclass
class Packet:
    pid: int
    start: bool
    cc: int
    adaptation: bytes
    payload: bytes


def packets(data: bytes) -> list[Packet]:
    assert len(data) % 188 == 0
    out = []
    for pos in range(0, len(data), 188):
        p = data[pos : pos + 188]
        assert p[0] == 0x47
        control = (p[3] >> 4) & 3
        assert control in (1, 3)
        body = 4
        adaptation = b""
        if control == 3:
            adaptation = p[5 : 5 + p[4]]
            body = 5 + p[4]
            assert body <= 188
        out.append(
            Packet(((p[1] & 0x1F) << 8) | p[2], bool(p[1] & 0x40), p[3] & 15, adaptation, p[body:])
        )
    return out


def pes_units(data: bytes, pid: int) -> list[bytes]:
    units: list[bytearray] = []
    for p in packets(data):
        if p.pid != pid:
            continue
        if p.start:
            units.append(bytearray())
        units[-1] += p.payload
    return [bytes(u) for u in units]


def pes_times(pes: bytes) -> tuple[int, int | None]:
    def read(b: bytes) -> int:
        return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1

    pts = read(pes[9:14])
    return pts, read(pes[14:19]) if pes[7] & 0x40 else None


def pes_payload(pes: bytes) -> bytes:
    return pes[9 + pes[8] :]


def test_crc32_mpeg_check_value() -> None:
    assert crc32_mpeg(b"123456789") == 0x0376E6E7


@pytest.mark.parametrize("audio", [AAC_HEADER, None])
def test_each_segment_starts_with_pat_and_pmt(audio: bytes | None) -> None:
    mux = TsSegmenter(AVC_HEADER, audio, 1000)
    assert mux.video(0, frame([b"\x65\x88"], key=True), True) is None
    first = mux.video(1000, frame([b"\x65\x88"], key=True), True)
    last = mux.finish()
    assert first is not None and last is not None
    for segment in (first.data, last.data):
        pat, pmt = packets(segment)[:2]
        assert (pat.pid, pmt.pid) == (0, PMT_PID) and pat.start and pmt.start
        for psi in (pat, pmt):
            length = ((psi.payload[2] & 0x0F) << 8) | psi.payload[3]
            assert crc32_mpeg(psi.payload[1 : 4 + length]) == 0  # the CRC checks
        assert pat.payload[9:13] == b"\x00\x01\xf0\x00"  # program 1 → PMT PID 0x1000
        section = pmt.payload[1:]
        assert ((section[8] & 0x1F) << 8) | section[9] == VIDEO_PID  # the PCR PID
        streams = section[12 : 12 + (5 if audio is None else 10)]
        expected = b"\x1b\xe1\x00\xf0\x00" + (b"" if audio is None else b"\x0f\xe1\x01\xf0\x00")
        assert streams == expected
    assert [p.cc for p in packets(last.data)[:2]] == [1, 1], "PSI counters carry on"


def test_continuity_counters_stuffing_and_reassembly() -> None:
    mux = TsSegmenter(AVC_HEADER, AAC_HEADER, 10_000)
    sent_video, sent_audio = [], []
    # Every remainder of a packet, roughly, and frames of many packets.
    for i, size in enumerate([*range(1, 700, 7), 1500, 1471, 30000, 29999]):
        nal = bytes((0x41,)) + bytes(size)
        mux.video(i * 33, frame([nal], key=i == 0), i == 0)
        sent_video.append(nal)
        raw = bytes(range(256))[: size % 256] + b"\x01"
        mux.audio(i * 33, b"\xaf\x01" + raw)
        sent_audio.append(raw)
    done = mux.finish()
    assert done is not None
    counters: dict[int, int] = {}
    for p in packets(done.data):
        if p.pid in counters:
            assert p.cc == (counters[p.pid] + 1) & 15, f"continuity on PID {p.pid:#x}"
        counters[p.pid] = p.cc
        if p.adaptation and not p.adaptation[0] & 0x10:
            assert set(p.adaptation[1:]) <= {0xFF}, "stuffing is 0xFF"
    video = pes_units(done.data, VIDEO_PID)
    assert [pes_payload(v).split(START)[-1] for v in video] == sent_video
    audio = pes_units(done.data, AUDIO_PID)
    assert [pes_payload(a)[7:] for a in audio] == sent_audio
    assert all(int.from_bytes(a[4:6], "big") == len(a) - 6 for a in audio), "PES length"


def test_pcr_and_random_access_on_the_video_pid() -> None:
    mux = TsSegmenter(AVC_HEADER, None, 10_000)
    mux.video(1000, frame([b"\x65" + bytes(500)], key=True), True)
    mux.video(1033, frame([b"\x41" + bytes(500)], key=False), False)
    done = mux.finish()
    assert done is not None
    starts = [p for p in packets(done.data) if p.pid == VIDEO_PID and p.start]
    flags = [p.adaptation[0] for p in starts]
    assert flags == [0x50, 0x10], "PCR on each frame, random access on the keyframe"
    pcr = starts[0].adaptation[1:7]
    base = int.from_bytes(pcr[:4], "big") << 1 | pcr[4] >> 7
    pts, dts = pes_times(pes_units(done.data, VIDEO_PID)[0])
    assert dts is None and pts - base == 63000 and base == 1000 * 90 + 63000


def test_pts_is_dts_plus_composition_time_and_wraps_at_33_bits() -> None:
    mux = TsSegmenter(AVC_HEADER, AAC_HEADER, 10_000)
    wrap_ms = ((1 << 33) - 126000) // 90 - 1  # the last millisecond before the clock wraps
    mux.video(wrap_ms, frame([b"\x65\x00"], key=True, cts=66), True)
    mux.video(wrap_ms + 33, frame([b"\x41\x00"], key=False, cts=-33), False)
    mux.audio(wrap_ms + 40, b"\xaf\x01\x21\x00")
    done = mux.finish()
    assert done is not None
    (pts1, dts1), (pts2, dts2) = (pes_times(p) for p in pes_units(done.data, VIDEO_PID))
    mask = (1 << 33) - 1
    assert dts1 == (wrap_ms * 90 + 126000) & mask and pts1 == (dts1 + 66 * 90) & mask
    assert dts2 == ((wrap_ms + 33) * 90 + 126000) & mask and dts2 < dts1, "wrapped"
    assert pts2 == (dts2 - 33 * 90) & mask
    (audio,) = pes_units(done.data, AUDIO_PID)
    assert pes_times(audio) == (((wrap_ms + 40) * 90 + 126000) & mask, None)


def test_annex_b_with_delimiter_and_parameter_sets_before_keyframes() -> None:
    mux = TsSegmenter(AVC_HEADER, None, 10_000)
    encoder_aud = b"\x09\x10"
    mux.video(0, frame([encoder_aud, b"\x06\x05", b"\x65\x01"], key=True, size=4), True)
    mux.set_avc(AVC_HEADER[:-1] + AVC_HEADER[-1:])  # a repeated header changes nothing
    mux.video(33, frame([b"\x41\x02", b"\x41\x03"], key=False), False)
    done = mux.finish()
    assert done is not None
    key, delta = (pes_payload(p) for p in pes_units(done.data, VIDEO_PID))
    aud = START + b"\x09\xf0"
    assert key == aud + START + SPS + START + PPS + START + b"\x06\x05" + START + b"\x65\x01"
    assert delta == aud + START + b"\x41\x02" + START + b"\x41\x03"


def test_two_byte_nal_lengths() -> None:
    header = bytearray(AVC_HEADER)
    header[9] = 0xFD  # lengthSizeMinusOne = 1
    mux = TsSegmenter(bytes(header), None, 10_000)
    mux.video(0, frame([b"\x65\x07\x08"], key=True, size=2), True)
    done = mux.finish()
    assert done is not None
    assert pes_payload(pes_units(done.data, VIDEO_PID)[0]).endswith(START + b"\x65\x07\x08")


def test_adts_from_the_audio_specific_config() -> None:
    config = AacConfig.parse(AAC_HEADER[2:])
    assert (config.profile, config.frequency_index, config.channels) == (1, 3, 2)
    header = config.adts(100)
    assert header[:2] == b"\xff\xf1"
    assert header[2] >> 6 == 1 and (header[2] >> 2) & 15 == 3
    assert ((header[2] & 1) << 2) | header[3] >> 6 == 2
    length = (header[3] & 3) << 11 | header[4] << 3 | header[5] >> 5
    assert length == 107


def test_segments_cut_at_the_first_keyframe_after_the_duration() -> None:
    mux = TsSegmenter(AVC_HEADER, AAC_HEADER, 2000)
    assert mux.video(500, frame([b"\x41"], key=False), False) is None, "no segment without a key"
    cuts = []
    for ms, key in [(1000, True), (1033, False), (2500, True), (3033, False), (3200, True)]:
        done = mux.video(ms, frame([b"\x65" if key else b"\x41"], key=key), key)
        if done is not None:
            cuts.append((done.start, done.end))
    last = mux.finish()
    assert cuts == [(1.0, 3.2)], "2.5 s is only 1.5 s in; 3.2 s is the first key after 2 s"
    assert last is not None and (last.start, last.end) == (3.2, 3.367)
    assert mux.finish() is None


def test_codec_headers_recognised_and_refused() -> None:
    assert is_avc_header(AVC_HEADER) and is_aac_header(AAC_HEADER)
    assert not is_avc_header(b"\x1c\x00\x00\x00\x00\x01")  # legacy HEVC (codec id 12)
    assert not is_avc_header(b"\x90hvc1\x01")  # Enhanced RTMP HEVC
    assert not is_aac_header(b"\x2f\x00\x00\x00")  # MP3
    with pytest.raises(TsError):
        AacConfig.parse(b"\x2b\x92\x08\x00")  # HE-AAC (object type 5) has no ADTS profile
    mux = TsSegmenter(AVC_HEADER, None, 1000)
    with pytest.raises(TsError):
        mux.video(0, frame([b"\x65"], key=True)[:-1] + b"\x00\x00\x00\x09", True)


def test_segments_of_a_real_stream_play_cleanly(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "in.flv", seconds=5, gop=30)
    tags = list(iter_tags(flv.read_bytes()))
    video = next(t.payload for t in tags if t.tag_type == 9 and is_avc_header(t.payload))
    audio = next(t.payload for t in tags if t.tag_type == 8 and is_aac_header(t.payload))
    mux = TsSegmenter(video, audio, 2000)
    finished = []
    frames = 0
    for tag in tags:
        if tag.tag_type == 9 and tag.payload[1] == 1:
            frames += 1
            finished.append(mux.video(tag.timestamp, tag.payload, tag.payload[0] >> 4 == 1))
        elif tag.tag_type == 8:
            mux.audio(tag.timestamp, tag.payload)
    finished.append(mux.finish())
    segments = [s for s in finished if s is not None]
    assert len(segments) == 3
    counted = 0
    for i, segment in enumerate(segments):
        path = tmp_path / f"seg{i}.ts"
        path.write_bytes(segment.data)
        probe = subprocess.run(
            [
                *("ffprobe", "-v", "error", "-count_frames", "-show_entries"),
                *("stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert probe.stderr == "", "ffprobe found errors"
        streams = dict(line.split(",") for line in probe.stdout.split())
        assert set(streams) == {"h264", "aac"} and int(streams["aac"]) > 0
        counted += int(streams["h264"])
    assert counted == frames
