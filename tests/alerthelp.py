"""Shared set-up for alerting tests: a store filled from daily series, settings with a webhook
receiver on a local server, and hand-made alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from sentinel.config import Settings
from sentinel.notify.model import Alert
from sentinel.rules import testing
from sentinel.rules.evaluate import fingerprint
from sentinel.store import open_store


def store_with_series(path: Path, series: list[dict[str, Any]], start: date, until: date) -> sqlite_utils.Database:
    db = open_store(path)
    spec = testing.TestFile(
        rule_files=("x",),
        start=start,
        series=tuple(testing.SeriesSpec(**s) for s in series),
        test=(testing.TestCase(name="x", at=datetime(2026, 1, 1, tzinfo=UTC)),),
    )
    testing.write_series(db, spec, until)
    db.conn.execute(
        "INSERT INTO sync_state (source, last_poll_at, last_success_at) VALUES (?, ?, ?)",
        (testing.SOURCE, f"{until}T23:00:00+00:00", f"{until}T23:00:00+00:00"),
    )
    return db


def webhook_settings(url: str, **route: Any) -> Settings:
    return Settings(
        receivers=({"type": "webhook", "name": "hook", "url": url, "timeout_s": 5},),
        route={"receiver": "hook", "group_wait": "0s", "group_interval": "1m", "repeat_interval": "4h", **route},
        delivery={"retry_initial": "1s", "retry_max": "5s", "lease": "1s"},
    )


def alert(name: str, at: datetime, **labels: str) -> Alert:
    full = {"rule": "made-up", "severity": "warning", "kind": "anomaly", "entity_type": "user", "entity_id": name}
    full.update(labels)
    return Alert(
        fingerprint=fingerprint("test", name, full["kind"]),
        status="firing",
        rule=full["rule"],
        severity=full["severity"],
        summary=f"{name} is spending",
        labels=full,
        starts_at=at,
        record={"kind": full["kind"], "entity_type": "user", "entity_id": name, "impact_usd": 12.5},
    )
