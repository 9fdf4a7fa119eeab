"""Cost of the data-quality work on a big proxy: the per-tick checks, doctor, reconcile and purge.

Simulates 2,000 users over 400 days (13 months of retention and more), syncs it over HTTP into a
fresh store, then times: ``quality.assess`` (what every evaluation adds), ``doctor.diagnose``
against the simulator (the on-demand check, HTTP included), ``reconcile`` of 31 days, and a dry
run and a real run of the retention policy's purge (13 months of facts kept).

    .venv/bin/python benchmarks/quality.py [--users 2000] [--days 400]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _simsync import _KEY, _KEY_ENV, big_proxy

from sentinel import doctor, quality
from sentinel.config import QualitySettings, RetentionSettings, SourceSettings, SyncSettings
from sentinel.reconcile import reconcile
from sentinel.simulator import SimulatorServer
from sentinel.store import retention
from sentinel.sync import open_client

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def _timed(label: str, work: object) -> object:
    began = time.perf_counter()
    result = work()  # type: ignore[operator]
    print(f"{label:<42} {1000 * (time.perf_counter() - began):9.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, db = big_proxy(args.users, args.days, NOW, Path(tmp) / "s.db")

        settings = QualitySettings()
        for n in range(3):
            _timed(f"quality.assess (tick {n + 1})", lambda: quality.assess(db, settings, NOW))

        with SimulatorServer(model, api_key=_KEY).running() as url:
            source = SourceSettings(name="sim", url=url, api_key_env=_KEY_ENV)
            with open_client(source, SyncSettings(), db, environ={_KEY_ENV: _KEY}) as client:
                report = _timed("doctor.diagnose (11 checks, HTTP)", lambda: doctor.diagnose(client, url, settings))
                calls0 = client.stats.calls
                _timed(
                    "reconcile 31 days (HTTP + compare)",
                    lambda: reconcile(db, client, NOW.date() - timedelta(days=31), NOW.date() - timedelta(days=1)),
                )
                print(f"  reconcile used {client.stats.calls - calls0} calls")
        print("  doctor verdicts:", ", ".join(f"{c.name}={c.verdict}" for c in report.checks))  # type: ignore[attr-defined]

        policy = RetentionSettings()
        planned = _timed("purge policy, dry run", lambda: retention.purge_policy(db, NOW, policy, dry_run=True))
        done = _timed("purge policy", lambda: retention.purge_policy(db, NOW, policy, dry_run=False))
        print(f"  planned {planned}")
        print(f"  deleted {done}")
        after = db.conn.execute("SELECT MIN(date), COUNT(*) FROM daily_facts").fetchone()
        print(f"  facts left: {after[1]:,} rows from {after[0]}")


if __name__ == "__main__":
    main()
