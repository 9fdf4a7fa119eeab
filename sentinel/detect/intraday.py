"""How much of a normal day's spend has happened by a given time of day (UTC).

Learnt from the successive polls the store keeps of today's running total: for every past day
with several snapshots, each snapshot's share of that day's final total, by hour; the median
share per hour across days is the profile (made monotone). Without enough polls the profile is
the elapsed fraction of the day, which is honest but slower to react in quiet hours.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import numpy as np

MIN_DAYS = 3


def uniform_share(now: datetime) -> float:
    seconds = now.hour * 3600 + now.minute * 60 + now.second
    return seconds / 86400


def learn_profile(snapshots: list[tuple[str, datetime, float]], finals: dict[str, float]) -> list[float] | None:
    """Cumulative share of a day's spend at the end of each UTC hour (24 values), or None.

    ``snapshots``: (date, taken_at, running total); ``finals``: date -> final total.
    """
    by_hour: dict[int, list[float]] = defaultdict(list)
    days = set()
    for day, at, running in snapshots:
        final = finals.get(day)
        if not final or final <= 0 or at.date().isoformat() != day:
            continue
        days.add(day)
        hour_frac = (at.hour * 3600 + at.minute * 60 + at.second) / 3600
        by_hour[int(hour_frac)].append(min(running / final, 1.0))
    if len(days) < MIN_DAYS:
        return None
    profile = []
    last = 0.0
    for hour in range(24):
        values = by_hour.get(hour)
        share = float(np.median(values)) if values else (hour + 1) / 24
        last = max(last, share)
        profile.append(last)
    profile[-1] = 1.0
    return profile


def share_at(profile: list[float] | None, now: datetime) -> float:
    """Expected share of the day's spend by ``now`` (interpolated within the hour)."""
    if profile is None:
        return uniform_share(now)
    hour = now.hour
    before = profile[hour - 1] if hour > 0 else 0.0
    within = (now.minute * 60 + now.second) / 3600
    return before + (profile[hour] - before) * within
