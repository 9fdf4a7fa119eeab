"""Budget forecast quality: how early a breach is warned, and how often a warning is false.

Per seed: simulate a 60-user, 6-team proxy over 150 days ending 2026-11-30, sync it over HTTP into
a fresh SQLite store, and replay October and November day by day with ``sentinel.budget.engine.backtest``
(each day sees only activity up to its end). Budgets are labelled by construction: for every team,
user, provider and model that spent at least $5 in the month, and for the whole proxy, one monthly
rule budget per ratio r of the entity's actual spend that month (r < 1: it will be breached, on the
first day its cumulative spend reaches the amount; r >= 1: it never is, r = 1.05 being the near miss
that ends at 95 %).

A warning is the first forecast alert (P(breach before the reset) >= 0.8, Sentinel's default) issued at
the end of a day before the breach day. Lead time = breach day - that day. A false warning is any
forecast alert on a budget that is never breached. The same budgets are scored for LiteLLM's own
projection (API.md §8: spend so far / days elapsed x days in the window, warn once it exceeds the
limit), as the yardstick.

    .venv/bin/python benchmarks/budget_forecast.py [--seeds 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlite_utils
from _simsync import sync_simulator

from sentinel.budget import engine
from sentinel.budget.specs import Policy
from sentinel.detect.engine import DetectionData, load
from sentinel.rules.loader import RuleSet
from sentinel.rules.schema import BudgetRule, Selector
from sentinel.simulator import TrafficConfig, TrafficModel

NOW = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
USERS, TEAMS, HISTORY_DAYS = 60, 6, 150
MONTHS = (date(2026, 10, 1), date(2026, 11, 1))
RATIOS = (0.7, 0.85, 0.95, 1.05, 1.15, 1.5)
KINDS = ("team", "user", "provider", "model", "total")
MIN_MONTH_SPEND = 5.0


@dataclass(frozen=True)
class Budget:
    name: str
    kind: str
    entity: str
    month: date
    ratio: float
    amount: float
    breach_day: date | None  # first day the month's cumulative spend reaches the amount


@dataclass
class Bucket:
    budgets: int = 0
    warned: int = 0  # breached budgets warned before the breach day / never-breached budgets warned
    leads: list[int] = field(default_factory=list)


def sync_store(model: TrafficModel, path: Path) -> tuple[sqlite_utils.Database, DetectionData]:
    first = NOW.date() - timedelta(days=HISTORY_DAYS - 1)
    db = sync_simulator(model, path, first, NOW)
    return db, load(db, first, NOW.date())


def month_days(first: date) -> list[date]:
    return [first + timedelta(days=i) for i in range(monthrange(first.year, first.month)[1])]


def labelled_budgets(data: DetectionData, first: date) -> list[Budget]:
    days = month_days(first)
    out: list[Budget] = []
    for kind in KINDS:
        matrix = data.total if kind == "total" else data.spend[kind]
        lo, hi = matrix.index_of(days[0]), matrix.index_of(days[-1])
        for row, entity in enumerate(matrix.entities):
            daily = matrix.values[row, lo : hi + 1]
            final = float(daily.sum())
            if final < MIN_MONTH_SPEND:
                continue
            cumulative = np.cumsum(daily)
            for ratio in RATIOS:
                amount = final * ratio
                crossed = np.nonzero(cumulative >= amount)[0]
                breach = days[int(crossed[0])] if ratio < 1 and len(crossed) else None
                name = f"b{len(out)}-{first:%m}"
                out.append(Budget(name, kind, entity, first, ratio, amount, breach))
    return out


def rules_for(budgets: list[Budget]) -> RuleSet:
    rules = tuple(
        BudgetRule(
            name=b.name,
            entity=b.kind,  # type: ignore[arg-type]
            select=Selector() if b.kind == "total" else Selector(ids=(b.entity,)),
            amount_usd=b.amount,
            period="month",
            thresholds=(100.0,),
        )
        for b in budgets
    )
    return RuleSet((), rules)


def litellm_warning_day(data: DetectionData, b: Budget) -> date | None:
    """LiteLLM's projection: spend so far / days elapsed x days in the month > limit, at a day's end."""
    matrix = data.total if b.kind == "total" else data.spend[b.kind]
    row = matrix.entities.index(b.entity)
    days = month_days(b.month)
    spent = 0.0
    for n, day in enumerate(days, start=1):
        spent += float(matrix.values[row, matrix.index_of(day)])
        if spent >= b.amount:
            return None  # the breach itself; no advance warning any more
        if spent / n * len(days) > b.amount:
            return day
    return None


def score(budgets: list[Budget], warned_on: dict[str, date], buckets: dict[float, Bucket]) -> None:
    for b in budgets:
        bucket = buckets[b.ratio]
        bucket.budgets += 1
        day = warned_on.get(b.name)
        if b.breach_day is None:
            bucket.warned += day is not None
        elif day is not None and day < b.breach_day:
            bucket.warned += 1
            bucket.leads.append((b.breach_day - day).days)


def run_seed(seed: int, quick: bool) -> tuple[dict[float, Bucket], dict[float, Bucket], int, float]:
    model = TrafficModel(TrafficConfig(seed=seed, users=USERS, teams=TEAMS, days=HISTORY_DAYS, now=NOW))
    ours: dict[float, Bucket] = defaultdict(Bucket)
    theirs: dict[float, Bucket] = defaultdict(Bucket)
    n_budgets, replay_s = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        db, data = sync_store(model, Path(tmp) / "s.db")
        for first in MONTHS[-1:] if quick else MONTHS:
            budgets = labelled_budgets(data, first)
            n_budgets += len(budgets)
            began = time.monotonic()
            days = month_days(first)
            alerts = engine.backtest(db, days[0], days[-1], Policy(proxy_budgets=False), rules_for(budgets))
            replay_s += time.monotonic() - began
            warned_on: dict[str, date] = {}
            for a in alerts:
                rule = a["budget"]["rule"]  # type: ignore[index]
                if a["signal"] == "forecast" and rule not in warned_on:
                    warned_on[str(rule)] = date.fromisoformat(str(a["date"]))
            score(budgets, warned_on, ours)
            naive = {b.name: d for b in budgets if (d := litellm_warning_day(data, b)) is not None}
            score(budgets, naive, theirs)
    return ours, theirs, n_budgets, replay_s


def _q(values: list[int], q: float) -> str:
    if not values:
        return "-"
    return f"{float(np.quantile(values, q)):.1f}"


def print_table(title: str, buckets: dict[float, Bucket]) -> None:
    print(f"\n{title}")
    print(f"{'budget / actual':>16} {'budgets':>8} {'warned':>8} {'share':>7} {'lead p10':>9} {'median':>7} {'p90':>6}")
    for ratio in RATIOS:
        b = buckets[ratio]
        label = f"{ratio:.2f}" + (" breach" if ratio < 1 else " ok")
        share = f"{b.warned / b.budgets:.1%}" if b.budgets else "-"
        lead = (_q(b.leads, 0.1), _q(b.leads, 0.5), _q(b.leads, 0.9)) if ratio < 1 else ("", "", "")
        print(f"{label:>16} {b.budgets:>8} {b.warned:>8} {share:>7} {lead[0]:>9} {lead[1]:>7} {lead[2]:>6}")
    breached = [buckets[r] for r in RATIOS if r < 1]
    kept = [buckets[r] for r in RATIOS if r >= 1]
    recall = sum(b.warned for b in breached) / max(sum(b.budgets for b in breached), 1)
    false = sum(b.warned for b in kept) / max(sum(b.budgets for b in kept), 1)
    leads = [x for b in breached for x in b.leads]
    median = statistics.median(leads) if leads else float("nan")
    print(f"  breaches warned ahead: {recall:.1%}   median lead: {median:.1f} days   false warnings: {false:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="November only")
    args = parser.parse_args()
    began = time.monotonic()
    ours: dict[float, Bucket] = defaultdict(Bucket)
    theirs: dict[float, Bucket] = defaultdict(Bucket)
    total_budgets, replay = 0, 0.0
    for seed in range(1, args.seeds + 1):
        o, t, n, r = run_seed(seed, args.quick)
        total_budgets += n
        replay += r
        for ratio in RATIOS:
            for mine, got in ((ours, o), (theirs, t)):
                mine[ratio].budgets += got[ratio].budgets
                mine[ratio].warned += got[ratio].warned
                mine[ratio].leads += got[ratio].leads
    months = 1 if args.quick else len(MONTHS)
    print(
        f"{args.seeds} seeds x {months} month(s), {total_budgets} labelled budgets; "
        f"replay {replay:.1f}s, total {time.monotonic() - began:.0f}s"
    )
    print_table("Sentinel (seasonal forecast, warn at P(breach) >= 0.8)", ours)
    print_table("LiteLLM-style linear projection (spend so far / days elapsed x days in month)", theirs)


if __name__ == "__main__":
    main()
