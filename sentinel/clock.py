"""The only place that reads the wall clock. Everything else takes ``now`` as an argument."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """A clock for tests: always ``at``."""
    return lambda: at


def utc_today(now: datetime) -> date:
    return now.astimezone(UTC).date()


def day_end(day: date) -> datetime:
    """The instant a UTC day ends (the next midnight)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def is_final(day: date, now: datetime, settle: timedelta) -> bool:
    """A day stops changing once it ended more than ``settle`` ago (late batch writes land after 00:00Z)."""
    return now >= day_end(day) + settle
