"""The digest's charts as PNG bytes, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Deterministic: a fixed size and dpi, the fonts matplotlib ships, and no metadata that changes
between runs (matplotlib writes no timestamp into a PNG; its "Software" entry is dropped too), so
the same digest draws the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend, whatever the environment says

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, WeekdayLocator
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sentinel.digest.build import DayPoint, Digest, Share

DPI = 100
DAILY_SIZE = (8.0, 3.2)  # inches: 800 x 320 px
SHARES_SIZE = (8.0, 3.0)
_WEEK = "#0969da"
_BEFORE = "#9ec5f4"
_PREVIOUS = "#c8d1da"
_BAND = "#d4a72c"
_TEXT = "#1f2328"
_MUTED = "#59636e"
_RC: Any = {  # rc_context's typed keys are Literals; this dict is checked by matplotlib at run time
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#d0d7de",
    "axes.labelcolor": _MUTED,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "svg.hashsalt": "sentinel",
}

CHART_NAMES = ("daily", "providers", "groups")


def _usd(value: float, _pos: object = None) -> str:
    size = abs(value)
    if size >= 1000:
        return f"${value / 1000:,.1f}k"
    return f"${value:,.0f}" if size >= 10 else f"${value:,.2f}".rstrip("0").rstrip(".")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def daily_chart(points: Sequence[DayPoint], period_start: date, title: str) -> bytes:
    """Bars of spend per day (the digest's week darker), the baseline's expectation as a line and
    its band shaded; days without a baseline (too little history) have no band."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=DAILY_SIZE, dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        days = [p.day for p in points]
        colors = [_WEEK if p.day >= period_start else _BEFORE for p in points]
        ax.bar(days, [p.spend for p in points], width=0.8, color=colors, label="spend", zorder=2)  # type: ignore[arg-type]
        with_band = [p for p in points if p.expected is not None and p.lower is not None and p.upper is not None]
        if with_band:
            band_days = [p.day for p in with_band]
            ax.fill_between(
                band_days,  # type: ignore[arg-type]
                [p.lower or 0.0 for p in with_band],
                [p.upper or 0.0 for p in with_band],
                color=_BAND,
                alpha=0.18,
                linewidth=0,
                label="usual range",
                zorder=1,
                step="mid",
            )
            ax.plot(
                band_days,  # type: ignore[arg-type]
                [p.expected or 0.0 for p in with_band],
                color=_BAND,
                linewidth=1.4,
                label="expected",
                zorder=3,
                drawstyle="steps-mid",
            )
        ax.set_title(title, loc="left", color=_TEXT, fontsize=11)
        ax.yaxis.set_major_formatter(FuncFormatter(_usd))
        ax.xaxis.set_major_locator(WeekdayLocator(byweekday=period_start.weekday()))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
        ax.grid(axis="y", color="#eaeef2", zorder=0)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        top = max([p.spend for p in points] + [p.upper or 0.0 for p in with_band] + [1.0])
        ax.set_ylim(0, top * 1.18)  # headroom for the legend
        ax.legend(loc="upper left", frameon=False, ncols=3, fontsize=8)
        return _png(fig)


def shares_chart(rows: Sequence[Share], title: str | None = None) -> bytes:
    """Horizontal bars: this week (dark) and the week before (grey) for each row, largest on top."""
    with matplotlib.rc_context(_RC):
        height = max(SHARES_SIZE[1], 0.9 + 0.32 * len(rows))
        fig = Figure(figsize=(SHARES_SIZE[0], height), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        names = [r.name if len(r.name) <= 28 else r.name[:27] + "…" for r in rows][::-1]
        positions = list(range(len(names)))
        before = [r.previous for r in rows][::-1]
        ax.barh([y - 0.2 for y in positions], before, 0.38, color=_PREVIOUS, label="week before")
        this = [r.spend for r in rows][::-1]
        bars = ax.barh([y + 0.2 for y in positions], this, 0.38, color=_WEEK, label="this week")
        ax.bar_label(bars, labels=[_usd(r.spend) for r in rows][::-1], padding=3, fontsize=8, color=_TEXT)
        ax.set_yticks(positions, names)
        ax.xaxis.set_major_formatter(FuncFormatter(_usd))
        if title:
            ax.set_title(title, loc="left", color=_TEXT, fontsize=11)
        ax.grid(axis="x", color="#eaeef2")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if not rows:
            ax.text(0.5, 0.5, "no spend", transform=ax.transAxes, ha="center", color=_MUTED)
        ax.margins(x=0.12)
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        return _png(fig)


def draw(digest: Digest) -> dict[str, bytes]:
    """Every chart of a digest by name (``CHART_NAMES``): spend per day, by provider, by team (or user).
    The bar charts carry no title: the page's heading above each says what it shows."""
    return {
        "daily": daily_chart(digest.days, digest.period_start, f"Spend per day, last {len(digest.days) // 7} weeks"),
        "providers": shares_chart(digest.by_provider),  # the page's heading names it
        "groups": shares_chart(digest.by_group),
    }
