"""Detection as of now: fits stored as JSON and reused by each tick; a same-day runaway is caught."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from simhelp import KEY, NOW, TODAY, make_client, since_for, small_model

from sentinel.config import SyncSettings
from sentinel.detect.engine import detect_now
from sentinel.simulator import SimulatorServer
from sentinel.store import open_store
from sentinel.sync import backfill, poll


def synced_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    model = small_model(days=70, users=30, seed=9)
    store = open_store(tmp_path / "s.db")
    settings = SyncSettings()
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, store, settings) as client:
        backfill(store, client, settings, since_for(70), NOW)
        # a few polls during today so the intraday profile has something (it falls back to uniform)
        for hours in (1, 2):
            poll(store, client, settings, NOW + timedelta(hours=hours))
    return model, store


def test_fits_are_stored_as_json_and_reused_within_the_day(tmp_path: Path) -> None:
    _model, store = synced_store(tmp_path)
    detect_now(store, NOW)
    rows = store.conn.execute("SELECT kind, as_of, fitted_at, params FROM baselines ORDER BY kind").fetchall()
    assert [r[0] for r in rows] == ["key", "model", "provider", "team", "user"]
    assert all(r[1] == TODAY.isoformat() and r[2] == NOW.isoformat() for r in rows)
    doc = json.loads(rows[-1][3])
    some = next(iter(doc["series"].values()))
    assert set(some) == {
        "method",
        "level",
        "slope",
        "weekday",
        "scale",
        "active_rate",
        "history_days",
        "weekday_active",
        "active_level",
        "active_log_scale",
    }
    detect_now(store, NOW + timedelta(minutes=15))  # the next tick reuses the day's fits
    again = store.conn.execute("SELECT fitted_at FROM baselines").fetchall()
    assert {r[0] for r in again} == {NOW.isoformat()}


def test_a_runaway_today_is_caught_the_same_day(tmp_path: Path) -> None:
    _model, store = synced_store(tmp_path)
    user = store.conn.execute(
        "SELECT entity_id FROM daily_facts WHERE grain = 'user' AND date = ? ORDER BY spend DESC LIMIT 1",
        ((TODAY - timedelta(days=1)).isoformat(),),
    ).fetchone()[0]
    before = [r for r in detect_now(store, NOW, lookback_days=1) if r.get("partial_day")]
    assert not [r for r in before if r["entity_id"] == user]
    # A job starts burning: by 15:30 the user has spent 10x a whole normal day.
    normal = store.conn.execute(
        "SELECT AVG(spend) FROM daily_facts WHERE grain = 'user' AND entity_id = ? AND date < ?",
        (user, TODAY.isoformat()),
    ).fetchone()[0]
    store.conn.execute(
        "UPDATE daily_facts SET spend = ? WHERE grain = 'user' AND entity_id = ? AND date = ?",
        (10 * normal, user, TODAY.isoformat()),
    )
    after = [r for r in detect_now(store, NOW, lookback_days=1) if r.get("partial_day")]
    hits = [r for r in after if r["entity_id"] == user]
    assert hits, "a user at 10x a whole day by mid-afternoon was not flagged"
    (hit,) = hits
    assert hit["direction"] == "up" and 0.1 < hit["share_of_day"] < 1
    assert hit["detected_at"] == NOW.isoformat() and hit["date"] == TODAY.isoformat()


def test_daily_series_are_zero_filled_and_mark_today_partial(tmp_path: Path) -> None:
    from sentinel.detect.series import daily_series

    _model, store = synced_store(tmp_path)
    frame = daily_series(store, "user", since_for(70), TODAY)
    users = frame.get_column("entity_id").n_unique()
    assert frame.height == users * 70  # every user has every day, zeros included
    assert frame.filter(frame["partial"]).get_column("date").unique().to_list() == [TODAY]
    stored = store.conn.execute("SELECT COUNT(*) FROM daily_facts WHERE grain = 'user'").fetchone()[0]
    assert frame.filter(frame["spend"] > 0).height <= stored < frame.height
    total = store.conn.execute("SELECT SUM(spend) FROM daily_facts WHERE grain = 'user'").fetchone()[0]
    assert abs(frame.get_column("spend").sum() - total) < 1e-6
