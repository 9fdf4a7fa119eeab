"""When the digest is due: a cron expression in a timezone, as pure functions of ``now``.

Cron matching is ``cronsim`` (the parser healthchecks.io runs), not a hand-written one. For an
expression at a fixed minute and hour ("0 9 * * 1") it follows Debian cron across daylight-saving
changes: a time that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) runs at
the first moment after the gap, and a time that happens twice (01:30 when clocks fall back) runs
once, at its first occurrence.

A digest covers the period of its scheduled time: the 7 whole UTC days before the UTC day of that
time. The scheduled time, in UTC, names the period (the ``digests`` table's ``period``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from sentinel.config import DigestSettings
from sentinel.errors import ConfigError

PERIOD_DAYS = 7


@dataclass(frozen=True)
class Schedule:
    cron: str
    zone: ZoneInfo

    @property
    def timezone(self) -> str:
        return self.zone.key


def parse(cron: str, timezone: str = "UTC") -> Schedule:
    """A checked schedule; a bad expression or zone is a ConfigError naming ``digest.schedule``."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"digest.timezone: unknown timezone {timezone!r}") from None
    if len(cron.split()) != 5:
        raise ConfigError(f"digest.schedule: {cron!r} is not a cron expression of five fields")
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise ConfigError(f"digest.schedule: {cron!r} is not a valid cron expression ({exc})") from None
    return Schedule(cron, zone)


def from_settings(settings: DigestSettings) -> Schedule:
    return parse(settings.schedule, settings.timezone)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule math needs an aware datetime")
    return moment.astimezone(UTC)


def last_due(schedule: Schedule, now: datetime) -> datetime:
    """The latest scheduled moment at or before ``now`` (UTC, whole seconds)."""
    local = _utc(now).replace(microsecond=0).astimezone(schedule.zone)
    try:
        found = next(CronSim(schedule.cron, local + timedelta(seconds=1), reverse=True))
    except StopIteration:
        raise ConfigError(f"digest.schedule: {schedule.cron!r} never matched in the last 50 years") from None
    return found.astimezone(UTC)


def next_due(schedule: Schedule, now: datetime) -> datetime:
    """The earliest scheduled moment after ``now`` (UTC)."""
    local = _utc(now).replace(microsecond=0).astimezone(schedule.zone)
    try:
        found = next(CronSim(schedule.cron, local))
    except StopIteration:
        raise ConfigError(f"digest.schedule: {schedule.cron!r} never matches in the next 50 years") from None
    return found.astimezone(UTC)


def period_of(due_at: datetime) -> tuple[date, date]:
    """(first, last) UTC day covered by the digest scheduled at ``due_at``: the 7 days before its UTC day."""
    end = _utc(due_at).date() - timedelta(days=1)
    return end - timedelta(days=PERIOD_DAYS - 1), end


def period_key(due_at: datetime) -> str:
    """The ``digests.period`` of a scheduled time: ISO-8601 in UTC, e.g. 2026-11-23T09:00:00+00:00."""
    return _utc(due_at).replace(microsecond=0).isoformat()
