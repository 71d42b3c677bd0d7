"""Inline SVG charts, drawn here so the HTML report needs no script and no outside file.

Each chart scales with its container (``viewBox``, ``width=100%``) and prints as vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from analytics.report.model import Series

#: Colour-blind-safe (Okabe-Ito), in series order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 10, 26


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return 10.0 * power  # pragma: no cover  (the loop always returns)


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    x_max: int,
    y_format: Callable[[float], str],
    y_min_top: float = 1.0,
) -> str:
    """One line per series over ``[0, x_max]`` minutes of the day; the y axis reaches at
    least ``y_min_top`` (4 keeps the ticks of a count whole)."""
    highest = max((v for s in series for _, v in s.points), default=0)
    top = 4 * nice_ceiling(max(highest, y_min_top) / 4)  # four gridlines at round values
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(minute: float) -> float:
        return LEFT + plot_w * minute / x_max

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for i in range(5):
        value = top * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'class="grid"/><text x="{LEFT - 6}" y="{y(value) + 4:.1f}" class="ytick">'
            f"{escape(y_format(value))}</text>"
        )
    for hour in range(0, x_max // 60 + 1, 3):
        parts.append(
            f'<text x="{x(hour * 60):.1f}" y="{HEIGHT - 8}" class="xtick">{hour:02d}:00</text>'
        )
    for index, one in enumerate(series):
        points = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in one.points)
        if len(one.points) == 1:
            m, v = one.points[0]
            parts.append(f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="3" fill="{color(index)}"/>')
        else:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color(index)}" '
                'stroke-width="2" stroke-linejoin="round"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float]], *, label: str, value_format: Callable[[float], str]
) -> str:
    """Horizontal bars, largest first as given."""
    width, row, name_w, value_w = 400, 26, 120, 90
    height = max(1, len(bars)) * row + 8
    top = nice_ceiling(max((v for _, v in bars), default=0))
    plot_w = width - name_w - value_w
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}">'
    ]
    for i, (name, value) in enumerate(bars):
        y = 4 + i * row
        bar = max(0.0, plot_w * value / top)
        parts.append(
            f'<text x="{name_w - 8}" y="{y + 18}" class="bar-name">{escape(name)}</text>'
            f'<rect x="{name_w}" y="{y + 4}" width="{bar:.1f}" height="{row - 10}" '
            f'fill="{color(i)}" rx="2"/>'
            f'<text x="{name_w + bar + 6:.1f}" y="{y + 18}" class="bar-value">'
            f"{escape(value_format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
