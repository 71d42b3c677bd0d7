"""Livebase: the operations backend for live-streaming and short-video e-commerce bases."""

__version__ = "0.1.0"
