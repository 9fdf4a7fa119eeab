"""Metrics, the status document and the /metrics + /healthz server, over a real SQLite store and real
HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import prometheus_client
import pytest
import sqlite_utils
from alerthelp import alert, store_with_series
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from sentinel.clock import fixed
from sentinel.observe import (
    CONTENT_TYPE,
    HealthServer,
    metrics_text,
    read_state,
    status_doc,
    status_tables,
    write_state,
)
from sentinel.route.silences import new as new_silence
from sentinel.store import alerts as alert_store
from sentinel.store import open_store, transaction
from sentinel.store import outbox as outbox_store
from sentinel.store import silences as silence_store
from sentinel.store import state as state_store

START = date(2026, 1, 5)
UNTIL = START + timedelta(days=29)  # the store's source "test" last succeeded at UNTIL 23:00
NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
LAST_SUCCESS = datetime(2026, 2, 3, 23, 0, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _families(text: bytes) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text.decode())}


def _outbox_row(db: sqlite_utils.Database, n: int, state: str, created_at: datetime, receiver: str = "hook") -> None:
    db.conn.execute(
        "INSERT INTO outbox (receiver, group_key, group_labels, fingerprint, episode, notice, alert, created_at, "
        "not_before, state) VALUES (?, 'g', '{}', ?, ?, 'firing', '{}', ?, ?, ?)",
        (receiver, f"fp-{n}", created_at.isoformat(), created_at.isoformat(), created_at.isoformat(), state),
    )


@dataclass
class Filled:
    db: sqlite_utils.Database
    path: Path


def _fill(path: Path) -> sqlite_utils.Database:
    db = store_with_series(path, [{"entity": "user", "id": "alice", "values": "10x30"}], START, UNTIL)
    with transaction(db):
        # 30 user-route days of source "test" (28 final), plus team-route days that are not counted twice.
        for i in range(30):
            day = (START + timedelta(days=i)).isoformat()
            for route in ("user", "team"):
                db.conn.execute(
                    "INSERT INTO days (source, route, date, fetched_at, final, spend) VALUES ('test', ?, ?, ?, ?, 10)",
                    (route, day, NOW.isoformat(), int(i < 28)),
                )
        # Source "down": it worked two hours ago, its last poll failed.
        state_store.mark_success(db, "down", NOW - timedelta(hours=2))
        state_store.mark_error(db, "down", NOW - timedelta(hours=1), "ProxyUnavailable: 503 [upstream]")

        firing = [
            alert("alice", NOW),
            alert("bob", NOW),
            alert("carol", NOW, severity="critical"),
            alert("dave", NOW, kind="budget"),
        ]
        erin = alert("erin", NOW - timedelta(days=1), severity="critical")
        resolved = replace(erin, status="resolved", ends_at=NOW - timedelta(hours=3))
        alert_store.save(db, [*firing, resolved], NOW)

        _outbox_row(db, 1, "pending", NOW - timedelta(minutes=10))
        _outbox_row(db, 2, "pending", NOW - timedelta(minutes=5))
        _outbox_row(db, 3, "claimed", NOW - timedelta(minutes=20))
        for n in (4, 5, 6):
            _outbox_row(db, n, "sent", NOW - timedelta(hours=3))
        _outbox_row(db, 7, "failed", NOW - timedelta(hours=5), receiver="mail")

        for outcome, count, receiver in (("ok", 3, "hook"), ("retryable", 2, "hook"), ("permanent", 1, "mail")):
            for _ in range(count):
                outbox_store.record_attempt(db, receiver, "g", [1], NOW, outcome, "", 200, 12.0)

        for period, state, sent_at in (
            ("2026-01-26T09:00:00+00:00", "sent", "2026-01-26T09:00:05+00:00"),
            ("2026-02-02T09:00:00+00:00", "sent", "2026-02-02T09:00:07+00:00"),
            ("2026-02-09T09:00:00+00:00", "pending", None),
        ):
            db.conn.execute(
                "INSERT INTO digests (period, audience, receiver, state, created_at, sent_at) "
                "VALUES (?, 'all', 'hook', ?, ?, ?)",
                (period, state, period, sent_at),
            )
    silence_store.add(
        db, new_silence(['rule="x"'], "ana", "maintenance", NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW)
    )
    silence_store.add(
        db,
        new_silence(
            ['rule="y"'], "ana", "old", NOW - timedelta(days=2), NOW - timedelta(days=1), NOW - timedelta(days=3)
        ),
    )

    write_state(
        db,
        "tick",
        {"at": (NOW - timedelta(minutes=2)).isoformat(), "duration_s": 1.25, "errors": ["source down: 503"]},
        NOW,
    )
    write_state(
        db,
        "rules",
        {
            "loaded_at": "2026-02-04T08:00:00+00:00",
            "files": ["/etc/sentinel/rules/a.toml", "/etc/sentinel/rules/b.toml"],
            "rules": 7,
            "problems": ["b.toml:3: rule 'x': field 'for': not a duration [sic]"],
        },
        NOW,
    )
    write_state(db, "digest", {"next_at": "2026-02-09T09:00:00+00:00", "last_sent_at": None}, NOW)
    return db


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Filled]:
    path = tmp_path / "state" / "sentinel.db"
    db = _fill(path)
    yield Filled(db, path)
    db.conn.close()


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ------------------------------------------------------------------------------------------------ metrics
def test_metrics_text_reports_the_stores_state(filled: Filled) -> None:
    text = metrics_text(filled.db, NOW)
    got = _samples(text)

    assert got[("sentinel_source_up", (("source", "test"),))] == 1.0
    assert got[("sentinel_source_up", (("source", "down"),))] == 0.0
    assert got[("sentinel_source_last_success_timestamp_seconds", (("source", "test"),))] == LAST_SUCCESS.timestamp()
    assert got[("sentinel_source_last_poll_timestamp_seconds", (("source", "test"),))] == LAST_SUCCESS.timestamp()
    down_success = (NOW - timedelta(hours=2)).timestamp()
    assert got[("sentinel_source_last_success_timestamp_seconds", (("source", "down"),))] == down_success
    down_poll = (NOW - timedelta(hours=1)).timestamp()
    assert got[("sentinel_source_last_poll_timestamp_seconds", (("source", "down"),))] == down_poll
    assert got[("sentinel_days_stored", (("source", "test"),))] == 30.0
    assert got[("sentinel_days_stored", (("source", "down"),))] == 0.0

    firing = {k[1]: v for k, v in got.items() if k[0] == "sentinel_alerts_firing"}
    assert firing == {
        (("kind", "anomaly"), ("severity", "warning")): 2.0,
        (("kind", "anomaly"), ("severity", "critical")): 1.0,
        (("kind", "budget"), ("severity", "warning")): 1.0,
    }
    assert got[("sentinel_silences_active", ())] == 1.0

    outbox = {dict(k[1])["state"]: v for k, v in got.items() if k[0] == "sentinel_outbox_messages"}
    assert outbox == {"pending": 2, "claimed": 1, "sent": 3, "failed": 1, "silenced": 0, "inhibited": 0}
    assert got[("sentinel_outbox_oldest_waiting_age_seconds", ())] == 1200.0

    attempts = {k[1]: v for k, v in got.items() if k[0] == "sentinel_delivery_attempts_total"}
    assert attempts == {
        (("outcome", "ok"), ("receiver", "hook")): 3.0,
        (("outcome", "retryable"), ("receiver", "hook")): 2.0,
        (("outcome", "permanent"), ("receiver", "mail")): 1.0,
    }

    assert got[("sentinel_last_tick_timestamp_seconds", ())] == (NOW - timedelta(minutes=2)).timestamp()
    assert got[("sentinel_tick_duration_seconds", ())] == 1.25
    assert got[("sentinel_tick_errors", ())] == 1.0
    assert got[("sentinel_rules_loaded", ())] == 7.0
    assert got[("sentinel_rules_problems", ())] == 1.0
    assert got[("sentinel_rules_loaded_timestamp_seconds", ())] == _ts("2026-02-04T08:00:00+00:00")
    assert got[("sentinel_digest_next_timestamp_seconds", ())] == _ts("2026-02-09T09:00:00+00:00")
    assert got[("sentinel_digest_last_sent_timestamp_seconds", ())] == _ts("2026-02-02T09:00:07+00:00")

    types = _families(text)
    assert types["sentinel_delivery_attempts"] == "counter"
    assert types["sentinel_source_up"] == "gauge"


def test_a_fresh_store_omits_what_the_daemon_has_not_written(tmp_path: Path) -> None:
    db = open_store(tmp_path / "fresh.db")
    got = _samples(metrics_text(db, NOW))
    names = {name for name, _ in got}
    for absent in (
        "sentinel_last_tick_timestamp_seconds",
        "sentinel_tick_duration_seconds",
        "sentinel_rules_loaded",
        "sentinel_rules_problems",
        "sentinel_digest_last_sent_timestamp_seconds",
        "sentinel_digest_next_timestamp_seconds",
        "sentinel_source_up",
    ):
        assert absent not in names
    outbox = {dict(k[1])["state"]: v for k, v in got.items() if k[0] == "sentinel_outbox_messages"}
    assert set(outbox.values()) == {0.0} and "pending" in outbox
    assert got[("sentinel_outbox_oldest_waiting_age_seconds", ())] == 0.0
    db.conn.close()


def test_a_source_that_never_succeeded_is_down_and_has_no_success_timestamp(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    with transaction(db):
        state_store.mark_error(db, "new", NOW, "AuthenticationFailed: 401")
    got = _samples(metrics_text(db, NOW))
    assert got[("sentinel_source_up", (("source", "new"),))] == 0.0
    assert ("sentinel_source_last_success_timestamp_seconds", (("source", "new"),)) not in got
    assert got[("sentinel_source_last_poll_timestamp_seconds", (("source", "new"),))] == NOW.timestamp()
    db.conn.close()


def test_each_scrape_builds_its_own_registry(filled: Filled) -> None:
    first = metrics_text(filled.db, NOW)
    assert metrics_text(filled.db, NOW) == first  # a second registration would raise on duplicates
    assert b"sentinel_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_metrics_follow_the_store_between_scrapes(filled: Filled) -> None:
    before = _samples(metrics_text(filled.db, NOW))
    with transaction(filled.db):
        state_store.mark_success(filled.db, "down", NOW)
        outbox_store.finish(filled.db, [1, 2, 3], "sent", NOW)
    after = _samples(metrics_text(filled.db, NOW))
    assert before[("sentinel_source_up", (("source", "down"),))] == 0.0
    assert after[("sentinel_source_up", (("source", "down"),))] == 1.0
    assert after[("sentinel_outbox_messages", (("state", "sent"),))] == 6.0
    assert after[("sentinel_outbox_oldest_waiting_age_seconds", ())] == 0.0


# ------------------------------------------------------------------------------------------------ state
def test_write_state_and_read_state_round_trip(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    assert read_state(db, "tick") is None
    write_state(db, "tick", {"at": NOW.isoformat(), "duration_s": 0.5, "errors": []}, NOW)
    assert read_state(db, "tick") == {"at": NOW.isoformat(), "duration_s": 0.5, "errors": []}
    later = NOW + timedelta(minutes=15)
    write_state(db, "tick", {"at": later.isoformat(), "duration_s": 0.7, "errors": ["x"]}, later)
    assert read_state(db, "tick") == {"at": later.isoformat(), "duration_s": 0.7, "errors": ["x"]}
    rows = db.conn.execute("SELECT key, updated_at FROM daemon_state").fetchall()
    assert rows == [("tick", later.isoformat())]
    assert not db.conn.in_transaction
    db.conn.close()

    # Another connection (another process) reads what was committed.
    other = open_store(tmp_path / "s.db")
    assert read_state(other, "tick") == {"at": later.isoformat(), "duration_s": 0.7, "errors": ["x"]}
    other.conn.close()


def test_read_state_ignores_what_is_not_a_json_object(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    with transaction(db):
        db.conn.execute("INSERT INTO daemon_state VALUES ('list', '[1, 2]', ?), ('junk', '{', ?)", ("x", "x"))
    assert read_state(db, "list") is None
    assert read_state(db, "junk") is None
    db.conn.close()


# ------------------------------------------------------------------------------------------------ status
def test_status_doc_shows_sources_rules_outbox_alerts_tick_and_digest(filled: Filled) -> None:
    doc = status_doc(filled.db, NOW, sources=["fresh", "test"])
    json.dumps(doc)  # what `--format json` prints

    by_name = {s["source"]: s for s in doc["sources"]}
    assert list(by_name) == ["down", "fresh", "test"]
    test = by_name["test"]
    assert test["up"] is True
    assert test["last_success_at"] == test["last_poll_at"] == LAST_SUCCESS.isoformat()
    assert test["lag_s"] == 13 * 3600
    assert test["days_stored"] == 30 and test["final_days"] == 28
    assert test["first_day"] == START.isoformat() and test["last_day"] == UNTIL.isoformat()
    assert test["last_error"] is None
    down = by_name["down"]
    assert down["up"] is False
    assert down["lag_s"] == 2 * 3600
    assert down["last_error"] == "ProxyUnavailable: 503 [upstream]"
    assert down["last_error_at"] == (NOW - timedelta(hours=1)).isoformat()
    fresh = by_name["fresh"]
    assert fresh["up"] is False and fresh["last_success_at"] is None and fresh["lag_s"] is None
    assert fresh["days_stored"] == 0

    assert doc["rules"] == {
        "loaded_at": "2026-02-04T08:00:00+00:00",
        "files": ["/etc/sentinel/rules/a.toml", "/etc/sentinel/rules/b.toml"],
        "rules": 7,
        "problems": ["b.toml:3: rule 'x': field 'for': not a duration [sic]"],
    }
    assert doc["outbox"] == {"claimed": 1, "failed": 1, "inhibited": 0, "pending": 2, "sent": 3, "silenced": 0}
    assert doc["outbox_oldest_waiting_at"] == (NOW - timedelta(minutes=20)).isoformat()
    assert doc["alerts_firing"] == {"warning": 3, "critical": 1}
    assert doc["silences_active"] == 1
    assert doc["tick"] == {
        "at": (NOW - timedelta(minutes=2)).isoformat(),
        "duration_s": 1.25,
        "errors": ["source down: 503"],
        "age_s": 120.0,
    }
    # The daemon did not know when the last digest went out; the digests table does.
    assert doc["digest"] == {"next_at": "2026-02-09T09:00:00+00:00", "last_sent_at": "2026-02-02T09:00:07+00:00"}


def test_status_doc_of_a_store_no_daemon_ever_ran_on(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    doc = status_doc(db, NOW)
    assert doc["sources"] == []
    assert doc["tick"] is None and doc["rules"] is None and doc["digest"] is None
    assert doc["alerts_firing"] == {}
    assert set(doc["outbox"].values()) == {0}
    db.conn.close()


def test_status_tables_show_the_document_and_print_markup_literally(filled: Filled) -> None:
    doc = status_doc(filled.db, NOW)
    console = Console(record=True, width=220, color_system=None)
    for table in status_tables(doc):
        console.print(table)
    text = console.export_text()
    assert "ProxyUnavailable: 503 [upstream]" in text  # brackets are not taken for rich markup
    assert "not a duration [sic]" in text
    assert "13h" in text  # the lag of source "test"
    assert "7 rule(s) in 2 file(s)" in text
    assert "critical 1, warning 3" in text
    assert "took 1.2s" in text
    assert "pending 2" in text and "claimed 1" in text
    assert "next at 2026-02-09T09:00:00+00:00" in text
    assert "1 error(s)" in text

    empty = Console(record=True, width=220, color_system=None)
    fresh = open_store(filled.path.parent / "empty.db")
    for table in status_tables(status_doc(fresh, NOW)):
        empty.print(table)
    fresh.conn.close()
    assert "never" in empty.export_text()


# ------------------------------------------------------------------------------------------------ HTTP
def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=30)


def test_health_server_serves_metrics_from_the_store(filled: Filled) -> None:
    server = HealthServer(filled.path, healthy=lambda: (True, "ok"), clock=fixed(NOW))
    server.start()
    try:
        assert server.port > 0
        with _client() as client:
            got = client.get(f"{server.url}/metrics")
        assert got.status_code == 200
        assert got.headers["content-type"] == CONTENT_TYPE
        assert "text/plain" in CONTENT_TYPE and "version=0.0.4" in CONTENT_TYPE
        samples = _samples(got.content)
        assert samples[("sentinel_rules_loaded", ())] == 7.0
        assert samples[("sentinel_outbox_oldest_waiting_age_seconds", ())] == 1200.0  # the injected clock
        assert got.content == metrics_text(filled.db, NOW)
    finally:
        server.stop()


def test_healthz_answers_the_daemons_verdict(filled: Filled) -> None:
    verdict = {"ok": True, "reason": "ok"}

    def healthy() -> tuple[bool, str]:
        return bool(verdict["ok"]), str(verdict["reason"])

    with HealthServer(filled.path, "127.0.0.1", 0, healthy) as server, _client() as client:
        good = client.get(f"{server.url}/healthz")
        assert (good.status_code, good.text.strip()) == (200, "ok")
        verdict.update(ok=False, reason="last tick 3600 s ago")
        bad = client.get(f"{server.url}/healthz")
        assert (bad.status_code, bad.text.strip()) == (503, "last tick 3600 s ago")


def test_healthz_is_503_when_the_verdict_itself_fails(filled: Filled) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("no tick state")

    with HealthServer(filled.path, healthy=broken) as server, _client() as client:
        got = client.get(f"{server.url}/healthz")
    assert got.status_code == 503
    assert "no tick state" in got.text


def test_unknown_paths_are_404(filled: Filled) -> None:
    with HealthServer(filled.path) as server, _client() as client:
        assert client.get(f"{server.url}/").status_code == 404
        assert client.get(f"{server.url}/metrics/extra").status_code == 404
        assert client.post(f"{server.url}/metrics").status_code == 501  # only GET is served
        assert client.get(f"{server.url}/metrics?name[]=x").status_code == 200
        assert client.get(f"{server.url}/healthz").status_code == 200  # no verdict given: ok


def test_an_unreadable_store_is_a_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    # The store path is a directory: SQLite cannot open it.
    with HealthServer(tmp_path, healthy=lambda: (True, "ok")) as server, _client() as client:
        got = client.get(f"{server.url}/metrics")
        assert got.status_code == 500
        assert "cannot read the store" in got.text
        assert client.get(f"{server.url}/healthz").status_code == 200


def test_concurrent_scrapes_each_use_their_own_connection(filled: Filled) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    with HealthServer(filled.path, clock=fixed(NOW)) as server:

        def scrape() -> None:
            with _client() as client:
                code = client.get(f"{server.url}/metrics").status_code
            with lock:
                statuses.append(code)

        threads = [threading.Thread(target=scrape) for _ in range(8)]
        for t in threads:
            t.start()
        # The daemon goes on writing while it is scraped.
        for i in range(5):
            write_state(filled.db, "tick", {"at": NOW.isoformat(), "duration_s": float(i), "errors": []}, NOW)
        for t in threads:
            t.join()
    assert statuses == [200] * 8


def test_stop_closes_the_port(filled: Filled) -> None:
    server = HealthServer(filled.path)
    server.start()
    url = server.url
    server.stop()
    server.stop()  # twice is harmless
    with _client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"{url}/healthz")
