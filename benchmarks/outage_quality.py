"""How well the logging-outage check works: false alarms on normal traffic, and time to detect.

For each seed, a simulated proxy (its own users, traffic shape and weekly pattern) is polled every
30 simulated minutes, exactly as the daemon polls (sync over HTTP, then ``quality.assess``):
``--normal-days`` of normal traffic, then its logging stops at a random time of day and polling goes
on for a day. Reported: outage alerts raised on normal traffic (false alarms, and per polled day),
outages detected, and the delay from the stop to the first alert.

    .venv/bin/python benchmarks/outage_quality.py [--seeds 12] [--normal-days 8] [--users 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils
from _simsync import _KEY, _KEY_ENV

from sentinel import quality
from sentinel.config import QualitySettings, SourceSettings, SyncSettings
from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import open_store
from sentinel.sync import open_client, sync_source

START = datetime(2026, 9, 7, 0, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=30)


def naive_quiet(db: sqlite_utils.Database, now: datetime) -> bool:
    """The naive rule, for comparison: the running total has not grown for outage_after (2 h)."""
    today = now.date()
    snaps = quality._snapshots(db, "sim", today - timedelta(days=quality.QUIET_LOOKBACK_DAYS))
    requests = quality._day_requests(db, "sim", today - timedelta(days=quality.QUIET_LOOKBACK_DAYS), today)
    since = quality.quiet_since(requests, snaps, today)
    return since is not None and now - since >= timedelta(hours=2)


def run_seed(seed: int, normal_days: int, users: int, tmp: Path) -> tuple[int, float | None, int, int]:
    """(false alarms, detection delay in hours or None, polls on normal traffic, naive false alarms)."""
    rng = random.Random(seed)
    model = TrafficModel(TrafficConfig(seed=seed, users=users, teams=4, days=45, now=START))
    db = open_store(tmp / f"s{seed}.db")
    settings = QualitySettings()
    sync = SyncSettings()
    stop = START + timedelta(days=normal_days, hours=rng.uniform(0, 24))
    false_alarms, first_alert, polls, naive = 0, None, 0, 0
    with SimulatorServer(model, api_key=_KEY).running() as url:
        source = SourceSettings(name="sim", url=url, api_key_env=_KEY_ENV)
        with open_client(source, sync, db, environ={_KEY_ENV: _KEY}) as client:
            sync_source(db, client, sync, START, since=START.date() - timedelta(days=44))
            now = START
            stopped = False
            while now < stop + timedelta(days=1):
                now += STEP
                if not stopped and now >= stop:
                    model.stop_logging(stop)
                    stopped = True
                model.advance(now)
                sync_source(db, client, sync, now)
                alerts = [a for a in quality.assess(db, settings, now).alerts if a.labels.get("check") == "outage"]
                if now < stop:
                    polls += 1
                    false_alarms += bool(alerts)
                    naive += naive_quiet(db, now)
                elif alerts and first_alert is None:
                    first_alert = now
    delay = None if first_alert is None else (first_alert - stop).total_seconds() / 3600
    return false_alarms, delay, polls, naive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--normal-days", type=int, default=8)
    parser.add_argument("--users", type=int, default=40)
    args = parser.parse_args()
    began = time.monotonic()
    delays: list[float] = []
    false_total = polls_total = missed = naive_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            false_alarms, delay, polls, naive = run_seed(seed, args.normal_days, args.users, Path(tmp))
            false_total += false_alarms
            naive_total += naive
            polls_total += polls
            if delay is None:
                missed += 1
            else:
                delays.append(delay)
            shown = "missed" if delay is None else f"{delay:.1f} h"
            print(
                f"seed {seed:>3}: false alarms {false_alarms} in {polls} polls (naive rule: {naive}); "
                f"outage detected after {shown}"
            )
    days = polls_total * STEP.total_seconds() / 86400
    print(
        f"\n{args.seeds} proxies, {days:.0f} polled days of normal traffic: {false_total} false outage alerts "
        f"({false_total / days:.3f} per day); outages detected {len(delays)}/{args.seeds}"
    )
    rate = naive_total / days
    print(f"the naive rule (no growth for 2 h) raised {naive_total} on the same polls ({rate:.2f} per day)")
    if delays:
        print(
            f"delay from the stop to the alert: median {statistics.median(delays):.1f} h, "
            f"max {max(delays):.1f} h (outage_after = 2h, polls every 30 min)"
        )
    print(f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
