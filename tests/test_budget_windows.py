"""Table-driven tests of sentinel/budget/windows.py.

Every expected instant below is worked out by hand from LiteLLM's reset rules
(litellm_core_utils/duration_parser.get_next_standardized_reset_time, API.md §5.2 / §5.4) and written as a
literal UTC datetime; nothing is computed by the code under test.

Offsets used: Europe/Berlin CET = UTC+1, CEST = UTC+2 (2026: CEST from 03-29 01:00Z to 10-25 01:00Z);
America/New_York EST = UTC-5, EDT = UTC-4 (2026: EDT from 03-08 07:00Z to 11-01 06:00Z);
Asia/Tokyo JST = UTC+9; Asia/Kolkata IST = UTC+5:30.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from sentinel.budget.windows import (
    Duration,
    Period,
    accounting_days,
    nearest_utc_day,
    next_reset,
    parse_duration,
    parse_period,
    period_window,
    proxy_window_start,
)

Z = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")


def u(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def _id(value: object) -> str | None:
    """Readable test ids: zone names and ISO instants."""
    if isinstance(value, ZoneInfo):
        return value.key
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, date | timedelta):
        return str(value)
    return None


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A wall-clock time in ``tz`` (inputs only; never an ambiguous or skipped time)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=tz)


# ------------------------------------------------------------------------------------------------ parse_duration
@pytest.mark.parametrize(
    ("text", "count", "unit"),
    [
        ("30s", 30, "s"),
        ("1s", 1, "s"),
        ("5m", 5, "m"),
        ("7m", 7, "m"),
        ("1h", 1, "h"),
        ("24h", 24, "h"),
        ("1d", 1, "d"),
        ("7d", 7, "d"),
        ("30d", 30, "d"),
        ("365d", 365, "d"),
        ("1w", 1, "w"),
        ("2w", 2, "w"),
        ("1mo", 1, "mo"),
        ("3mo", 3, "mo"),
        ("12mo", 12, "mo"),
        ("hourly", 1, "h"),
        ("daily", 24, "h"),
        ("weekly", 7, "d"),
        ("monthly", 30, "d"),
        ("  1d  ", 1, "d"),
        ("Daily", 24, "h"),
        ("1D", 1, "d"),
    ],
)
def test_parse_duration_accepts_litellm_forms(text: str, count: int, unit: str) -> None:
    assert parse_duration(text) == Duration(count, unit)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "0d", "0s", "0mo", "00h", "5x", "d", "mo", "1.5d", "-1d", "1 d", "10", "1dd", "1month", "fortnightly"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "is_monthly", "months", "wall_days", "seconds"),
    [
        ("30s", False, None, None, 30),
        ("5m", False, None, None, 300),
        ("2h", False, None, None, 7200),
        ("daily", False, None, None, 86400),
        ("1d", False, None, 1, None),
        ("7d", False, None, 7, None),
        ("1w", False, None, 7, None),
        ("2w", False, None, 14, None),
        ("14d", False, None, 14, None),
        ("31d", False, None, 31, None),
        ("30d", True, 1, None, None),
        ("monthly", True, 1, None, None),
        ("1mo", True, 1, None, None),
        ("2mo", True, 2, None, None),
    ],
)
def test_duration_properties(
    text: str, is_monthly: bool, months: int | None, wall_days: int | None, seconds: int | None
) -> None:
    d = parse_duration(text)
    assert d.is_monthly is is_monthly
    if months is not None:
        assert d.months == months
    assert d.wall_days == wall_days
    assert d.seconds == seconds


# ---------------------------------------------------------------------------------------------------- next_reset
NEXT_RESET = [
    # --- days (UTC)
    ("1d", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 14)),
    ("1d", Z, u(2026, 5, 13), u(2026, 5, 14)),  # exactly midnight: the next one
    ("1d", Z, u(2026, 5, 13, 23, 59, 59), u(2026, 5, 14)),
    ("1d", Z, u(2026, 1, 31, 12), u(2026, 2, 1)),  # month end
    ("1d", Z, u(2026, 12, 31, 18), u(2027, 1, 1)),  # year end
    ("1d", Z, u(2028, 2, 28, 12), u(2028, 2, 29)),  # into the leap day
    ("1d", Z, u(2028, 2, 29, 12), u(2028, 3, 1)),  # leap day as now
    ("1d", Z, u(2027, 2, 28, 12), u(2027, 3, 1)),  # non-leap February
    ("2d", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 15)),
    ("10d", Z, u(2026, 1, 25, 8), u(2026, 2, 4)),
    ("14d", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 27)),
    ("31d", Z, u(2026, 12, 15, 6), u(2027, 1, 15)),
    ("28d", Z, u(2028, 2, 29, 9), u(2028, 3, 28)),
    # --- weeks: 7d / 1w / weekly snap to the next Monday, strictly after now
    ("7d", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 18)),  # Wednesday
    ("1w", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 18)),
    ("weekly", Z, u(2026, 5, 17, 23, 59), u(2026, 5, 18)),  # Sunday night
    ("7d", Z, u(2026, 5, 18, 10), u(2026, 5, 25)),  # Monday 10:00: the following Monday
    ("1w", Z, u(2026, 5, 18), u(2026, 5, 25)),  # Monday 00:00 exactly
    ("7d", Z, u(2028, 2, 29, 12), u(2028, 3, 6)),  # leap day is a Tuesday
    ("7d", Z, u(2026, 12, 31, 12), u(2027, 1, 4)),  # Thursday, year rollover
    ("2w", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 27)),  # other Nw: today + N*7 days
    ("3w", Z, u(2026, 12, 20, 1), u(2027, 1, 10)),
    # --- months: 30d / 1mo / monthly → 1st of next month; Nmo → 1st N months on
    ("30d", Z, u(2026, 1, 31, 12), u(2026, 2, 1)),
    ("30d", Z, u(2026, 1, 1), u(2026, 2, 1)),  # exactly the 1st 00:00: next month's 1st
    ("1mo", Z, u(2026, 6, 1), u(2026, 7, 1)),
    ("monthly", Z, u(2026, 6, 1, 0, 0, 1), u(2026, 7, 1)),
    ("1mo", Z, u(2026, 12, 15), u(2027, 1, 1)),  # December → January
    ("30d", Z, u(2026, 12, 31, 23, 59, 59), u(2027, 1, 1)),
    ("30d", Z, u(2028, 2, 29, 12), u(2028, 3, 1)),  # leap day
    ("1mo", Z, u(2027, 2, 28, 23), u(2027, 3, 1)),
    ("1mo", Z, u(2028, 1, 31, 23), u(2028, 2, 1)),
    ("2mo", Z, u(2026, 11, 20), u(2027, 1, 1)),
    ("3mo", Z, u(2026, 1, 31), u(2026, 4, 1)),
    ("12mo", Z, u(2026, 3, 1), u(2027, 3, 1)),
    # --- hours: next hour of the day that is a multiple of N, strictly after the current hour
    ("1h", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 13, 11)),
    ("1h", Z, u(2026, 5, 13, 10), u(2026, 5, 13, 11)),
    ("hourly", Z, u(2026, 5, 13, 10, 59, 59), u(2026, 5, 13, 11)),
    ("2h", Z, u(2026, 5, 13, 10, 30), u(2026, 5, 13, 12)),
    ("2h", Z, u(2026, 5, 13, 10), u(2026, 5, 13, 12)),
    ("2h", Z, u(2026, 5, 13, 11), u(2026, 5, 13, 12)),
    ("5h", Z, u(2026, 5, 13, 22, 30), u(2026, 5, 14, 1)),
    ("5h", Z, u(2026, 12, 31, 22, 30), u(2027, 1, 1, 1)),
    ("6h", Z, u(2026, 5, 13, 18), u(2026, 5, 14)),
    ("24h", Z, u(2026, 5, 13, 23, 59), u(2026, 5, 14)),
    ("daily", Z, u(2028, 2, 29, 10), u(2028, 3, 1)),
    # --- minutes: aligned within the hour
    ("7m", Z, u(2026, 5, 13, 10, 59), u(2026, 5, 13, 11, 3)),
    ("7m", Z, u(2026, 5, 13, 10, 20), u(2026, 5, 13, 10, 21)),
    ("15m", Z, u(2026, 5, 13, 10, 14, 59), u(2026, 5, 13, 10, 15)),
    ("15m", Z, u(2026, 5, 13, 10, 15), u(2026, 5, 13, 10, 30)),
    ("30m", Z, u(2026, 12, 31, 23, 45), u(2027, 1, 1)),
    ("1m", Z, u(2026, 5, 13, 10, 0, 30), u(2026, 5, 13, 10, 1)),
    # --- seconds: aligned within the minute
    ("30s", Z, u(2026, 5, 13, 10, 0, 29), u(2026, 5, 13, 10, 0, 30)),
    ("30s", Z, u(2026, 5, 13, 10, 0, 30), u(2026, 5, 13, 10, 1)),
    ("7s", Z, u(2026, 5, 13, 10, 0, 59), u(2026, 5, 13, 10, 1, 3)),
    ("1s", Z, u(2026, 5, 13, 23, 59, 59), u(2026, 5, 14)),
    # --- Europe/Berlin across DST (spring 2026-03-29, autumn 2026-10-25)
    ("1d", BERLIN, at(BERLIN, 2026, 3, 28, 12), u(2026, 3, 28, 23)),  # → 03-29 00:00 CET
    ("1d", BERLIN, at(BERLIN, 2026, 3, 29, 12), u(2026, 3, 29, 22)),  # → 03-30 00:00 CEST
    ("1d", BERLIN, at(BERLIN, 2026, 10, 24, 23, 30), u(2026, 10, 24, 22)),  # → 10-25 00:00 CEST
    ("1d", BERLIN, at(BERLIN, 2026, 10, 25, 12), u(2026, 10, 25, 23)),  # → 10-26 00:00 CET
    ("1d", BERLIN, u(2026, 10, 25, 23, 30), u(2026, 10, 26, 23)),  # UTC now is 10-26 00:30 CET → 10-27
    ("7d", BERLIN, at(BERLIN, 2026, 3, 25, 10), u(2026, 3, 29, 22)),  # Wed → Mon 03-30 00:00 CEST
    ("1w", BERLIN, at(BERLIN, 2026, 3, 29, 10), u(2026, 3, 29, 22)),  # Sun (DST day) → Mon 03-30
    ("7d", BERLIN, at(BERLIN, 2026, 10, 25, 10), u(2026, 10, 25, 23)),  # Sun (DST day) → Mon 10-26 00:00 CET
    ("7d", BERLIN, at(BERLIN, 2026, 10, 19, 10), u(2026, 10, 25, 23)),  # Mon → following Mon 10-26 CET
    ("30d", BERLIN, at(BERLIN, 2026, 3, 15, 12), u(2026, 3, 31, 22)),  # → 04-01 00:00 CEST
    ("30d", BERLIN, at(BERLIN, 2026, 10, 15, 12), u(2026, 10, 31, 23)),  # → 11-01 00:00 CET
    ("1mo", BERLIN, u(2026, 3, 31, 22, 30), u(2026, 4, 30, 22)),  # UTC now is 04-01 00:30 CEST → 05-01
    ("30d", BERLIN, u(2026, 12, 31, 23, 30), u(2027, 1, 31, 23)),  # already 2027-01-01 in Berlin → 02-01
    # --- America/New_York across DST (spring 2026-03-08, autumn 2026-11-01)
    ("1d", NEW_YORK, u(2026, 3, 8, 1), u(2026, 3, 8, 5)),  # 03-07 20:00 EST → 03-08 00:00 EST
    ("1d", NEW_YORK, at(NEW_YORK, 2026, 3, 8, 12), u(2026, 3, 9, 4)),  # → 03-09 00:00 EDT
    ("1d", NEW_YORK, at(NEW_YORK, 2026, 10, 31, 12), u(2026, 11, 1, 4)),  # → 11-01 00:00 EDT
    ("1d", NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 11, 2, 5)),  # → 11-02 00:00 EST
    ("1d", NEW_YORK, u(2026, 1, 1, 3), u(2026, 1, 1, 5)),  # still 2025-12-31 in New York
    ("7d", NEW_YORK, at(NEW_YORK, 2026, 3, 5, 9), u(2026, 3, 9, 4)),  # Thu → Mon 03-09 00:00 EDT
    ("7d", NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 11, 2, 5)),  # Sun (DST day) → Mon 11-02 EST
    ("weekly", NEW_YORK, u(2026, 11, 2, 3), u(2026, 11, 2, 5)),  # UTC Monday, still Sunday in New York
    ("30d", NEW_YORK, at(NEW_YORK, 2026, 3, 10, 12), u(2026, 4, 1, 4)),  # → 04-01 00:00 EDT
    ("30d", NEW_YORK, at(NEW_YORK, 2026, 10, 20, 12), u(2026, 11, 1, 4)),  # → 11-01 00:00 EDT
    ("30d", NEW_YORK, at(NEW_YORK, 2026, 11, 20, 12), u(2026, 12, 1, 5)),  # → 12-01 00:00 EST
    ("1mo", NEW_YORK, u(2027, 1, 1, 1), u(2027, 1, 1, 5)),  # 2026-12-31 20:00 EST → 2027-01-01 00:00 EST
    # --- Asia/Tokyo
    ("1d", TOKYO, u(2026, 5, 13, 20), u(2026, 5, 14, 15)),  # 05-14 05:00 JST → 05-15 00:00 JST
    ("30d", TOKYO, u(2026, 12, 31, 16), u(2027, 1, 31, 15)),  # 2027-01-01 01:00 JST → 02-01 00:00 JST
    ("7d", TOKYO, u(2026, 11, 22, 16), u(2026, 11, 29, 15)),  # Mon 11-23 01:00 JST → Mon 11-30 00:00 JST
]


@pytest.mark.parametrize(("text", "tz", "now", "expected"), NEXT_RESET, ids=_id)
def test_next_reset(text: str, tz: ZoneInfo, now: datetime, expected: datetime) -> None:
    assert next_reset(parse_duration(text), now, tz) == expected


@pytest.mark.parametrize(
    ("text", "tz", "now", "expected"),
    [row for row in NEXT_RESET if row[1] is not Z and parse_duration(row[0]).seconds is None],
    ids=_id,
)
def test_next_reset_day_week_month_is_local_midnight(
    text: str, tz: ZoneInfo, now: datetime, expected: datetime
) -> None:
    got = next_reset(parse_duration(text), now, tz)
    assert got.astimezone(tz).time() == time(0)
    assert got > now


def test_next_reset_default_timezone_is_utc() -> None:
    assert next_reset(parse_duration("1d"), at(TOKYO, 2026, 5, 14, 5)) == u(2026, 5, 14)


# Sub-day durations align on the proxy timezone's wall clock, as LiteLLM does (it replaces hour/minute on the
# local datetime): on a DST day "2h" at 10:30 still resets at 12:00 local, "daily" (24h) at the next local
# midnight, and "Nm" aligns to the local hour (Asia/Kolkata's hours start at :30 UTC).
SUB_DAY_LOCAL = [
    ("2h", BERLIN, at(BERLIN, 2026, 5, 13, 10, 30), u(2026, 5, 13, 10)),  # 12:00 CEST, ordinary day
    ("2h", BERLIN, at(BERLIN, 2026, 3, 29, 10, 30), u(2026, 3, 29, 10)),  # 12:00 CEST on the 23-hour day
    ("2h", BERLIN, at(BERLIN, 2026, 10, 25, 10, 30), u(2026, 10, 25, 11)),  # 12:00 CET on the 25-hour day
    ("6h", NEW_YORK, at(NEW_YORK, 2026, 3, 8, 4), u(2026, 3, 8, 10)),  # 06:00 EDT on the 23-hour day
    ("daily", BERLIN, at(BERLIN, 2026, 3, 29, 10), u(2026, 3, 29, 22)),  # 03-30 00:00 CEST
    ("daily", NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 11, 2, 5)),  # 11-02 00:00 EST
    ("1h", KOLKATA, u(2026, 5, 13, 10), u(2026, 5, 13, 10, 30)),  # 15:30 IST → 16:00 IST
    ("7m", KOLKATA, at(KOLKATA, 2026, 5, 13, 15, 30), u(2026, 5, 13, 10, 5)),  # 15:30 IST → 15:35 IST
    ("7m", KOLKATA, u(2026, 5, 13, 10), u(2026, 5, 13, 10, 5)),  # same instant given in UTC
    ("15m", KOLKATA, u(2026, 5, 13, 10, 10), u(2026, 5, 13, 10, 15)),  # 15:40 IST → 15:45 IST
]


@pytest.mark.parametrize(("text", "tz", "now", "expected"), SUB_DAY_LOCAL, ids=_id)
def test_next_reset_sub_day_uses_proxy_wall_clock(text: str, tz: ZoneInfo, now: datetime, expected: datetime) -> None:
    assert next_reset(parse_duration(text), now, tz) == expected


# -------------------------------------------------------------------------------------------- proxy_window_start
WINDOW_START = [
    # --- UTC
    ("1d", Z, u(2026, 5, 14), u(2026, 5, 13)),
    ("1d", Z, u(2026, 3, 1), u(2026, 2, 28)),
    ("1d", Z, u(2028, 3, 1), u(2028, 2, 29)),
    ("1d", Z, u(2027, 1, 1), u(2026, 12, 31)),
    ("2d", Z, u(2026, 5, 15), u(2026, 5, 13)),
    ("10d", Z, u(2026, 2, 4), u(2026, 1, 25)),
    ("7d", Z, u(2026, 5, 18), u(2026, 5, 11)),
    ("1w", Z, u(2026, 5, 18), u(2026, 5, 11)),
    ("weekly", Z, u(2027, 1, 4), u(2026, 12, 28)),
    ("2w", Z, u(2026, 5, 27), u(2026, 5, 13)),
    ("7d", Z, u(2028, 3, 6), u(2028, 2, 28)),
    ("30d", Z, u(2026, 2, 1), u(2026, 1, 1)),  # January: 31 days
    ("1mo", Z, u(2026, 3, 1), u(2026, 2, 1)),  # February 2026
    ("monthly", Z, u(2027, 3, 1), u(2027, 2, 1)),  # February 2027 (28 days)
    ("30d", Z, u(2028, 3, 1), u(2028, 2, 1)),  # February 2028 (29 days)
    ("1mo", Z, u(2027, 1, 1), u(2026, 12, 1)),  # December, across the year
    ("30d", Z, u(2026, 1, 1), u(2025, 12, 1)),
    ("2mo", Z, u(2027, 1, 1), u(2026, 11, 1)),
    ("3mo", Z, u(2026, 4, 1), u(2026, 1, 1)),
    ("12mo", Z, u(2027, 3, 1), u(2026, 3, 1)),
    ("1h", Z, u(2026, 5, 13, 11), u(2026, 5, 13, 10)),
    ("hourly", Z, u(2026, 5, 14), u(2026, 5, 13, 23)),
    ("daily", Z, u(2026, 5, 14), u(2026, 5, 13)),
    ("5h", Z, u(2027, 1, 1, 1), u(2026, 12, 31, 20)),
    ("7m", Z, u(2026, 5, 13, 11, 3), u(2026, 5, 13, 10, 56)),
    ("30s", Z, u(2026, 5, 13, 10, 1), u(2026, 5, 13, 10, 0, 30)),
    # --- Europe/Berlin across DST: day/week/month windows start at local midnight
    ("1d", BERLIN, u(2026, 3, 29, 22), u(2026, 3, 28, 23)),  # 03-29 CET midnight → 23-hour day
    ("1d", BERLIN, u(2026, 10, 25, 23), u(2026, 10, 24, 22)),  # 10-25 CEST midnight → 25-hour day
    ("1d", BERLIN, u(2026, 3, 28, 23), u(2026, 3, 27, 23)),  # ordinary CET day before the change
    ("7d", BERLIN, u(2026, 3, 29, 22), u(2026, 3, 22, 23)),  # Mon 03-30 CEST → Mon 03-23 CET
    ("1w", BERLIN, u(2026, 10, 25, 23), u(2026, 10, 18, 22)),  # Mon 10-26 CET → Mon 10-19 CEST
    ("30d", BERLIN, u(2026, 3, 31, 22), u(2026, 2, 28, 23)),  # 04-01 CEST → 03-01 CET
    ("30d", BERLIN, u(2026, 10, 31, 23), u(2026, 9, 30, 22)),  # 11-01 CET → 10-01 CEST
    ("1mo", BERLIN, u(2026, 12, 31, 23), u(2026, 11, 30, 23)),  # 2027-01-01 CET → 2026-12-01 CET
    ("2h", BERLIN, u(2026, 3, 29, 2), u(2026, 3, 29)),  # sub-day: exactly two hours back
    # --- America/New_York across DST
    ("1d", NEW_YORK, u(2026, 3, 9, 4), u(2026, 3, 8, 5)),  # 03-09 EDT → 03-08 EST (23 h)
    ("1d", NEW_YORK, u(2026, 11, 2, 5), u(2026, 11, 1, 4)),  # 11-02 EST → 11-01 EDT (25 h)
    ("7d", NEW_YORK, u(2026, 3, 9, 4), u(2026, 3, 2, 5)),  # Mon 03-09 EDT → Mon 03-02 EST
    ("7d", NEW_YORK, u(2026, 11, 2, 5), u(2026, 10, 26, 4)),  # Mon 11-02 EST → Mon 10-26 EDT
    ("30d", NEW_YORK, u(2026, 4, 1, 4), u(2026, 3, 1, 5)),  # 04-01 EDT → 03-01 EST
    ("30d", NEW_YORK, u(2026, 12, 1, 5), u(2026, 11, 1, 4)),  # 12-01 EST → 11-01 EDT
    ("1mo", NEW_YORK, u(2027, 1, 1, 5), u(2026, 12, 1, 5)),
    # --- Asia/Tokyo
    ("1d", TOKYO, u(2026, 5, 14, 15), u(2026, 5, 13, 15)),
    ("30d", TOKYO, u(2027, 1, 31, 15), u(2026, 12, 31, 15)),
]


@pytest.mark.parametrize(("text", "tz", "reset_at", "expected"), WINDOW_START, ids=_id)
def test_proxy_window_start(text: str, tz: ZoneInfo, reset_at: datetime, expected: datetime) -> None:
    assert proxy_window_start(parse_duration(text), reset_at, tz) == expected


@pytest.mark.parametrize(
    ("text", "tz", "reset_at", "length"),
    [
        ("1d", BERLIN, u(2026, 3, 29, 22), timedelta(hours=23)),
        ("1d", BERLIN, u(2026, 10, 25, 23), timedelta(hours=25)),
        ("1d", NEW_YORK, u(2026, 3, 9, 4), timedelta(hours=23)),
        ("1d", NEW_YORK, u(2026, 11, 2, 5), timedelta(hours=25)),
        ("7d", BERLIN, u(2026, 3, 29, 22), timedelta(days=7, hours=-1)),
        ("7d", BERLIN, u(2026, 10, 25, 23), timedelta(days=7, hours=1)),
        ("30d", Z, u(2027, 3, 1), timedelta(days=28)),
        ("30d", Z, u(2028, 3, 1), timedelta(days=29)),
        ("1mo", Z, u(2026, 2, 1), timedelta(days=31)),
        ("30d", BERLIN, u(2026, 3, 31, 22), timedelta(days=31, hours=-1)),
        ("30d", NEW_YORK, u(2026, 12, 1, 5), timedelta(days=30, hours=1)),
    ],
    ids=_id,
)
def test_proxy_window_length(text: str, tz: ZoneInfo, reset_at: datetime, length: timedelta) -> None:
    assert reset_at - proxy_window_start(parse_duration(text), reset_at, tz) == length


def test_proxy_window_start_default_timezone_is_utc() -> None:
    assert proxy_window_start(parse_duration("1d"), u(2026, 5, 14)) == u(2026, 5, 13)


@pytest.mark.parametrize(("text", "tz", "now", "expected"), NEXT_RESET, ids=_id)
def test_window_contains_now(text: str, tz: ZoneInfo, now: datetime, expected: datetime) -> None:
    """The window ending at the next reset began at or before ``now``."""
    duration = parse_duration(text)
    reset = next_reset(duration, now, tz)
    assert proxy_window_start(duration, reset, tz) <= now < reset


# -------------------------------------------------------------------------------------------------- rule periods
@pytest.mark.parametrize(
    ("text", "anchor", "expected"),
    [
        ("day", None, Period("day")),
        ("week", None, Period("week")),
        ("month", None, Period("month")),
        ("MONTH", None, Period("month")),
        (" week ", None, Period("week")),
        ("1d", None, Period("days", 1, date(2024, 1, 1))),
        ("14d", None, Period("days", 14, date(2024, 1, 1))),
        ("14d", date(2026, 1, 5), Period("days", 14, date(2026, 1, 5))),
        ("366d", None, Period("days", 366, date(2024, 1, 1))),
    ],
)
def test_parse_period(text: str, anchor: date | None, expected: Period) -> None:
    assert parse_period(text, anchor) == expected


@pytest.mark.parametrize(
    "text", ["fortnight", "0d", "367d", "", "d", "2w", "1mo", "-1d", "1.5d", "daily", "weekly", "14 d", "year"]
)
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize(
    ("text", "label"), [("day", "day"), ("week", "week"), ("month", "month"), ("14d", "14d"), ("1d", "1d")]
)
def test_period_label(text: str, label: str) -> None:
    assert parse_period(text).label == label


PERIOD_WINDOWS = [
    # --- UTC
    ("day", None, Z, u(2026, 5, 13, 10, 30), u(2026, 5, 13), u(2026, 5, 14)),
    ("day", None, Z, u(2028, 2, 29, 23, 59), u(2028, 2, 29), u(2028, 3, 1)),
    ("week", None, Z, u(2026, 5, 13, 10, 30), u(2026, 5, 11), u(2026, 5, 18)),
    ("week", None, Z, u(2026, 5, 11), u(2026, 5, 11), u(2026, 5, 18)),  # Monday 00:00 starts a week
    ("week", None, Z, u(2026, 5, 17, 23, 59), u(2026, 5, 11), u(2026, 5, 18)),
    ("week", None, Z, u(2026, 12, 31, 12), u(2026, 12, 28), u(2027, 1, 4)),
    ("month", None, Z, u(2026, 1, 31, 12), u(2026, 1, 1), u(2026, 2, 1)),
    ("month", None, Z, u(2027, 2, 14), u(2027, 2, 1), u(2027, 3, 1)),
    ("month", None, Z, u(2028, 2, 29, 12), u(2028, 2, 1), u(2028, 3, 1)),
    ("month", None, Z, u(2026, 12, 31, 23, 59), u(2026, 12, 1), u(2027, 1, 1)),
    ("14d", date(2026, 1, 5), Z, u(2026, 1, 5), u(2026, 1, 5), u(2026, 1, 19)),
    ("14d", date(2026, 1, 5), Z, u(2026, 1, 18, 23, 59), u(2026, 1, 5), u(2026, 1, 19)),
    ("14d", date(2026, 1, 5), Z, u(2026, 1, 19), u(2026, 1, 19), u(2026, 2, 2)),
    ("14d", date(2026, 1, 5), Z, u(2026, 1, 4, 12), u(2025, 12, 22), u(2026, 1, 5)),  # before the anchor
    ("14d", None, Z, u(2026, 5, 13, 10), u(2026, 5, 4), u(2026, 5, 18)),  # default anchor Mon 2024-01-01
    ("7d", None, Z, u(2026, 5, 13, 10), u(2026, 5, 11), u(2026, 5, 18)),
    ("1d", None, Z, u(2026, 5, 13, 10), u(2026, 5, 13), u(2026, 5, 14)),
    # --- Europe/Berlin
    ("day", None, BERLIN, u(2026, 5, 13, 22, 30), u(2026, 5, 13, 22), u(2026, 5, 14, 22)),  # 05-14 00:30 CEST
    ("day", None, BERLIN, at(BERLIN, 2026, 3, 29, 12), u(2026, 3, 28, 23), u(2026, 3, 29, 22)),  # 23 h
    ("day", None, BERLIN, at(BERLIN, 2026, 10, 25, 12), u(2026, 10, 24, 22), u(2026, 10, 25, 23)),  # 25 h
    ("week", None, BERLIN, at(BERLIN, 2026, 3, 29, 12), u(2026, 3, 22, 23), u(2026, 3, 29, 22)),
    ("week", None, BERLIN, at(BERLIN, 2026, 10, 20, 12), u(2026, 10, 18, 22), u(2026, 10, 25, 23)),
    ("month", None, BERLIN, at(BERLIN, 2026, 3, 15), u(2026, 2, 28, 23), u(2026, 3, 31, 22)),
    ("month", None, BERLIN, at(BERLIN, 2026, 10, 15), u(2026, 9, 30, 22), u(2026, 10, 31, 23)),
    ("month", None, BERLIN, u(2026, 12, 31, 23, 30), u(2026, 12, 31, 23), u(2027, 1, 31, 23)),  # Jan in Berlin
    ("14d", date(2026, 3, 23), BERLIN, at(BERLIN, 2026, 3, 30, 12), u(2026, 3, 22, 23), u(2026, 4, 5, 22)),
    # --- Asia/Tokyo
    ("day", None, TOKYO, u(2026, 5, 13, 20), u(2026, 5, 13, 15), u(2026, 5, 14, 15)),  # 05-14 05:00 JST
    ("week", None, TOKYO, at(TOKYO, 2026, 11, 25, 12), u(2026, 11, 22, 15), u(2026, 11, 29, 15)),
    ("week", None, TOKYO, u(2026, 11, 22, 15), u(2026, 11, 22, 15), u(2026, 11, 29, 15)),  # Mon 00:00 JST
    ("month", None, TOKYO, u(2026, 12, 31, 16), u(2026, 12, 31, 15), u(2027, 1, 31, 15)),  # 2027-01-01 JST
    ("month", None, TOKYO, at(TOKYO, 2028, 2, 29, 8), u(2028, 1, 31, 15), u(2028, 2, 29, 15)),
    ("14d", date(2026, 1, 5), TOKYO, u(2026, 1, 18, 15), u(2026, 1, 18, 15), u(2026, 2, 1, 15)),  # 01-19 JST
    # --- America/New_York
    ("day", None, NEW_YORK, at(NEW_YORK, 2026, 3, 8, 12), u(2026, 3, 8, 5), u(2026, 3, 9, 4)),  # 23 h
    ("day", None, NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 11, 1, 4), u(2026, 11, 2, 5)),  # 25 h
    ("week", None, NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 10, 26, 4), u(2026, 11, 2, 5)),
    ("week", None, NEW_YORK, at(NEW_YORK, 2026, 3, 8, 12), u(2026, 3, 2, 5), u(2026, 3, 9, 4)),
    ("month", None, NEW_YORK, at(NEW_YORK, 2026, 11, 15), u(2026, 11, 1, 4), u(2026, 12, 1, 5)),
    ("month", None, NEW_YORK, u(2026, 12, 1, 3), u(2026, 11, 1, 4), u(2026, 12, 1, 5)),  # still Nov 30 in NY
    ("month", None, NEW_YORK, at(NEW_YORK, 2026, 3, 20), u(2026, 3, 1, 5), u(2026, 4, 1, 4)),
    ("14d", date(2026, 10, 26), NEW_YORK, at(NEW_YORK, 2026, 11, 1, 12), u(2026, 10, 26, 4), u(2026, 11, 9, 5)),
]


@pytest.mark.parametrize(("text", "anchor", "tz", "now", "start", "end"), PERIOD_WINDOWS, ids=_id)
def test_period_window(
    text: str, anchor: date | None, tz: ZoneInfo, now: datetime, start: datetime, end: datetime
) -> None:
    assert period_window(parse_period(text, anchor), now, tz) == (start, end)


# ------------------------------------------------------------------------------------------- accounting by UTC day
@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (u(2026, 5, 13), date(2026, 5, 13)),
        (u(2026, 5, 13, 11, 59, 59), date(2026, 5, 13)),
        (u(2026, 5, 13, 12), date(2026, 5, 14)),  # tie: the later day
        (u(2026, 5, 13, 12, 0, 1), date(2026, 5, 14)),
        (u(2026, 5, 13, 23), date(2026, 5, 14)),
        (u(2026, 12, 31, 13), date(2027, 1, 1)),
        (u(2028, 2, 28, 12), date(2028, 2, 29)),
        (at(TOKYO, 2026, 5, 13, 21), date(2026, 5, 14)),  # = 12:00Z, a tie
        (at(NEW_YORK, 2026, 11, 1), date(2026, 11, 1)),  # = 04:00Z
        (at(BERLIN, 2026, 10, 26), date(2026, 10, 26)),  # = 10-25 23:00Z
    ],
    ids=_id,
)
def test_nearest_utc_day(moment: datetime, expected: date) -> None:
    assert nearest_utc_day(moment) == expected


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        (u(2026, 5, 13), u(2026, 5, 14), date(2026, 5, 13), date(2026, 5, 13)),  # UTC day
        (u(2026, 5, 1), u(2026, 6, 1), date(2026, 5, 1), date(2026, 5, 31)),  # UTC month
        (u(2026, 11, 1, 4), u(2026, 12, 1, 5), date(2026, 11, 1), date(2026, 11, 30)),  # New York Nov 2026
        (u(2026, 11, 22, 15), u(2026, 11, 29, 15), date(2026, 11, 23), date(2026, 11, 29)),  # Tokyo week
        (u(2026, 9, 30, 22), u(2026, 10, 31, 23), date(2026, 10, 1), date(2026, 10, 31)),  # Berlin Oct 2026
        (u(2026, 5, 13, 15), u(2026, 5, 14, 15), date(2026, 5, 14), date(2026, 5, 14)),  # Tokyo day 05-14
        (u(2026, 3, 8, 5), u(2026, 3, 9, 4), date(2026, 3, 8), date(2026, 3, 8)),  # New York 23-hour day
        (u(2026, 11, 1, 4), u(2026, 11, 2, 5), date(2026, 11, 1), date(2026, 11, 1)),  # New York 25-hour day
        (u(2026, 5, 12, 18, 30), u(2026, 5, 13, 18, 30), date(2026, 5, 13), date(2026, 5, 13)),  # Kolkata day
        (u(2026, 5, 13, 12), u(2026, 5, 14, 12), date(2026, 5, 14), date(2026, 5, 14)),  # ties → later days
        (u(2026, 5, 13, 12), u(2026, 5, 13, 18), date(2026, 5, 14), date(2026, 5, 14)),  # never empty
        (u(2028, 1, 31, 15), u(2028, 2, 29, 15), date(2028, 2, 1), date(2028, 2, 29)),  # Tokyo Feb 2028
    ],
    ids=_id,
)
def test_accounting_days(start: datetime, end: datetime, first: date, last: date) -> None:
    assert accounting_days(start, end) == (first, last)


@pytest.mark.parametrize(
    ("text", "tz", "now", "first", "last"),
    [
        ("month", NEW_YORK, at(NEW_YORK, 2026, 11, 15, 9), date(2026, 11, 1), date(2026, 11, 30)),
        ("week", TOKYO, at(TOKYO, 2026, 11, 23), date(2026, 11, 23), date(2026, 11, 29)),
        ("day", BERLIN, at(BERLIN, 2026, 10, 25, 12), date(2026, 10, 25), date(2026, 10, 25)),
        ("month", BERLIN, at(BERLIN, 2026, 3, 15), date(2026, 3, 1), date(2026, 3, 31)),
        ("week", NEW_YORK, at(NEW_YORK, 2026, 3, 8, 12), date(2026, 3, 2), date(2026, 3, 8)),
        ("month", Z, u(2027, 2, 10), date(2027, 2, 1), date(2027, 2, 28)),
    ],
    ids=_id,
)
def test_period_accounting_days(text: str, tz: ZoneInfo, now: datetime, first: date, last: date) -> None:
    assert accounting_days(*period_window(parse_period(text), now, tz)) == (first, last)
