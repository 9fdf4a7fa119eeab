"""Checks shared by config.toml ([budgets], sources) and rule files, so both say the same thing."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (an IANA name such as 'Europe/Berlin')") from None
    return value


def check_thresholds(value: tuple[float, ...]) -> tuple[float, ...]:
    if not value or any(not 0 < t <= 1000 for t in value):
        raise ValueError("thresholds are percentages of the amount, each above 0 and at most 1000")
    return value
