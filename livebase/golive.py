"""The go-live kit: what a host pastes into OBS (or drops into an OBS profile) for a room.

The stream key itself is shown only when it is issued (rotation); at any other time the kit
carries a placeholder and the key's last characters, since only a digest is stored.
"""

from __future__ import annotations

from typing import Any

from livebase.settings import Settings

KEY_PLACEHOLDER = "<stream key>"

ENCODER = {
    "video_codec": "H.264 (x264, NVENC, QSV or VideoToolbox)",
    "rate_control": "CBR",
    "keyframe_interval_s": 2,
    "video_bitrate_kbps": {"1080p30": 6000, "720p30": 3000},
    "profile": "high",
    "b_frames": 2,
    "audio": "AAC, 48 kHz stereo, 128–160 kbps",
    "note": "keep the keyframe interval at 2 s: HLS segments and platform relays depend on it",
}


def rtmp_server(settings: Settings) -> str:
    return f"rtmp://{settings.public_host}:{settings.rtmp_port}/live"


def whip_url(settings: Settings, base: str, room: str) -> str:
    return f"http://{settings.public_host}:{settings.http_port}/whip/{base}/{room}"


def obs_service_json(settings: Settings, key: str, *, whip: str | None = None) -> dict[str, Any]:
    """The ``service.json`` of an OBS profile (Settings → Stream), RTMP or, with ``whip``,
    WHIP (OBS 30 and later)."""
    if whip is not None:
        return {"type": "whip_custom", "settings": {"server": whip, "bearer_token": key}}
    return {
        "type": "rtmp_custom",
        "settings": {
            "server": rtmp_server(settings),
            "key": key,
            "use_auth": False,
            "bwtest": False,
        },
    }


def kit(
    settings: Settings, base: str, room: str, key: str | None, hint: str | None
) -> dict[str, Any]:
    """Everything a host needs for ``base``/``room``; ``key`` when it was just issued."""
    shown = key or KEY_PLACEHOLDER
    whip = whip_url(settings, base, room)
    return {
        "room": room,
        "key_set": key is not None or hint is not None,
        "stream_key_hint": f"…{hint}" if hint else None,
        "rtmp": {
            "server": rtmp_server(settings),
            "stream_key": shown,
            "url": f"{rtmp_server(settings)}/{shown}",
        },
        "srt": {
            "url": f"srt://{settings.public_host}:{settings.srt_port}?streamid={shown}",
            "stream_id": shown,
            "note": "OBS: paste the URL as Server; Larix and hardware encoders: host, port "
            "and the stream id (also accepted: live/KEY and #!::r=live/KEY,m=publish)",
        },
        "whip": {"url": whip, "bearer_token": shown},
        "encoder": ENCODER,
        "obs_service_json": obs_service_json(settings, shown),
        "obs_whip_service_json": obs_service_json(settings, shown, whip=whip),
    }
