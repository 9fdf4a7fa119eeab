"""Which budget alerts are due: thresholds, the soft budget and the forecast, once per window each.

Pure: takes a budget's status and the signals already fired in its current window; returns the
signals to fire now. Crossing several thresholds at once (a jump from 40 % to 95 %) gives one
alert, for the highest, that also marks the lower ones as fired so none of them follows later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sentinel.budget.model import BudgetSpec, BudgetStatus


@dataclass(frozen=True)
class Signal:
    name: str  # "threshold:80", "soft", "forecast"
    kind: str  # threshold | soft_budget | forecast
    threshold_pct: float | None = None
    covers: tuple[str, ...] = ()  # every signal name this one marks as fired (itself included)


def threshold_name(pct: float) -> str:
    return f"threshold:{pct:g}"


def due_signals(status: BudgetStatus, fired: frozenset[str]) -> list[Signal]:
    spec = status.spec
    out: list[Signal] = []
    pct = spec.pct_used
    if pct is not None:
        crossed = [t for t in sorted(spec.thresholds) if pct >= t and threshold_name(t) not in fired]
        if crossed:
            names = tuple(threshold_name(t) for t in crossed)
            out.append(Signal(names[-1], "threshold", crossed[-1], names))
    if spec.soft_limit is not None and spec.spent >= spec.soft_limit and "soft" not in fired:
        out.append(Signal("soft", "soft_budget", None, ("soft",)))
    fc = status.forecast
    breached = spec.limit is not None and spec.spent >= spec.limit
    if fc is not None and not breached and fc.p_breach >= spec.forecast_probability and "forecast" not in fired:
        out.append(Signal("forecast", "forecast", None, ("forecast",)))
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def to_alert(status: BudgetStatus, signal: Signal, detected_at: datetime) -> dict[str, object]:
    """The documented JSON shape of a budget alert (README, "Budget alerts"); anomalies share its
    ``kind`` / ``entity_type`` / ``entity_id`` / ``date`` head so routing carries both."""
    s = status.spec
    forecast = forecast_record(status)
    record: dict[str, object] = {
        "kind": "budget",
        "signal": signal.kind,
        "entity_type": s.entity_type,
        "entity_id": s.entity_id,
        "entity_name": s.display,
        "source": s.source,
        "date": detected_at.date().isoformat(),
        "detected_at": detected_at.isoformat(),
        "budget": {
            "id": s.budget_id,
            "origin": s.origin,
            "rule": s.rule,
            "limit_usd": _money(s.limit),
            "soft_limit_usd": _money(s.soft_limit),
            "period": s.period or "lifetime",
            "timezone": s.timezone,
            "window_start": _iso(s.window_start),
            "window_end": _iso(s.window_end),
            "spend_basis": s.spend_basis,
        },
        "spent_usd": _money(s.spent),
        "spent_as_of": s.spent_as_of.isoformat(),
        "pct_used": None if s.pct_used is None else round(s.pct_used, 2),
        "threshold_pct": signal.threshold_pct,
        "also_crossed_pct": [float(n.split(":")[1]) for n in signal.covers if n != signal.name and ":" in n],
        "state": status.state,
        "forecast": forecast,
        "drivers": [dict(d) for d in status.drivers],
        "severity": _severity(s, signal),
        "labels": dict(s.labels),
        "notes": [status.note] if status.note else [],
    }
    if forecast is not None and forecast["over_usd"] is not None:
        record["over_usd"] = forecast["over_usd"]
    return record


def _severity(spec: BudgetSpec, signal: Signal) -> str:
    """A spent budget is critical unless its rule chose a severity."""
    spent = signal.kind == "threshold" and (signal.threshold_pct or 0) >= 100
    return "critical" if spent and not spec.severity_set else spec.severity


def forecast_record(status: BudgetStatus) -> dict[str, object] | None:
    fc = status.forecast
    if fc is None:
        return None
    limit = status.spec.limit
    return {
        "at_window_end_usd": round(fc.at_end, 6),
        "lower_usd": round(fc.lower, 6),
        "upper_usd": round(fc.upper, 6),
        "interval": fc.interval,
        "p_breach": round(fc.p_breach, 4),
        "breach_eta": _iso(fc.eta),
        "breach_eta_earliest": _iso(fc.eta_earliest),
        "over_usd": None if limit is None else round(max(fc.at_end - limit, 0.0), 6),
        "method": fc.method,
        "history_days": fc.history_days,
    }


def describe(record: dict[str, object]) -> str:
    """One line a person reads first: what crossed, by how much, and when it will break."""
    budget = record["budget"]
    assert isinstance(budget, dict)
    name = f"{record['entity_type']} {record['entity_name']}"
    limit = budget.get("limit_usd")
    spent = record["spent_usd"]
    head = f"{name} has spent ${spent:,.2f}" + (f" of ${limit:,.2f} ({record['pct_used']:.0f} %)" if limit else "")
    period = f"{budget['period']} budget"
    if record["signal"] == "threshold":
        return f"{head}: crossed {record['threshold_pct']:g} % of its {period}"
    if record["signal"] == "soft_budget":
        return f"{head}: over its soft budget of ${budget['soft_limit_usd']:,.2f}"
    fc = record["forecast"]
    assert isinstance(fc, dict)
    eta = fc.get("breach_eta")
    when = f"around {str(eta)[:16].replace('T', ' ')} UTC" if eta else "before the window ends"
    return (
        f"{head}: forecast to reach its {period} {when} "
        f"(P={fc['p_breach']:.0%}, ${fc['at_window_end_usd']:,.2f} expected by "
        f"{str(budget['window_end'])[:10]}, ${fc['over_usd']:,.2f} over)"
    )
