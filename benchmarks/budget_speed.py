"""Budget check speed on a big proxy: every team, user and key budget plus rule budgets, per tick.

Simulates 2,000 users over 90 days, syncs it over HTTP into a fresh store, then times what the daemon
does each tick: ``engine.statuses`` (every budget with its forecast) and ``engine.check`` (signals
due, drivers for those that fire, recorded in one transaction), first run and steady state.

    .venv/bin/python benchmarks/budget_speed.py [--users 2000] [--days 90]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _simsync import big_proxy

from sentinel.budget import engine
from sentinel.budget.specs import Policy
from sentinel.rules.loader import RuleSet
from sentinel.rules.schema import BudgetRule

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
RULES = RuleSet(
    (),
    (
        BudgetRule(name="user-daily", entity="user", amount_usd=25.0, period="day"),
        BudgetRule(name="model-monthly", entity="model", amount_usd=2000.0),
        BudgetRule(name="proxy-monthly", entity="total", amount_usd=100_000.0),
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _model, db = big_proxy(args.users, args.days, NOW, Path(tmp) / "s.db")
        for label, moment in (("first tick", NOW), ("next tick", NOW + timedelta(minutes=15))):
            began = time.monotonic()
            ctx = engine.context(db, moment)
            current = engine.statuses(db, moment, Policy(), RULES, ctx=ctx)
            evaluated = time.monotonic() - began
            began = time.monotonic()
            alerts = engine.check(db, current, moment, ctx)
            checked = time.monotonic() - began
            proxy = sum(1 for s in current if s.spec.origin == "proxy")
            print(
                f"{label}: {len(current)} budgets ({proxy} proxy, {len(current) - proxy} rule): "
                f"statuses {evaluated:.2f}s, check {checked:.2f}s, {len(alerts)} alerts"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB (simulator included)")


if __name__ == "__main__":
    main()
