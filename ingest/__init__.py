"""Ingest: protocol code (RTMP, FLV, SDP/WHIP, HLS) kept pure, the servers that own sockets,
and the per-session pipelines that drive ffmpeg."""
