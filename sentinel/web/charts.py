"""The web view's charts as inline SVG markup: pure functions of their numbers, no JavaScript.

Deterministic (coordinates rounded to a tenth of a pixel, no ids, no randomness) and accessible:
each chart is ``role="img"`` with an ``aria-label`` and a ``<title>``; marked days carry their own
``<title>`` (a tooltip). No ``xmlns``: inline SVG in HTML needs none, and the pages carry no URL.
Every text is escaped here, so the markup can be placed in a page as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from sentinel.digest.build import DayPoint

WIDTH = 1060  # the page's column (1100 px less its padding); narrower screens scale the SVG down
DAILY_HEIGHT = 240
BAR_ROW = 24
BAR_LABEL = 210  # px for the names left of the bars
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 14, 26, 26
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LABEL_CHARS = 30


def usd(value: float) -> str:
    """Compact dollars for axes and bar ends: $0.35, $12, $1.2k, $3.4M."""
    size = abs(value)
    sign = "-" if value < 0 else ""
    if size >= 1e6:
        return f"{sign}${size / 1e6:,.1f}M"
    if size >= 1e3:
        return f"{sign}${size / 1e3:,.1f}k"
    if size >= 10 or size == 0:
        return f"{sign}${size:,.0f}"
    return f"{sign}${size:,.2f}"


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _day(d: date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}"


def nice_step(top: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` gridlines up to ``top``."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= mult * power:
            return mult * power
    return 10.0 * power


def _open(kind: str, width: int, height: int, label: str) -> list[str]:
    return [
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(label)}</title>",
    ]


def daily(points: Sequence[DayPoint], title: str) -> str:
    """Spend per day as a line, the baseline's usual range shaded and its expectation dashed; days
    above the range are marked. Days without a baseline (too little history) have no band."""
    n = len(points)
    above = [p for p in points if p.upper is not None and p.spend > p.upper]
    label = f"{title}: {usd(sum(p.spend for p in points))} in {n} days"
    if above:
        label += f", {len(above)} above the usual range"
    out = _open("daily", WIDTH, DAILY_HEIGHT, label)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, DAILY_HEIGHT - _TOP - _BOTTOM
    if n == 0:
        out.append(f'<text x="{WIDTH // 2}" y="{DAILY_HEIGHT // 2}" text-anchor="middle" class="muted">no days</text>')
        return "".join([*out, "</svg>"])
    top = max([p.spend for p in points] + [p.upper or 0.0 for p in points] + [0.0])
    step = nice_step(top)
    y_max = step * max(1, math.ceil(top / step)) if top > 0 else 1.0

    def x(i: int) -> float:
        return _LEFT + (i + 0.5) * plot_w / n

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - max(v, 0.0) / y_max)

    # grid and y labels
    tick = 0.0
    while tick <= y_max + step / 2:
        out.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_n(y(tick))}" y2="{_n(y(tick))}"/>')
        out.append(f'<text class="axis" x="{_LEFT - 6}" y="{_n(y(tick) + 4)}" text-anchor="end">{usd(tick)}</text>')
        tick += step
    # x labels: about six, first and last included
    marks = sorted({round(k * (n - 1) / 5) for k in range(6)}) if n > 1 else [0]
    for i in marks:
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        at = f'x="{_n(x(i))}" y="{DAILY_HEIGHT - 8}" text-anchor="{anchor}"'
        out.append(f'<text class="axis" {at}>{_day(points[i].day)}</text>')
    # the band and the expectation, one piece per run of days that have a baseline
    runs: list[list[int]] = []
    for i, p in enumerate(points):
        if p.expected is None or p.lower is None or p.upper is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        upper = " ".join(f"{_n(x(i))},{_n(y(points[i].upper or 0.0))}" for i in run)
        lower = " ".join(f"{_n(x(i))},{_n(y(points[i].lower or 0.0))}" for i in reversed(run))
        out.append(f'<polygon class="band" points="{upper} {lower}"/>')
        line = " ".join(f"{_n(x(i))},{_n(y(points[i].expected or 0.0))}" for i in run)
        out.append(f'<polyline class="expected" points="{line}"/>')
    spend = " ".join(f"{_n(x(i))},{_n(y(p.spend))}" for i, p in enumerate(points))
    if n == 1:
        out.append(f'<circle class="spend" cx="{_n(x(0))}" cy="{_n(y(points[0].spend))}" r="3"/>')
    else:
        out.append(f'<polyline class="spend" points="{spend}"/>')
    for i, p in enumerate(points):
        if p.upper is not None and p.spend > p.upper:
            tip = f"{p.day.isoformat()}: {usd(p.spend)}, usual up to {usd(p.upper)}"
            at = f'cx="{_n(x(i))}" cy="{_n(y(p.spend))}" r="3.5"'
            out.append(f'<circle class="above" {at}><title>{escape(tip)}</title></circle>')
    # legend
    out.append(
        f'<g class="legend"><line class="spend" x1="{_LEFT}" x2="{_LEFT + 18}" y1="10" y2="10"/>'
        f'<text x="{_LEFT + 22}" y="14">spend</text>'
        f'<rect class="band" x="{_LEFT + 80}" y="4" width="18" height="12"/>'
        f'<text x="{_LEFT + 102}" y="14">usual range</text>'
        f'<line class="expected" x1="{_LEFT + 190}" x2="{_LEFT + 208}" y1="10" y2="10"/>'
        f'<text x="{_LEFT + 212}" y="14">expected</text></g>'
    )
    return "".join([*out, "</svg>"])


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    previous: float | None = None  # the period before, drawn as a thin grey bar under the value


def bars(rows: Sequence[Bar], title: str) -> str:
    """Horizontal bars, one per row in the given order, each with its amount at the end."""
    height = max(BAR_ROW * len(rows), BAR_ROW) + 8
    label = f"{title}: " + ", ".join(f"{r.label} {usd(r.value)}" for r in rows) if rows else f"{title}: none"
    out = _open("bars", WIDTH, height, label)
    if not rows:
        out.append(f'<text x="{BAR_LABEL}" y="18" class="muted">no spend</text>')
        return "".join([*out, "</svg>"])
    scale_w = WIDTH - BAR_LABEL - 80
    top = max([r.value for r in rows] + [r.previous or 0.0 for r in rows] + [0.0])
    for i, r in enumerate(rows):
        y0 = 4 + i * BAR_ROW
        name = r.label if len(r.label) <= _LABEL_CHARS else r.label[: _LABEL_CHARS - 1] + "…"
        width = scale_w * max(r.value, 0.0) / top if top > 0 else 0.0
        out.append(
            f'<text class="name" x="{BAR_LABEL - 8}" y="{y0 + 14}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar" x="{BAR_LABEL}" y="{y0 + 3}" width="{_n(width)}" height="12"/>'
        )
        if r.previous is not None and top > 0:
            before = scale_w * max(r.previous, 0.0) / top
            out.append(f'<rect class="before" x="{BAR_LABEL}" y="{y0 + 17}" width="{_n(before)}" height="3"/>')
        out.append(f'<text class="value" x="{_n(BAR_LABEL + width + 6)}" y="{y0 + 14}">{usd(r.value)}</text>')
    return "".join([*out, "</svg>"])
