"""WHIP ingest (RFC 9725): WebRTC publishers such as OBS and FFmpeg, relayed without
decoding the video. See ``ingest.whip.handler`` for the HTTP side."""

from ingest.whip.handler import WHIP, WhipServer, add_whip_routes
from ingest.whip.session import Timeouts

__all__ = ["WHIP", "Timeouts", "WhipServer", "add_whip_routes"]
