"""What a WHIP offer holds, and the small rewrites between it, aiortc and the answer. Pure.

The relay takes H.264 with packetization-mode=1 (RFC 6184; the only mode WebRTC encoders
send) and Opus (RFC 7587). An offer is refused with a precise message when it is not SDP,
misses what WebRTC requires (ICE credentials, a DTLS fingerprint, RTCP multiplexing) or offers
no usable codec.

aiortc negotiates only the codecs it can decode, and for H.264 only the Baseline profiles,
but nothing here decodes video, so every H.264 profile is fine. ``for_aiortc`` therefore
shows aiortc an offer reduced to the usable codecs with a profile it accepts, and
``restore_answer`` puts the publisher's own profile back into the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "Fragment",
    "MediaOffer",
    "NoUsableCodec",
    "Offer",
    "SdpError",
    "for_aiortc",
    "parse_fragment",
    "parse_offer",
    "restore_answer",
]

_LINE = re.compile(r"^[a-z]=")
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?", re.IGNORECASE)
_PT_ATTRIBUTE = re.compile(r"^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ \t]")
_PROFILE = re.compile(r"profile-level-id=([0-9a-fA-F]{6})")
# A profile aiortc accepts (Constrained Baseline 3.1); only used between us and aiortc.
_AIORTC_PROFILE: Final = "42e01f"
_SENDING: Final = frozenset(("sendonly", "sendrecv"))


class SdpError(ValueError):
    """The body is not a usable SDP offer (HTTP 400)."""


class NoUsableCodec(SdpError):
    """A well-formed offer with nothing the relay can take (HTTP 422)."""


@dataclass(slots=True)
class MediaOffer:
    index: int
    kind: str
    mid: str = ""
    direction: str = "sendrecv"
    formats: list[str] = field(default_factory=list)
    codecs: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # pt: name, rate, ch
    fmtp: dict[int, str] = field(default_factory=dict)
    usable: list[int] = field(default_factory=list)  # payload types we take, in offer order
    rtx: list[int] = field(default_factory=list)  # retransmission types for those
    ice_ufrag: str = ""
    ice_pwd: str = ""
    fingerprint: bool = False
    rtcp_mux: bool = False
    candidates: int = 0


@dataclass(slots=True)
class Offer:
    media: list[MediaOffer]
    video: MediaOffer
    audio: MediaOffer | None
    ice_ufrag: str
    ice_pwd: str

    @property
    def candidates(self) -> int:
        return sum(m.candidates for m in self.media)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if line.strip():
            yield number, line.rstrip("\r")


def _read(text: str) -> tuple[dict[str, str], list[MediaOffer]]:
    session: dict[str, str] = {}
    media: list[MediaOffer] = []
    first = True
    for number, line in _lines(text):
        if first:
            if line != "v=0":
                raise SdpError("the body is not SDP: it must start with the line v=0")
            first = False
            continue
        if not _LINE.match(line):
            raise SdpError(f"line {number} is not an SDP line (type=value): {line[:40]!r}")
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise SdpError(f"line {number}: an m= line needs media, port, proto and formats")
            media.append(MediaOffer(len(media), parts[0], formats=parts[3:]))
            continue
        target = media[-1] if media else None
        name, _, value = line[2:].partition(":")
        if line.startswith("a="):
            _attribute(session, target, name, value, line)
    if first:
        raise SdpError("the body is empty: an SDP offer was expected")
    if not media:
        raise SdpError("the offer has no media (m=) section")
    return session, media


def _attribute(
    session: dict[str, str], media: MediaOffer | None, name: str, value: str, line: str
) -> None:
    if name in ("ice-ufrag", "ice-pwd", "fingerprint") and media is None:
        session[name] = value.strip()
        return
    if media is None:
        return
    if name == "ice-ufrag":
        media.ice_ufrag = value.strip()
    elif name == "ice-pwd":
        media.ice_pwd = value.strip()
    elif name == "fingerprint":
        media.fingerprint = True
    elif name == "rtcp-mux":
        media.rtcp_mux = True
    elif name == "mid":
        media.mid = value.strip()
    elif name == "candidate":
        media.candidates += 1
    elif name in ("sendonly", "recvonly", "sendrecv", "inactive"):
        media.direction = name
    elif name == "rtpmap" and (match := _RTPMAP.match(line)):
        pt, codec, rate, channels = match.groups()
        media.codecs[int(pt)] = (codec.lower(), int(rate), int(channels or 1))
    elif name == "fmtp":
        pt, _, params = value.partition(" ")
        if pt.isdigit():
            media.fmtp[int(pt)] = params.strip()


def _params(fmtp: str) -> dict[str, str]:
    out = {}
    for item in fmtp.split(";"):
        key, _, value = item.strip().partition("=")
        if key:
            out[key.lower()] = value.strip()
    return out


def _choose(media: MediaOffer) -> None:
    for pt, (codec, rate, channels) in media.codecs.items():
        if str(pt) not in media.formats:
            continue
        params = _params(media.fmtp.get(pt, ""))
        if media.kind == "video" and codec == "h264" and rate == 90000:
            if params.get("packetization-mode") == "1":
                media.usable.append(pt)
        elif media.kind == "audio" and codec == "opus" and rate == 48000 and channels == 2:
            media.usable.append(pt)
    for pt, (codec, _rate, _channels) in media.codecs.items():
        apt = _params(media.fmtp.get(pt, "")).get("apt", "")
        if codec == "rtx" and apt.isdigit() and int(apt) in media.usable:
            media.rtx.append(pt)
    media.usable.sort(key=lambda pt: media.formats.index(str(pt)))


def parse_offer(text: str) -> Offer:
    """The offer's media and what the relay will take from it; raises ``SdpError`` when it
    is unusable, ``NoUsableCodec`` when it only lacks a codec we take."""
    session, media = _read(text)
    for m in media:
        m.ice_ufrag = m.ice_ufrag or session.get("ice-ufrag", "")
        m.ice_pwd = m.ice_pwd or session.get("ice-pwd", "")
        m.fingerprint = m.fingerprint or "fingerprint" in session
        where = f"m-section {m.index} ({m.kind})"
        if not m.ice_ufrag or not m.ice_pwd:
            raise SdpError(f"{where} has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
        if not m.fingerprint:
            raise SdpError(f"{where} has no DTLS fingerprint (a=fingerprint)")
        if m.kind in ("audio", "video") and not m.rtcp_mux:
            raise SdpError(f"{where} does not multiplex RTCP (a=rtcp-mux), as WebRTC requires")
        _choose(m)
    videos = [m for m in media if m.kind == "video"]
    audios = [m for m in media if m.kind == "audio"]
    if len(videos) != 1 or len(audios) > 1:
        raise NoUsableCodec(
            f"expected one video and at most one audio section, got {len(videos)} video "
            f"and {len(audios)} audio"
        )
    video, audio = videos[0], (audios[0] if audios else None)
    if not video.usable:
        offered = sorted({c for c, _r, _ch in video.codecs.values() if c != "rtx"})
        h264 = " (H.264 only with packetization-mode 0)" if "h264" in offered else ""
        raise NoUsableCodec(
            f"no usable video codec: offer H.264 with packetization-mode=1; "
            f"offered {', '.join(offered) or 'none'}{h264}"
        )
    if audio is not None and not audio.usable:
        offered = sorted({c for c, _r, _ch in audio.codecs.values()})
        raise NoUsableCodec(
            f"no usable audio codec: offer Opus (opus/48000/2); offered {', '.join(offered)}"
        )
    for section in (video, audio):
        if section is not None and section.direction not in _SENDING:
            raise NoUsableCodec(
                f"the {section.kind} section is {section.direction}: a WHIP offer sends"
            )
    return Offer(media, video, audio, media[0].ice_ufrag, media[0].ice_pwd)


def for_aiortc(text: str, offer: Offer) -> str:
    """The offer as aiortc should see it: only the usable payload types (so it cannot pick a
    codec we do not relay), H.264 under a profile it accepts, and no end-of-candidates.

    End-of-candidates goes because aioice then fails at once when the offer listed no
    candidates (OBS, FFmpeg): the publisher's checks arrive as peer-reflexive candidates
    after that. The session's own connect timeout decides when ICE has failed.
    """
    out: list[str] = []
    current: MediaOffer | None = None
    index = -1
    for _number, line in _lines(text):
        if line.startswith("m="):
            index += 1
            current = offer.media[index]
            if current.kind in ("audio", "video"):
                parts = line.split()
                keep = [str(pt) for pt in current.usable + current.rtx]
                line = " ".join(parts[:3] + [f for f in parts[3:] if f in keep])
        elif line == "a=end-of-candidates":
            continue
        elif current is not None and current.kind in ("audio", "video"):
            match = _PT_ATTRIBUTE.match(line)
            if match:
                pt = int(match.group(1))
                if pt not in current.usable and pt not in current.rtx:
                    continue
                if line.startswith("a=fmtp:") and current.kind == "video" and pt in current.usable:
                    line = _with_profile(line, _AIORTC_PROFILE)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def _with_profile(fmtp_line: str, profile: str) -> str:
    if _PROFILE.search(fmtp_line):
        return _PROFILE.sub(f"profile-level-id={profile}", fmtp_line)
    return f"{fmtp_line};profile-level-id={profile}"


def restore_answer(answer: str, offer: Offer) -> str:
    """aiortc's answer with each H.264 payload type carrying the profile the publisher
    offered, so the answer agrees with the offer (RFC 6184 8.2.2)."""
    profiles = {
        pt: match.group(1)
        for pt in offer.video.usable
        if (match := _PROFILE.search(offer.video.fmtp.get(pt, "")))
    }
    out: list[str] = []
    for _number, line in _lines(answer):
        match = _PT_ATTRIBUTE.match(line)
        if match and line.startswith("a=fmtp:") and int(match.group(1)) in profiles:
            line = _with_profile(line, profiles[int(match.group(1))])
        out.append(line)
    return "\r\n".join(out) + "\r\n"


@dataclass(frozen=True, slots=True)
class Fragment:
    """A trickle ICE SDP fragment (RFC 8840): credentials and candidates, by mid."""

    ice_ufrag: str
    ice_pwd: str
    candidates: list[tuple[str, str]]  # (mid, the candidate attribute value)
    end_of_candidates: bool


def parse_fragment(text: str) -> Fragment:
    ufrag = pwd = mid = ""
    candidates: list[tuple[str, str]] = []
    end = False
    for number, line in _lines(text):
        if not _LINE.match(line):
            raise SdpError(f"line {number} is not an SDP fragment line: {line[:40]!r}")
        name, _, value = line[2:].partition(":")
        if line.startswith("m="):
            mid = ""
        elif not line.startswith("a="):
            continue
        elif name == "ice-ufrag":
            ufrag = value.strip()
        elif name == "ice-pwd":
            pwd = value.strip()
        elif name == "mid":
            mid = value.strip()
        elif name == "candidate":
            candidates.append((mid, value.strip()))
        elif name == "end-of-candidates":
            end = True
    return Fragment(ufrag, pwd, candidates, end)
