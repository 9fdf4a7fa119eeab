"""Backfill and poll against the simulator over real HTTP on 127.0.0.1, compared with its ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from simhelp import (
    KEY,
    NOW,
    TODAY,
    assert_store_matches_truth,
    db_path,
    make_client,
    raw_digest,
    since_for,
    small_model,
    store_digest,
)

from sentinel.config import SyncSettings
from sentinel.egress import PROXY_READ_PATHS
from sentinel.models import Grain
from sentinel.simulator import Faults, SimulatorServer
from sentinel.store import open_store
from sentinel.store import state as state_store
from sentinel.sync import backfill, poll


def test_paginated_backfill_with_dates_spanning_pages_matches_truth_and_resync_changes_nothing(tmp_path: Path) -> None:
    model = small_model(days=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(prefer_aggregated=False, page_size=7, backfill_chunk_days=6)
    server = SimulatorServer(model, api_key=KEY)
    with server.running() as url, make_client(url, db, settings) as client:
        result = backfill(db, client, settings, since_for(20), NOW)
        assert result.error is None and result.days == 20
        assert_store_matches_truth(db, model, since_for(20), TODAY)
        first = store_digest(db)
        # every date really spanned several pages
        pages = Counter(
            (r.query["start_date"], r.query["end_date"]) for r in server.access_log if r.path == "/user/daily/activity"
        )
        assert max(pages.values()) >= 3
        backfill(db, client, settings, since_for(20), NOW)
        poll(db, client, settings, NOW)
        assert store_digest(db) == first


def test_aggregated_route_is_preferred_and_exact(tmp_path: Path) -> None:
    model = small_model(days=30, users=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings()
    server = SimulatorServer(model, api_key=KEY)
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(30), NOW)
        first = raw_digest(db)
        poll(db, client, settings, NOW)
        backfill(db, client, settings, since_for(30), NOW)
    assert raw_digest(db) == first  # one exact answer per range: a re-read stores the very same bits
    assert_store_matches_truth(db, model, since_for(30), TODAY)
    paths = {r.path for r in server.access_log}
    assert "/user/daily/activity/aggregated" in paths and "/user/daily/activity" not in paths


def test_key_cap_on_aggregated_route_falls_back_to_complete_pages(tmp_path: Path) -> None:
    model = small_model(days=10, users=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(api_key_limit=3)
    server = SimulatorServer(model, api_key=KEY)
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(10), NOW)
    assert_store_matches_truth(db, model, since_for(10), TODAY)
    assert any(r.path == "/user/daily/activity" for r in server.access_log)


def test_proxy_without_aggregated_route_falls_back(tmp_path: Path) -> None:
    model = small_model(days=8)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(page_size=50)
    faults = Faults()
    faults.script.append((404, {"detail": "Not Found"}, {}))
    server = SimulatorServer(model, api_key=KEY, faults=faults)
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(8), NOW)
    assert_store_matches_truth(db, model, since_for(8), TODAY)


def test_today_growing_between_pages(tmp_path: Path) -> None:
    """Settled days are exact while today grows mid-scan; the next poll after it settles makes today exact too."""
    model = small_model(days=12)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(prefer_aggregated=False, page_size=5)
    faults = Faults()
    server = SimulatorServer(model, api_key=KEY, faults=faults)
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(12), NOW)
        faults.grow_today_per_request = timedelta(minutes=3)
        later = NOW + timedelta(hours=2)
        poll(db, client, settings, later)
        assert model.now > NOW  # today really grew while we read it
        assert_store_matches_truth(db, model, since_for(12), TODAY - timedelta(days=1))
        faults.grow_today_per_request = None
        poll(db, client, settings, model.now)
        assert_store_matches_truth(db, model, since_for(12), TODAY)


def test_yesterday_and_today_are_not_final_until_settled(tmp_path: Path) -> None:
    model = small_model(days=5)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings()
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(5), NOW.replace(hour=0, minute=30))
    from sentinel.store.facts import stored_days

    finals = dict(stored_days(db, "sim"))
    assert finals[TODAY.isoformat()] is False
    assert finals[(TODAY - timedelta(days=1)).isoformat()] is False  # ended only 30 minutes ago
    assert finals[(TODAY - timedelta(days=2)).isoformat()] is True


def test_full_sync_sends_only_allowlisted_gets_and_audits_each(tmp_path: Path) -> None:
    model = small_model(days=10)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(prefer_aggregated=False, page_size=20)
    server = SimulatorServer(model, api_key=KEY)
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(10), NOW)
        poll(db, client, settings, NOW)
    assert server.access_log, "nothing was requested"
    assert {r.method for r in server.access_log} == {"GET"}
    assert {r.path for r in server.access_log} <= PROXY_READ_PATHS
    audited = db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE method = 'GET' AND status = 200").fetchone()[0]
    assert audited == len(server.access_log)


def test_entities_and_budgets_are_stored(tmp_path: Path) -> None:
    model = small_model(days=10)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings()
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, settings) as client:
        poll(db, client, settings, NOW)
    teams = {r["team_id"]: r for r in db["teams"].rows_where("source = ?", ["sim"])}
    assert set(teams) == {t.team_id for t in model.teams}
    for team in model.teams:
        row = teams[team.team_id]
        assert row["alias"] == team.team_alias
        assert row["max_budget"] == team.max_budget
        assert row["spend"] is not None
    keys = {r["token"]: r for r in db["keys"].rows_where("source = ?", ["sim"])}
    assert {k.token for k in model.keys} <= set(keys)
    users = {r["user_id"] for r in db["users"].rows_where("source = ?", ["sim"])}
    assert {u.user_id for u in model.users} <= users


def test_poll_catches_up_a_gap_after_downtime(tmp_path: Path) -> None:
    model = small_model(days=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings()
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(20), NOW - timedelta(days=8))  # the daemon was down a week
        poll(db, client, settings, NOW)
    assert_store_matches_truth(db, model, since_for(20), TODAY - timedelta(days=1), grains=(Grain.TOTAL, Grain.USER))
    status = state_store.source_status(db, "sim")
    assert status.days_stored == 20 and status.last_day == TODAY.isoformat()


def test_poll_on_a_big_proxy_rereads_settled_days_only_when_their_totals_changed(tmp_path: Path) -> None:
    """More keys than api_key_limit: per-key detail needs pages, so unchanged settled days are only checked."""
    model = small_model(days=10, users=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(api_key_limit=3)
    server = SimulatorServer(model, api_key=KEY)
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    with server.running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, since_for(10), NOW)
        assert client.reads_keys_by_page
        server.clear_access_log()
        poll(db, client, settings, NOW)
        paged = {
            (r.query["start_date"], r.query["end_date"]) for r in server.access_log if r.path == "/user/daily/activity"
        }
        assert paged == {(TODAY.isoformat(), TODAY.isoformat())}  # only today, which still grows
        checks = [r for r in server.access_log if r.path == "/user/daily/activity/aggregated"]
        assert [r.query["api_key_limit"] for r in checks] == ["1"]
        assert_store_matches_truth(db, model, since_for(10), TODAY)

        # Our copy of yesterday is now stale (as after a late write on the proxy): the check sees it.
        db.conn.execute(
            "UPDATE daily_facts SET api_requests = api_requests - 1 WHERE grain = 'total' AND date = ?", (yesterday,)
        )
        victim = db.conn.execute(
            "SELECT entity_id FROM daily_facts WHERE grain = 'user' AND date = ? LIMIT 1", (yesterday,)
        ).fetchone()[0]
        db.conn.execute(
            "DELETE FROM daily_facts WHERE grain = 'user' AND date = ? AND entity_id = ?", (yesterday, victim)
        )
        server.clear_access_log()
        poll(db, client, settings, NOW)
        paged = {
            (r.query["start_date"], r.query["end_date"]) for r in server.access_log if r.path == "/user/daily/activity"
        }
        assert (yesterday, yesterday) in paged or (yesterday, TODAY.isoformat()) in paged
        assert_store_matches_truth(db, model, since_for(10), TODAY)


def test_a_fresh_process_remembers_what_the_proxy_serves(tmp_path: Path) -> None:
    """The timer runs each poll in a new process: it must not re-learn the key cap with a wasted call."""
    from sentinel.sync import sync_source

    model = small_model(days=10, users=20)
    db = open_store(db_path(tmp_path))
    settings = SyncSettings(api_key_limit=3)
    server = SimulatorServer(model, api_key=KEY)
    with server.running() as url:
        with make_client(url, db, settings) as first:
            assert sync_source(db, first, settings, NOW, since=since_for(10)).error is None
        server.clear_access_log()
        with make_client(url, db, settings) as second:  # a new process: nothing in memory
            assert not second.reads_keys_by_page
            assert sync_source(db, second, settings, NOW).error is None
            assert second.reads_keys_by_page
    limits = [r.query.get("api_key_limit") for r in server.access_log if r.path == "/user/daily/activity/aggregated"]
    assert limits == ["1"]  # only the cheap check of settled days, no truncated full answer
    assert_store_matches_truth(db, model, since_for(10), TODAY)
