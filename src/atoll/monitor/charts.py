"""Inline SVG charts drawn in Python: no script, no library, nothing fetched when opened.

Every chart is a ``<figure>`` holding an ``<svg>`` (sized by its ``viewBox``,
so it scales with the page) and, where it has several series, an HTML legend.
Every string that reaches the markup goes through :func:`esc`, since column
names, categories and group names come from data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REFERENCE_COLOR = "#a3acb9"
CURRENT_COLOR = "#2f6fdf"
PALETTE = ("#2f6fdf", "#e07b24", "#2e9d5b", "#c2416b", "#7a5bd1", "#1c9bb0", "#8c6d31", "#5b6472")
"""Series colours, told apart also by people with the common colour-vision deficiencies."""

WIDTH, HEIGHT, LINES_HEIGHT = 360, 224, 180
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP = 44, 12, 12
SLANTED_LABELS, FLAT_LABELS = 66, 26
"""Room under a plot for its tick labels."""

MAX_LABEL = 12
"""Characters of a category or group name shown under its bars (the tooltip has all)."""

Series = tuple[str, Sequence[float | None], str]
"""A line's name, its value per x position (``None``: a gap) and its colour."""


def esc(text: object) -> str:
    """Text safe in HTML and SVG content and in quoted attribute values."""
    return html.escape(str(text), quote=True)


def number(value: float | None) -> str:
    """A short human number: ``12.3k``, ``0.042``, ``1.2M``; ``-`` for none."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


@dataclass(frozen=True)
class Plot:
    """The drawing area of a chart and its vertical scale (from ``bottom`` to ``top``).

    Values are never clamped: the scale is chosen to hold them all, so a
    negative R² is drawn below zero, not at it.
    """

    top: float
    bottom: float = 0.0
    left: float = MARGIN_LEFT
    right: float = WIDTH - MARGIN_RIGHT
    upper: float = MARGIN_TOP
    lower: float = HEIGHT - SLANTED_LABELS

    @property
    def width(self) -> float:
        return self.right - self.left

    def y(self, value: float) -> float:
        share = (value - self.bottom) / (self.top - self.bottom)
        return self.lower - (self.lower - self.upper) * share


def figure(svg: str, caption: str, legend: Sequence[tuple[str, str]] = (), **data: str) -> str:
    """A chart with its caption and legend; ``data`` become ``data-*`` attributes."""
    attributes = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    keys = "".join(
        f'<span class="key"><i style="background:{color}"></i>{esc(name)}</span>'
        for name, color in legend
    )
    legend_html = f'<div class="legend">{keys}</div>' if keys else ""
    return (
        f'<figure class="chart"{attributes}>{svg}{legend_html}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def svg(body: str, label: str, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{esc(label)}">{body}</svg>'
    )


def y_axis(plot: Plot, label: Callable[[float], str]) -> str:
    """Three gridlines (bottom, middle, top) with their values, and zero when it lies between."""
    parts = []
    ticks = {plot.bottom, (plot.bottom + plot.top) / 2, plot.top}
    if plot.bottom < 0 < plot.top:
        ticks.add(0.0)
    for value in sorted(ticks):
        y = plot.y(value)
        parts.append(
            f'<line class="grid" x1="{plot.left}" x2="{plot.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{plot.left - 4}" y="{y + 3:.1f}" text-anchor="end">'
            f"{esc(label(value))}</text>"
        )
    return "".join(parts)


def x_label(
    plot: Plot, x: float, text: str, *, slanted: bool = False, anchor: str = "middle"
) -> str:
    """A tick label under the plot; slanted ones (many or long labels) end at their tick."""
    shown = text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
    y = plot.lower + 14
    turn = f' transform="rotate(-40 {x:.1f} {y})"' if slanted else ""
    anchor = "end" if slanted else anchor
    return (
        f'<text class="tick" x="{x:.1f}" y="{y}" text-anchor="{anchor}"{turn}>'
        f"<title>{esc(text)}</title>{esc(shown)}</text>"
    )


def bars(
    label: str,
    labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    colors: Sequence[str],
    names: Sequence[str],
    *,
    top: float | None = None,
    value_label: Callable[[float | None], str] = percent,
) -> str:
    """Grouped bars: one group per label, one bar per series (``values[series][label]``).

    ``label`` names the chart for screen readers.
    """
    tallest = max((v for row in values for v in row if v is not None), default=0.0)
    plot = Plot(top=top or _round_up(tallest))
    step = plot.width / max(len(labels), 1)
    width = step * 0.8 / max(len(values), 1)
    slanted = len(labels) > 5 or max((len(s) for s in labels), default=0) > 6
    parts = [y_axis(plot, lambda v: value_label(v))]
    for i, name in enumerate(labels):
        start = plot.left + step * i + step * 0.1
        for j, row in enumerate(values):
            value = row[i]
            if value is None:
                continue
            x, y = start + width * j, plot.y(value)
            tip = f"{name}: {names[j]} {value_label(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{plot.lower - y:.1f}" fill="{colors[j]}"><title>{esc(tip)}</title></rect>'
            )
        parts.append(x_label(plot, plot.left + step * (i + 0.5), name, slanted=slanted))
    return svg("".join(parts), label, HEIGHT)


def lines(
    label: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    value_label: Callable[[float | None], str] = number,
    guides: Sequence[tuple[float, str]] = (),
) -> str:
    """One line per series over evenly spaced x positions, with dashed guide levels.

    The scale runs from 0 (or below, to hold negative values) to a tidy top
    above the largest value; series of very different scales belong on
    separate charts.
    """
    values = [v for _, row, _ in series for v in row if v is not None]
    values += [level for level, _ in guides]
    low, high = min(values, default=0.0), max(values, default=0.0)
    bottom = -_round_up(-low) if low < 0 else 0.0
    top = 0.0 if bottom < 0 and high <= 0 else _round_up(high)
    plot = Plot(top=top, bottom=bottom, lower=LINES_HEIGHT - FLAT_LABELS)
    step = plot.width / max(len(x_labels) - 1, 1)
    parts = [y_axis(plot, lambda v: value_label(v))]
    for level, name in guides:
        y = plot.y(level)
        parts.append(
            f'<line class="guide" x1="{plot.left}" x2="{plot.right}" y1="{y:.1f}" y2="{y:.1f}">'
            f"<title>{esc(name)} {esc(value_label(level))}</title></line>"
        )
    for name, row, color in series:
        points = [(plot.left + step * i, plot.y(v), v) for i, v in enumerate(row) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
            f"<title>{esc(name)}: {esc(value_label(v))}</title></circle>"
            for x, y, v in points
        ]
    last = len(x_labels) - 1
    parts += [
        x_label(plot, plot.left + step * i, x_labels[i], anchor=_edge(i, last))
        for i in _spread(len(x_labels), 4)
    ]
    return svg("".join(parts), label, LINES_HEIGHT)


def _edge(index: int, last: int) -> str:
    """Labels at the ends of the axis lie inside it."""
    if index == 0:
        return "start"
    return "end" if index == last else "middle"


def _spread(count: int, most: int) -> list[int]:
    """Up to ``most`` evenly spread indices of ``count`` positions, the last always among them."""
    if count <= most:
        return list(range(count))
    stride = math.ceil(count / most)
    return sorted({*range(count - 1, -1, -stride)})


def _round_up(value: float) -> float:
    """A tidy top for a scale: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-9)))
