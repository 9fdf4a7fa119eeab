"""Sync a simulated proxy over real HTTP into a store (shared by the benchmarks that need a store)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import sqlite_utils

from sentinel.config import SourceSettings, SyncSettings
from sentinel.simulator import SimulatorServer, TrafficModel
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
