"""`sentinel reconcile`: do the stored days still say what the proxy says now?

Days change after the fact (API.md §6: late flushes, dropped batches, a proxy-side backfill). This
reads a range of days again from the proxy, without storing it, and compares every stored counter
set (per grain, day and entity) with the proxy's current answer. :func:`compare` is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlite_utils

from sentinel.models import METRIC_FIELDS, TEAM_ROUTE_GRAINS, USER_ROUTE_GRAINS, DailyActivity, Grain
from sentinel.source.litellm import LiteLLMClient
from sentinel.store import facts as fact_store

Key = tuple[str, str, str]  # (date, entity, detail)
Metrics = tuple[float, ...]  # in METRIC_FIELDS order
_REQUESTS = METRIC_FIELDS.index("api_requests")
CHUNK_DAYS = 31  # one answer per month of days keeps each response small


@dataclass(frozen=True)
class Difference:
    date: str
    grain: str
    entity: str
    detail: str
    stored_usd: float | None  # None: not stored (the proxy has it now)
    proxy_usd: float | None  # None: the proxy no longer has it
    stored_requests: int | None
    proxy_requests: int | None

    @property
    def delta_usd(self) -> float:
        return (self.proxy_usd or 0.0) - (self.stored_usd or 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "date": self.date,
            "grain": self.grain,
            "entity": self.entity,
            "detail": self.detail,
            "stored_usd": self.stored_usd,
            "proxy_usd": self.proxy_usd,
            "delta_usd": round(self.delta_usd, 6),
            "stored_requests": self.stored_requests,
            "proxy_requests": self.proxy_requests,
        }


@dataclass
class Result:
    source: str
    start: date
    end: date
    days: int = 0
    rows_compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    def days_changed(self) -> list[str]:
        return sorted({d.date for d in self.differences})


def compare(
    grain: str, stored: Mapping[Key, Metrics], live: Mapping[Key, Metrics], tolerance_usd: float
) -> list[Difference]:
    """Counter sets that differ: spend by more than the tolerance, or any request count."""
    out = []
    for key in sorted(set(stored) | set(live)):
        before, now = stored.get(key), live.get(key)
        if before is not None and now is not None:
            same_spend = abs(before[0] - now[0]) <= tolerance_usd
            if same_spend and int(before[_REQUESTS]) == int(now[_REQUESTS]):
                continue
        elif (before or now) is not None and _empty(before or now):
            continue  # a zero row on one side only is no difference
        out.append(
            Difference(
                key[0],
                grain,
                key[1],
                key[2],
                None if before is None else round(before[0], 6),
                None if now is None else round(now[0], 6),
                None if before is None else int(before[_REQUESTS]),
                None if now is None else int(now[_REQUESTS]),
            )
        )
    return out


def _empty(metrics: Metrics | None) -> bool:
    return metrics is None or (abs(metrics[0]) < 1e-12 and int(metrics[_REQUESTS]) == 0)


def live_facts(activities: Iterable[DailyActivity], grain: Grain) -> dict[Key, Metrics]:
    out: dict[Key, Metrics] = {}
    for activity in activities:
        for f in activity.facts:
            if f.grain == grain:
                out[(f.date.isoformat(), f.entity_id, f.detail_id)] = tuple(float(x) for x in f.metrics)
    return out


def reconcile(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    start: date,
    end: date,
    *,
    grains: Iterable[Grain] = (*USER_ROUTE_GRAINS, *TEAM_ROUTE_GRAINS),
    tolerance_usd: float = 0.01,
) -> Result:
    """Compare start..end (inclusive) of one source; the proxy's answers pass the same privacy
    transform as a sync, so pseudonymized stores compare like for like."""
    result = Result(client.name, start, end, (end - start).days + 1)
    wanted = list(grains)
    user_grains = [g for g in wanted if g in USER_ROUTE_GRAINS]
    team_grains = [g for g in wanted if g in TEAM_ROUTE_GRAINS]
    user_reads: list[DailyActivity] = []
    team_reads: list[DailyActivity] = []
    day = start
    while day <= end:
        last = min(end, day + timedelta(days=CHUNK_DAYS - 1))
        if user_grains:
            user_reads.append(client.privacy.activity(client.daily_activity("user", day, last)))
        if team_grains:
            team_reads.append(client.privacy.activity(client.daily_activity("team", day, last)))
        day = last + timedelta(days=1)
    for grain in wanted:
        stored = fact_store.facts_for(db, client.name, grain, start, end)
        live = live_facts(user_reads if grain in USER_ROUTE_GRAINS else team_reads, grain)
        result.rows_compared += len(set(stored) | set(live))
        result.differences += compare(grain.value, stored, live, tolerance_usd)
    result.differences.sort(key=lambda d: (d.date, d.grain, -abs(d.delta_usd), d.entity, d.detail))
    return result


def day_runs(days: Iterable[str]) -> list[tuple[date, date]]:
    """Consecutive runs of days (to read again with ``--fix``)."""
    runs: list[tuple[date, date]] = []
    for day in sorted({date.fromisoformat(d) for d in days}):
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
