"""Each error class from a LiteLLM proxy: right behaviour, clear message, nothing half-written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from simhelp import (
    KEY,
    NOW,
    TODAY,
    assert_store_matches_truth,
    db_path,
    make_client,
    since_for,
    small_model,
    store_digest,
)

from sentinel.config import SyncSettings
from sentinel.errors import (
    AuthenticationFailed,
    MalformedResponse,
    PermissionDenied,
    ProxyHasNoDatabase,
    ProxyUnavailable,
    RequestRejected,
)
from sentinel.simulator import Faults, SimulatorServer
from sentinel.store import open_store
from sentinel.store import state as state_store
from sentinel.sync import backfill, poll, sync_source

FAST = SyncSettings(retry_initial_s=0.01, retry_max_s=0.05, max_attempts=4)


def synced(tmp_path: Path, faults: Faults, settings: SyncSettings = FAST):  # type: ignore[no-untyped-def]
    model = small_model(days=6)
    db = open_store(db_path(tmp_path))
    server = SimulatorServer(model, api_key=KEY, faults=faults)
    return model, db, server


A_401 = {
    "error": {
        "message": "Authentication Error, Invalid API key provided.",
        "type": "token_not_found_in_db",
        "param": "key",
        "code": "401",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "error", "needle"),
    [
        (401, A_401, AuthenticationFailed, "authentication failed"),
        (
            403,
            {"detail": {"error": "Non-admin users can only view their own spend data."}},
            PermissionDenied,
            "proxy_admin_viewer",
        ),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["query", "page_size"],
                        "msg": "Input should be less than or equal to 1000",
                        "type": "less_than_equal",
                    }
                ]
            },
            RequestRejected,
            "query.page_size",
        ),
        (400, {"detail": {"error": "Please provide start_date and end_date"}}, RequestRejected, "start_date"),
    ],
)
def test_operator_errors_are_not_retried(
    tmp_path: Path, status: int, body: dict[str, object], error: type[Exception], needle: str
) -> None:
    faults = Faults()
    faults.script.append((status, body, {}))
    _model, db, server = synced(tmp_path, faults)
    sleeps: list[float] = []
    with server.running() as url, make_client(url, db, FAST, sleeps) as client, pytest.raises(error) as info:
        backfill(db, client, FAST, since_for(6), NOW)
    assert needle in str(info.value)
    assert f"-> {status}" in str(info.value) and "'sim'" in str(info.value)
    assert sleeps == [] and len(server.access_log) == 1  # no retry
    assert db.conn.execute("SELECT COUNT(*) FROM daily_facts").fetchone()[0] == 0


def test_unknown_key_is_an_authentication_error(tmp_path: Path) -> None:
    model, db, _server = synced(tmp_path, Faults())
    server_other = SimulatorServer(model, api_key="sk-some-other-key-123456")
    with server_other.running() as url, make_client(url, db, FAST) as client, pytest.raises(AuthenticationFailed):
        poll(db, client, FAST, NOW)


def test_proxy_without_database_is_fatal_and_clear(tmp_path: Path) -> None:
    faults = Faults()
    faults.db_connected = False
    _model, db, server = synced(tmp_path, faults)
    sleeps: list[float] = []
    with server.running() as url, make_client(url, db, FAST, sleeps) as client:
        result = sync_source(db, client, FAST, NOW)
    assert result.error and "no database connected" in result.error and "DATABASE_URL" in result.error
    assert sleeps == []
    state = state_store.get_state(db, "sim")
    assert state.last_error == result.error and state.last_success_at is None
    with pytest.raises(ProxyHasNoDatabase):
        raise ProxyHasNoDatabase("x")


def test_server_errors_are_retried_then_succeed(tmp_path: Path) -> None:
    faults = Faults()
    faults.script.extend([(500, {"detail": {"error": "Failed to fetch analytics: boom"}}, {}), (502, {}, {})])
    model, db, server = synced(tmp_path, faults)
    sleeps: list[float] = []
    with server.running() as url, make_client(url, db, FAST, sleeps) as client:
        backfill(db, client, FAST, since_for(6), NOW)
        assert client.stats.retries == 2
    assert len(sleeps) == 2 and all(0 < s <= 0.06 for s in sleeps)
    assert_store_matches_truth(db, model, since_for(6), TODAY)


def test_429_honours_retry_after(tmp_path: Path) -> None:
    faults = Faults()
    faults.script.append(
        (429, {"error": {"message": "rate limited", "type": "throttling", "code": "429"}}, {"Retry-After": "2"})
    )
    model, db, server = synced(tmp_path, faults)
    sleeps: list[float] = []
    with server.running() as url, make_client(url, db, FAST, sleeps) as client:
        backfill(db, client, FAST, since_for(6), NOW)
    assert sleeps and sleeps[0] >= 2.0
    assert_store_matches_truth(db, model, since_for(6), TODAY)


def test_timeout_then_success(tmp_path: Path) -> None:
    faults = Faults()
    faults.latency_s = 2.0
    model, db, server = synced(tmp_path, faults)
    sleeps: list[float] = []

    def back_to_normal(seconds: float) -> None:
        sleeps.append(seconds)
        faults.latency_s = 0.0

    settings = FAST
    with server.running() as url, make_client(url, db, settings) as client:
        client._sleep = back_to_normal  # the proxy recovers while we back off
        client._http.timeout = __import__("httpx").Timeout(0.5)
        backfill(db, client, settings, since_for(6), NOW)
    assert len(sleeps) == 1
    assert db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE outcome = 'ReadTimeout'").fetchone()[0] == 1
    assert_store_matches_truth(db, model, since_for(6), TODAY)


def test_timeouts_exhausted_become_proxy_unavailable(tmp_path: Path) -> None:
    faults = Faults()
    faults.latency_s = 1.0
    _model, db, server = synced(tmp_path, faults)
    with (
        server.running() as url,
        make_client(url, db, FAST) as client,
        pytest.raises(ProxyUnavailable, match="timed out"),
    ):
        client._http.timeout = __import__("httpx").Timeout(0.2)
        poll(db, client, FAST, NOW)
    assert db.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == FAST.max_attempts


def test_malformed_json_is_retried_and_leaves_the_store_untouched(tmp_path: Path) -> None:
    faults = Faults()
    model, db, server = synced(tmp_path, faults)
    with server.running() as url, make_client(url, db, FAST) as client:
        backfill(db, client, FAST, since_for(6), NOW)
        before = store_digest(db)
        faults.malformed_rate = 1.0
        model.advance(NOW + timedelta(hours=1))  # today changed, but we cannot read it
        result = sync_source(db, client, FAST, NOW + timedelta(hours=1))
    assert result.error and "not the expected JSON" in result.error and "truncated" in result.error
    assert store_digest(db) == before
    with pytest.raises(MalformedResponse):
        raise MalformedResponse("x")


def test_failure_mid_backfill_keeps_whole_chunks_only(tmp_path: Path) -> None:
    """The proxy breaks after the first chunk: chunk one is stored whole, the rest not at all."""
    faults = Faults()
    model, db, server = synced(tmp_path, faults)
    settings = SyncSettings(backfill_chunk_days=3, max_chunk_days=3, max_attempts=1)

    def break_proxy(done: int, total: int, chunk: int, seconds: float) -> None:
        faults.error_rate = 1.0

    with server.running() as url, make_client(url, db, settings) as client:
        result = sync_source(db, client, settings, NOW, since=since_for(6), progress=break_proxy)
    assert result.error
    days = {r[0] for r in db.conn.execute("SELECT DISTINCT date FROM daily_facts")}
    assert days == {(since_for(6) + timedelta(days=i)).isoformat() for i in range(3)}
    assert_store_matches_truth(db, model, since_for(6), since_for(6) + timedelta(days=2))
    state = state_store.get_state(db, "sim")
    assert state.backfill_cursor == (since_for(6) + timedelta(days=2)).isoformat()
    assert state.backfill_done_at is None and state.last_error == result.error
