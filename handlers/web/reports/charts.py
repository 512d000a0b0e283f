"""Charts as inline SVG drawn on the server: no JavaScript, readable axes, light colours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 14, 44
# Colour-blind-safe pairs (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for the y axis and its tick step (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 0.25
    rough = value / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return step * math.ceil(value / step), step


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _frame(
    labels: Sequence[str], top: float, step: float, percent: bool, title: str
) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = i * step
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="ytick">{_number(value, percent)}</text>'
        )
    count = max(len(labels), 1)
    slot = plot_w / count
    # At most a dozen x labels, so they stay readable; empty labels are never drawn.
    shown = [index for index, label in enumerate(labels) if label]
    every = max(1, math.ceil(len(shown) / 12))
    for index in shown[::every]:
        label = labels[index]
        x = LEFT + slot * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" class="xtick">{escape(label)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'class="axis"/>'
    )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts: list[str] = []
    x = LEFT
    for item in series:
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{item.color}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 7}" class="legend">{escape(item.name)}</text>'
        )
        x += 26 + 7 * len(item.name)
    return parts


def stacked_bars(labels: Sequence[str], series: Sequence[Series], title: str) -> Markup:
    """Bars stacked per label (e.g. answered and missed calls per day)."""
    totals = [sum(item.values[i] for item in series) for i in range(len(labels))]
    top, step = nice_ceiling(max(totals, default=0))
    parts = _frame(labels, top, step, False, title)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar = max(slot * 0.7, 1.0)
    for index, label in enumerate(labels):
        base = float(TOP + plot_h)
        x = LEFT + slot * index + (slot - bar) / 2
        for item in series:
            value = item.values[index]
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{item.color}"><title>{escape(label)}: {escape(item.name)} '
                f"{_number(value, False)}</title></rect>"
            )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    title: str,
    *,
    percent: bool = False,
    threshold: float | None = None,
) -> Markup:
    """Lines over time (e.g. pool utilisation per hour), with an optional threshold."""
    peak = max((max(item.values, default=0) for item in series), default=0)
    top, step = nice_ceiling(max(peak, threshold or 0))
    parts = _frame(labels, top, step, percent, title)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(labels), 1)
    if threshold is not None:
        y = TOP + plot_h - plot_h * threshold / top
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="limit"/>'
        )
    for item in series:
        points = " ".join(
            f"{LEFT + slot * (i + 0.5):.1f},{TOP + plot_h - plot_h * value / top:.1f}"
            for i, value in enumerate(item.values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{item.color}" stroke-width="2">'
            f"<title>{escape(item.name)}</title></polyline>"
        )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(parts_in: Sequence[tuple[str, int, str]], title: str) -> Markup:
    """One horizontal bar split into shares (e.g. calls by attribution confidence)."""
    total = sum(value for _, value, _ in parts_in)
    width, height = WIDTH, 64
    parts = [
        f'<svg class="chart share" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    x = 0.0
    legend_x = 0
    for name, value, color in parts_in:
        share = value / total if total else 0
        w = width * share
        if w > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{color}">'
                f"<title>{escape(name)}: {value}</title></rect>"
            )
        x += w
        label = f"{name}: {value} ({share * 100:.0f}%)"
        parts.append(
            f'<rect x="{legend_x}" y="42" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="51" class="legend">{escape(label)}</text>'
        )
        legend_x += 30 + 7 * len(label)
    if not total:
        parts.append('<rect x="0" y="0" width="100%" height="28" fill="#eee"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
