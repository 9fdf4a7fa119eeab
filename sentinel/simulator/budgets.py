"""Budget windows as LiteLLM 1.110.2 computes them (API.md §5.2), always in UTC.

`budget_reset_at` is the NEXT reset; the window the `spend` counter covers started one duration before it
(one calendar month for "30d"/"Nmo").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(\d+)(s|m|h|d|mo)$")


def _parse(duration: str) -> tuple[int, str]:
    match = _DURATION.match(duration)
    if match is None:
        raise ValueError(f"unsupported budget_duration {duration!r}")
    return int(match.group(1)), match.group(2)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_reset(duration: str, now: datetime) -> datetime:
    """When the budget-reset job will next zero the counter of an entity with this duration."""
    n, unit = _parse(duration)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "mo" or (unit == "d" and n == 30):
        # 30d and Nmo snap to the 1st of a month rather than to "now + 30 days".
        return _add_months(_month_start(now), 1 if unit == "d" else n)
    if unit == "d" and n == 1:
        return midnight + timedelta(days=1)
    if unit == "d" and n == 7:
        return midnight + timedelta(days=7 - now.weekday())  # next Monday, strictly after today
    if unit == "d":
        return midnight + timedelta(days=n)
    if unit == "h":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=n)
    if unit == "m":
        return now.replace(second=0, microsecond=0) + timedelta(minutes=n)
    return now + timedelta(seconds=n)


def window_start(duration: str, reset_at: datetime) -> datetime:
    """Start of the window that ends at `reset_at` (`duration_parser.get_budget_window_start`)."""
    n, unit = _parse(duration)
    if unit == "mo" or (unit == "d" and n == 30):
        return _add_months(reset_at, -(1 if unit == "d" else n))
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * n
    return reset_at - timedelta(seconds=seconds)


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
