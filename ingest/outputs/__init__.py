"""Where a live session's stream goes: platforms (RTMP, RTMPS, SRT), HLS and the recording."""
