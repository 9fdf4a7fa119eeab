"""Sync a simulated proxy over real HTTP into a store (shared by the benchmarks that need a store)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlite_utils

from sentinel.config import SourceSettings, SyncSettings
from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import open_store
from sentinel.sync import backfill, open_client

_KEY_ENV, _KEY = "SENTINEL_BENCH_KEY", "sk-bench-simulator"


def sync_simulator(
    model: TrafficModel, path: Path, since: date, now: datetime, settings: SyncSettings | None = None
) -> sqlite_utils.Database:
    """Serve ``model`` on 127.0.0.1, backfill ``since``..``now`` into a fresh store at ``path``, return it."""
    db = open_store(path)
    sync = settings or SyncSettings()
    with SimulatorServer(model, api_key=_KEY).running() as url:
        source = SourceSettings(name="sim", url=url, api_key_env=_KEY_ENV)
        with open_client(source, sync, db, environ={_KEY_ENV: _KEY}) as client:
            result = backfill(db, client, sync, since, now)
    if result.error:
        raise SystemExit(f"sync failed: {result.error}")
    return db


def big_proxy(users: int, days: int, now: datetime, path: Path) -> tuple[TrafficModel, sqlite_utils.Database]:
    """The benchmarks' standard proxy (seed 7, a team per 20 users) with ``days`` up to ``now``
    synced into a fresh store at ``path``; prints how long the sync took."""
    model = TrafficModel(TrafficConfig(seed=7, users=users, teams=max(3, users // 20), days=days, now=now))
    began = time.monotonic()
    db = sync_simulator(model, path, now.date() - timedelta(days=days - 1), now)
    rows = db.conn.execute("SELECT COUNT(*) FROM daily_facts").fetchone()[0]
    print(f"{users} users x {days} days synced in {time.monotonic() - began:.1f}s ({rows:,} fact rows)")
    return model, db
