"""Shared helpers for tests that sync from the simulator over real HTTP."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from sentinel.config import SyncSettings
from sentinel.egress import proxy_client
from sentinel.models import METRIC_FIELDS, Grain
from sentinel.simulator import TrafficConfig, TrafficModel
from sentinel.source.litellm import LiteLLMClient
from sentinel.store import facts as fact_store
from sentinel.store import state as state_store
from sentinel.sync import policy_from

KEY = "sk-sentinel-test-master-7f3a9c"
TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
ALL_GRAINS = tuple(Grain)


def small_model(days: int = 20, users: int = 14, seed: int = 3, now: datetime = NOW) -> TrafficModel:
    return TrafficModel(TrafficConfig(seed=seed, users=users, teams=3, days=days, today=now.date(), now=now))


def make_client(
    url: str, db: sqlite_utils.Database, settings: SyncSettings, sleeps: list[float] | None = None
) -> LiteLLMClient:
    http = proxy_client(
        source="sim", base_url=url, api_key=KEY, audit=lambda r: state_store.record_audit(db, r), timeout_s=5
    )
    recorded = sleeps if sleeps is not None else []
    return LiteLLMClient("sim", http, policy_from(settings), sleep=recorded.append)


def truth_facts(
    model: TrafficModel, grain: Grain, start: date, end: date
) -> dict[tuple[str, str, str], tuple[float, ...]]:
    out: dict[tuple[str, str, str], tuple[float, ...]] = {}
    for (day, entity), metrics in model.truth(grain.value, start, end).items():
        detail = ""
        if grain is Grain.MODEL_KEY:
            entity, detail = entity.split("\x1f")
        out[(day, entity, detail)] = tuple(float(metrics[f]) for f in METRIC_FIELDS)
    return out


def assert_store_matches_truth(
    db: sqlite_utils.Database, model: TrafficModel, start: date, end: date, grains: tuple[Grain, ...] = ALL_GRAINS
) -> None:
    for grain in grains:
        stored = fact_store.facts_for(db, "sim", grain, start, end)
        truth = truth_facts(model, grain, start, end)
        assert set(stored) == set(truth), f"{grain}: entities differ: {sorted(set(stored) ^ set(truth))[:5]}"
        for key, metrics in truth.items():
            got = stored[key]
            assert got[0] == pytest.approx(metrics[0], abs=1e-6), (grain, key)
            assert got[1:] == metrics[1:], (grain, key)


def store_digest(db: sqlite_utils.Database) -> str:
    """A fingerprint of every stored fact and day (not fetch times), to prove re-syncs change nothing.

    Spend is rounded to $1e-9: the proxy sums each page's rows itself, so a date split over pages
    differently on a re-read carries partial sums that differ in the last bits of a double.
    """
    h = hashlib.sha256()
    for row in db.conn.execute("SELECT * FROM daily_facts ORDER BY source, grain, date, entity_id, detail_id"):
        h.update(repr((*row[:5], round(row[5], 9), *row[6:])).encode())
    for row in db.conn.execute("SELECT source, route, date, final, spend FROM days ORDER BY 1, 2, 3"):
        h.update(repr((*row[:4], round(row[4], 9))).encode())
    return h.hexdigest()


def raw_digest(db: sqlite_utils.Database) -> str:
    """Every stored bit of every fact."""
    h = hashlib.sha256()
    for row in db.conn.execute("SELECT * FROM daily_facts ORDER BY source, grain, date, entity_id, detail_id"):
        h.update(repr(row).encode())
    return h.hexdigest()


def since_for(days: int, today: date = TODAY) -> date:
    return today - timedelta(days=days - 1)


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sentinel.db"
