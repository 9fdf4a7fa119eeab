"""Budgets as Sentinel sees them: one limit on one entity over one window, and how it is going."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sentinel.budget.forecast import Forecast

DEFAULT_THRESHOLDS: tuple[float, ...] = (50.0, 80.0, 90.0, 100.0)


@dataclass(frozen=True)
class BudgetSpec:
    """One budget on one entity as of one moment: its limit, its current window, and what is spent.

    ``origin`` "proxy": the limit and the spend counter come from the proxy (``/team/list``,
    ``/user/list``, ``/key/list``); the counter resets each window. ``origin`` "rule": the limit
    comes from a rule file and spend is summed from stored daily activity over the window.
    """

    budget_id: str  # stable across windows: proxy/<source>/<type>/<id> or rule/<name>/<type>/<id>
    origin: str  # proxy | rule
    source: str | None  # None: every source summed (rule budgets without a source)
    entity_type: str  # team | user | key | provider | model | total
    entity_id: str
    display: str  # alias when known, else the id
    limit: float | None  # None: only a soft budget is set
    soft_limit: float | None
    period: str  # the proxy's budget_duration ("30d") or the rule's period ("month", "14d"); "" lifetime
    timezone: str
    window_start: datetime | None  # None: the counter never resets (no budget_duration)
    window_end: datetime | None  # the next reset
    spent: float
    spent_as_of: datetime  # when the counter was read / the activity was polled
    spend_basis: str  # "proxy counter" | "daily activity"
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    forecast_probability: float = 0.8
    rule: str | None = None
    severity: str = "warning"
    severity_set: bool = False  # a rule chose the severity: keep it, even for a spent budget
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def period_key(self) -> str:
        """Identifies the current window; a reset starts a new one and so re-arms every threshold."""
        return self.window_end.isoformat() if self.window_end else "lifetime"

    @property
    def pct_used(self) -> float | None:
        if self.limit is None or self.limit <= 0:
            return None
        return 100.0 * self.spent / self.limit


# A budget's states, worst first: the order every list of budgets is sorted and counted in.
STATES = ("exceeded", "at_risk", "soft_exceeded", "ok")
STATE_RANK = {state: rank for rank, state in enumerate(STATES)}


@dataclass(frozen=True)
class BudgetStatus:
    spec: BudgetSpec
    forecast: Forecast | None  # None: no window end, the window is over, or too little history
    drivers: tuple[Mapping[str, object], ...] = ()
    note: str | None = None  # why there is no forecast, or what to keep in mind

    @property
    def state(self) -> str:
        """exceeded | at_risk | soft_exceeded | ok (the worst that applies)."""
        s = self.spec
        if s.limit is not None and s.spent >= s.limit:
            return "exceeded"
        if self.forecast is not None and self.forecast.p_breach >= s.forecast_probability:
            return "at_risk"
        if s.soft_limit is not None and s.spent >= s.soft_limit:
            return "soft_exceeded"
        return "ok"
