"""Budget windows as LiteLLM 1.110.2 computes them (API.md §5.2), in UTC (the proxy default timezone).

`budget_reset_at` is the NEXT reset; the window the `spend` counter covers started one duration before it
(one calendar month for "30d"/"Nmo").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sentinel.budget import windows


def next_reset(duration: str, now: datetime) -> datetime:
    """When the budget-reset job will next zero the counter of an entity with this duration."""
    return windows.next_reset(windows.parse_duration(duration), now)


def window_start(duration: str, reset_at: datetime) -> datetime:
    """Start of the window that ends at `reset_at` (the previous reset)."""
    return windows.proxy_window_start(windows.parse_duration(duration), reset_at)


def iso_z(moment: datetime) -> str:
    """LiteLLM's list routes print UTC datetimes with a trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def iso_ms_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@dataclass(frozen=True)
class BudgetState:
    """What the proxy reports for one entity right now: the counter and the window it belongs to."""

    spend: float
    total_spend: float
    max_budget: float | None
    soft_budget: float | None
    budget_duration: str | None
    budget_reset_at: datetime | None
    window_start: datetime | None
