"""Figures from the platforms themselves: Douyin Compass exports and the WeChat Channels API.

Platforms count their own viewers and orders; a base reads those figures beside its own. Both
ways in produce :class:`~analytics.platform.figures.PlatformFigures` (one broadcast on one
platform) and store them through :func:`~analytics.platform.store.save_figures`, which matches
each broadcast to a live session of the base where it can and keeps it apart from the figures
our own events give (see ``docs/imports.md``).
"""
