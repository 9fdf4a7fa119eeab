"""Alerting cycle speed on a big proxy: every example rule over 2,000 users, per tick.

Simulates 2,000 users over 90 days, syncs it over HTTP into a fresh store, then times what the daemon
does on each tick after the poll: ``alerting.evaluate`` (anomaly rules at their sensitivities,
budgets, thresholds, absences), ``alerting.commit`` (lifecycle, routing, one transaction) and
``deliver`` (to a JSON lines file), on the first tick and on a steady one 15 minutes later. Then it
queues 5,000 alerts in 5,000 groups and times one delivery pass over them.

    .venv/bin/python benchmarks/alerting.py [--users 2000] [--days 90]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _simsync import sync_simulator

from sentinel.alerting import Evaluation, Routing, commit, evaluate
from sentinel.config import FileReceiver, RouteSettings, Settings
from sentinel.notify.model import Alert
from sentinel.notify.pipeline import deliver
from sentinel.notify.receivers import build_all
from sentinel.rules.loader import load
from sentinel.simulator import TrafficConfig, TrafficModel

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
RULES = Path(__file__).resolve().parents[1] / "rules"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--queued", type=int, default=5000)
    args = parser.parse_args()
    model = TrafficModel(
        TrafficConfig(seed=7, users=args.users, teams=max(3, args.users // 20), days=args.days, now=NOW)
    )
    rules = load(RULES)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.monotonic()
        db = sync_simulator(model, Path(tmp) / "s.db", NOW.date() - timedelta(days=args.days - 1), NOW)
        print(f"{args.users} users x {args.days} days synced in {time.monotonic() - began:.1f}s; {len(rules)} rules")
        settings = Settings(
            receivers=(FileReceiver(type="jsonl", name="file", path=Path(tmp) / "alerts.jsonl"),),
            route=RouteSettings(receiver="file", group_by=("rule",), group_wait="0s"),
        )
        routing = Routing.from_settings(settings)
        receivers = build_all(settings.receivers, lambda _r: None)
        for label, moment in (("first tick", NOW), ("next tick", NOW + timedelta(minutes=15))):
            began = time.monotonic()
            found = evaluate(db, settings, rules, moment)
            evaluated = time.monotonic() - began
            began = time.monotonic()
            report = commit(db, found, routing, moment)
            committed = time.monotonic() - began
            began = time.monotonic()
            sent = deliver(db, receivers, settings.delivery, routing.inhibit, moment)
            delivered = time.monotonic() - began
            print(
                f"{label}: evaluate {evaluated:.2f}s ({len(found.found)} found, {len(found.errors)} errors), "
                f"commit {committed * 1000:.0f} ms ({report.queued} queued), "
                f"deliver {delivered * 1000:.0f} ms ({sent.alerts_sent} notices in {sent.sent} messages)"
            )
        # A backlog: a receiver was down while thousands of alerts queued, one group each.
        many = Settings(
            receivers=settings.receivers,
            route=RouteSettings(receiver="file", group_by=("entity_id",), group_wait="0s"),
        )
        at = NOW + timedelta(hours=1)
        made = [
            Alert(
                fingerprint=f"bench-{i}",
                status="firing",
                rule="bench",
                severity="warning",
                summary=f"user {i} is spending",
                labels={"rule": "bench", "kind": "anomaly", "entity_type": "user", "entity_id": f"u{i}"},
                starts_at=at,
            )
            for i in range(args.queued)
        ]
        began = time.monotonic()
        report = commit(db, Evaluation(), Routing.from_settings(many), at, extra=made)
        committed = time.monotonic() - began
        began = time.monotonic()
        sent = deliver(db, receivers, many.delivery, routing.inhibit, at)
        delivered = time.monotonic() - began
        print(
            f"backlog of {args.queued}: commit {committed:.2f}s ({report.queued} queued), one delivery pass "
            f"{delivered:.2f}s ({sent.sent} messages, {sent.sent / delivered:.0f}/s)"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (simulator included)")


if __name__ == "__main__":
    main()
