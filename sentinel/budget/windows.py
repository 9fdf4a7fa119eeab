"""Budget windows: LiteLLM's reset rules for proxy budgets, calendar periods for rule-file budgets.

LiteLLM (API.md §5.2) snaps resets to boundaries in the proxy's ``litellm_settings.timezone``:
"1d" to the next midnight, "7d"/"1w" to the next Monday, "30d"/"1mo" to the 1st of a month, any
other "Nd"/"Nw" to the start of today plus N days, "Nh"/"Nm"/"Ns" to aligned hours, minutes,
seconds. ``budget_reset_at`` is the NEXT reset; the window the ``spend`` counter covers began at the
previous one: one calendar month (N months for "Nmo") before it for month budgets, else one
duration before it, counted in wall-clock days so a DST change does not move midnight.

Rule-file budgets have a period (day, week from Monday, month, or N days from an anchor date) in
their own timezone. Stored activity is by UTC day (that is all the proxy records), so such a window
is counted over the UTC days nearest its boundaries (``accounting_days``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Words LiteLLM accepts as budget_duration, as it maps them (litellm/litellm_core_utils/duration_parser).
_WORD_DURATIONS = {"hourly": "1h", "daily": "24h", "weekly": "7d", "monthly": "30d"}
_DURATION = re.compile(r"^(\d+)(mo|s|m|h|d|w)$")
_PERIOD = re.compile(r"^(?:(day|week|month)|(\d+)d)$")


@dataclass(frozen=True)
class Duration:
    """A parsed ``budget_duration``: count and unit (s, m, h, d, w, mo)."""

    count: int
    unit: str

    @property
    def is_monthly(self) -> bool:
        return self.unit == "mo" or (self.unit == "d" and self.count == 30)

    @property
    def months(self) -> int:
        return 1 if self.unit == "d" else self.count

    @property
    def wall_days(self) -> int | None:
        """Length in calendar days for day and week durations (None otherwise)."""
        if self.unit == "d" and not self.is_monthly:
            return self.count
        if self.unit == "w":
            return 7 * self.count
        return None

    @property
    def seconds(self) -> int | None:
        """Length in seconds for sub-day durations (None otherwise)."""
        return {"s": 1, "m": 60, "h": 3600}.get(self.unit, 0) * self.count or None


def parse_duration(text: str) -> Duration:
    """Parse a LiteLLM ``budget_duration`` ("30s", "5m", "1h", "1d", "7d", "2w", "30d", "1mo", "daily", ...)."""
    raw = text.strip().lower()
    match = _DURATION.match(_WORD_DURATIONS.get(raw, raw))
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"unsupported budget_duration {text!r} (expected <N>s|m|h|d|w|mo or hourly/daily/...)")
    return Duration(int(match.group(1)), match.group(2))


def _add_months(day: date, months: int) -> date:
    """The same day of the month ``months`` later (or earlier), clamped to the month's length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


def _wall(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant a wall clock in ``tz`` reads ``day at``, in UTC (the earlier one in a DST fold)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def proxy_window_start(duration: Duration, reset_at: datetime, tz: ZoneInfo | None = None) -> datetime:
    """Start of the proxy budget window that ends at ``reset_at`` (the previous reset)."""
    zone = tz or ZoneInfo("UTC")
    local = reset_at.astimezone(zone)
    if duration.is_monthly:
        # Month resets land on the 1st; the previous one was the 1st `months` months earlier.
        return _wall(_add_months(local.date(), -duration.months), local.time(), zone)
    days = duration.wall_days
    if days is not None:
        return _wall(local.date() - timedelta(days=days), local.time(), zone)
    return reset_at - timedelta(seconds=duration.seconds or 0)


def next_reset(duration: Duration, now: datetime, tz: ZoneInfo | None = None) -> datetime:
    """When LiteLLM's reset job will next zero a counter with this duration, set at ``now``."""
    zone = tz or ZoneInfo("UTC")
    local = now.astimezone(zone)
    today = local.date()
    if duration.is_monthly:
        first = today.replace(day=1)
        start = _wall(first, time(0), zone)
        return start if start > now else _wall(_add_months(first, duration.months), time(0), zone)
    days = duration.wall_days
    if days == 1:
        return _wall(today + timedelta(days=1), time(0), zone)
    if days == 7:
        return _wall(today + timedelta(days=7 - local.weekday()), time(0), zone)  # next Monday
    if days is not None:
        return _wall(today + timedelta(days=days), time(0), zone)
    # Sub-day durations align within the next larger unit of the local clock: hours of the day,
    # minutes of the hour, seconds of the minute; the reset is the next multiple of N after the current value.
    n = duration.count
    if duration.unit == "h":
        hour = local.hour + n - local.hour % n
        return _wall(today + timedelta(days=hour // 24), time(hour % 24), zone)
    top = local.replace(minute=0, second=0, microsecond=0) if duration.unit == "m" else local.replace(microsecond=0)
    if duration.unit == "m":
        return (top + timedelta(minutes=local.minute + n - local.minute % n)).astimezone(UTC)
    top = top.replace(second=0)
    return (top + timedelta(seconds=local.second + n - local.second % n)).astimezone(UTC)


# ---------------------------------------------------------------------------------------------- rule periods
@dataclass(frozen=True)
class Period:
    """A rule budget's period: "day", "week" (from Monday), "month", or every N days from ``anchor``."""

    kind: str  # day | week | month | days
    days: int = 1
    anchor: date = date(2024, 1, 1)  # a Monday; the first day of an N-day period

    @property
    def label(self) -> str:
        return f"{self.days}d" if self.kind == "days" else self.kind


def parse_period(text: str, anchor: date | None = None) -> Period:
    match = _PERIOD.match(text.strip().lower())
    if match is None:
        raise ValueError(f"unknown period {text!r} (expected day, week, month or <N>d)")
    if match.group(1):
        return Period(match.group(1))
    n = int(match.group(2))
    if n < 1 or n > 366:
        raise ValueError(f"period {text!r}: N must be between 1 and 366")
    return Period("days", n, anchor or Period.anchor)


def period_window(period: Period, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the period containing ``now``, as UTC instants of local midnights in ``tz``."""
    today = now.astimezone(tz).date()
    if period.kind == "day":
        first, last = today, today + timedelta(days=1)
    elif period.kind == "week":
        first = today - timedelta(days=today.weekday())
        last = first + timedelta(days=7)
    elif period.kind == "month":
        first = today.replace(day=1)
        last = _add_months(first, 1)
    else:
        offset = (today - period.anchor).days % period.days
        first = today - timedelta(days=offset)
        last = first + timedelta(days=period.days)
    return _wall(first, time(0), tz), _wall(last, time(0), tz)


def nearest_utc_day(moment: datetime) -> date:
    """The UTC date whose midnight is nearest ``moment`` (ties go to the later day)."""
    return (moment.astimezone(UTC) + timedelta(hours=12)).date()


def accounting_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days [first, last] whose daily activity is counted for the window [start, end)."""
    first, after = nearest_utc_day(start), nearest_utc_day(end)
    return first, max(first, after - timedelta(days=1))


def midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
