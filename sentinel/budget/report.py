"""Budget statuses for people (a rich table) and for pipes (JSON), sorted as asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.markup import escape
from rich.table import Table

from sentinel.budget.evaluate import forecast_record
from sentinel.budget.model import STATE_RANK, BudgetStatus

_STATE_LABEL = {"exceeded": "exceeded", "at_risk": "at risk", "soft_exceeded": "soft over", "ok": "ok"}
_STATE_STYLE = {"exceeded": "bold red", "at_risk": "red", "soft_exceeded": "yellow", "ok": "green"}


def _eta_key(s: BudgetStatus) -> float:
    eta = s.forecast.eta if s.forecast else None
    return eta.timestamp() if eta else float("inf")


SORTS: dict[str, Callable[[BudgetStatus], tuple[object, ...]]] = {
    "state": lambda s: (STATE_RANK[s.state], -(s.spec.pct_used or 0.0), s.spec.display),
    "used": lambda s: (-(s.spec.pct_used or 0.0), s.spec.display),
    "spent": lambda s: (-s.spec.spent, s.spec.display),
    "limit": lambda s: (-(s.spec.limit or 0.0), s.spec.display),
    "eta": lambda s: (_eta_key(s), s.spec.display),
    "forecast": lambda s: (-(s.forecast.p_breach if s.forecast else -1.0), s.spec.display),
    "window-end": lambda s: (s.spec.window_end.timestamp() if s.spec.window_end else float("inf"), s.spec.display),
    "name": lambda s: (s.spec.entity_type, s.spec.display.lower()),
}


def sort(statuses: Sequence[BudgetStatus], by: str) -> list[BudgetStatus]:
    return sorted(statuses, key=SORTS[by])


def to_json(s: BudgetStatus) -> dict[str, object]:
    spec = s.spec
    return {
        "budget_id": spec.budget_id,
        "origin": spec.origin,
        "rule": spec.rule,
        "source": spec.source,
        "entity_type": spec.entity_type,
        "entity_id": spec.entity_id,
        "entity_name": spec.display,
        "limit_usd": spec.limit,
        "soft_limit_usd": spec.soft_limit,
        "spent_usd": round(spec.spent, 6),
        "spent_as_of": spec.spent_as_of.isoformat(),
        "spend_basis": spec.spend_basis,
        "pct_used": None if spec.pct_used is None else round(spec.pct_used, 2),
        "period": spec.period or "lifetime",
        "timezone": spec.timezone,
        "window_start": spec.window_start.isoformat() if spec.window_start else None,
        "window_end": spec.window_end.isoformat() if spec.window_end else None,
        "thresholds_pct": list(spec.thresholds),
        "state": s.state,
        "forecast": forecast_record(s),
        "drivers": [dict(d) for d in s.drivers],
        "note": s.note,
    }


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.strftime("%m-%d" if (moment.hour, moment.minute) == (0, 0) else "%m-%d %H:%M")


def _usd(value: float) -> str:
    return f"${value:,.0f}" if value >= 1000 else f"${value:,.2f}"


def _amount(value: float) -> str:
    """Three significant figures: enough to read an interval at a glance."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table(statuses: Sequence[BudgetStatus], title: str) -> Table:
    """Compact enough for an 100-column terminal; `--format json` has every field."""
    t = Table(
        title=title,
        title_justify="left",
        caption="times are UTC; forecast: expected spend at the reset (interval)",
        caption_justify="left",
    )
    t.add_column("budget", min_width=22, overflow="fold")
    t.add_column("spent / limit", justify="right")
    t.add_column("used", justify="right")
    t.add_column("resets")
    t.add_column("forecast at reset", justify="right")
    t.add_column("P", justify="right")
    t.add_column("breach ETA")
    t.add_column("state")
    for s in statuses:
        spec, fc = s.spec, s.forecast
        name = spec.display if len(spec.display) <= 24 else spec.display[:23] + "…"
        label = f"{spec.entity_type} {name} · {spec.period or 'lifetime'}" + (f" [{spec.rule}]" if spec.rule else "")
        limit = _usd(spec.limit) if spec.limit is not None else "-"
        if spec.soft_limit is not None:
            limit += f" (soft {_usd(spec.soft_limit)})"
        used = f"{spec.pct_used:.0f}%" if spec.pct_used is not None else "-"
        forecast = f"{_usd(fc.at_end)} ({_amount(fc.lower)}–{_amount(fc.upper)})" if fc else (s.note or "-")
        t.add_row(
            escape(label),
            f"{_usd(spec.spent)} / {limit}",
            used,
            _when(spec.window_end),
            escape(forecast),
            f"{fc.p_breach:.0%}" if fc and spec.limit is not None else "-",
            _when(fc.eta) if fc else "-",
            f"[{_STATE_STYLE[s.state]}]{_STATE_LABEL[s.state]}[/]",
        )
    return t
