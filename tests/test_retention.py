"""Retention and erasure on real SQLite files: a store synced from the simulator over real HTTP,
plus alerts, messages, delivery attempts, budget signals, digests, baselines and audit rows of
known ages. Every purge is checked table by table: the rows before minus the rows after are
exactly what it reported, a dry run reports the same and deletes nothing, and what must stay stays."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from simhelp import KEY, NOW, make_client, since_for, small_model

from sentinel.cli import main
from sentinel.clock import utc_now, utc_today
from sentinel.config import RetentionSettings, Settings, SyncSettings
from sentinel.daemon import Daemon
from sentinel.egress import AuditRecord
from sentinel.errors import PurgeRefused
from sentinel.notify.model import Alert
from sentinel.notify.plan import Entry
from sentinel.privacy import Pseudonymizer
from sentinel.rules.evaluate import fingerprint
from sentinel.simulator import SimulatorServer
from sentinel.store import alerts as alert_store
from sentinel.store import budget_signals, open_store, retention, transaction
from sentinel.store import outbox as outbox_store
from sentinel.store import state as state_store
from sentinel.store.retention import cutoff, purge_before, purge_policy, purge_user
from sentinel.sync import sync_source

DAYS = 40  # synced: 2026-10-18 .. 2026-11-26
OLD = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # before every cutoff below
RECENT = NOW - timedelta(days=3)  # after every cutoff below
POLICY = RetentionSettings(daily_facts="30d", audit_log="90d", alerts="180d")
FACTS_CUT = date(2026, 10, 27)  # NOW - 30d
ALERTS_CUT = date(2026, 5, 30)  # NOW - 180d
AUDIT_CUT = date(2026, 8, 28)  # NOW - 90d
PSEUDONYM_KEY = "a-pseudonym-key-for-tests-0123456789"


# ---------------------------------------------------------------------------------------------- the store
@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 days of the simulator's traffic, users, teams and keys, synced once for the module."""
    path = tmp_path_factory.mktemp("synced") / "template.db"
    db = open_store(path)
    settings = SyncSettings()
    with SimulatorServer(small_model(days=DAYS), api_key=KEY).running() as url, make_client(url, db, settings) as c:
        result = sync_source(db, c, settings, NOW, since=since_for(DAYS))
    assert result.error is None and result.days == DAYS
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return path


def _copy(template: Path, tmp_path: Path, name: str = "s.db") -> Path:
    target = tmp_path / name
    shutil.copy(template, target)
    return target


def _alert(name: str, status: str, kind: str, ident: str, starts: datetime, ends: datetime | None) -> Alert:
    labels = {"rule": "spend", "severity": "warning", "kind": "anomaly", "entity_type": kind, "entity_id": ident}
    return Alert(
        fingerprint=fingerprint("test", name),
        status=status,
        rule="spend",
        severity="warning",
        summary=f"{kind} {ident} is spending",
        labels=labels,
        starts_at=starts,
        ends_at=ends,
        record={"kind": "anomaly", "entity_type": kind, "entity_id": ident},
    )


def _group_key(group: dict[str, str]) -> str:
    return "root:{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(group.items())) + "}"


def _queue(
    db: sqlite_utils.Database, alert: Alert, notice: str, at: datetime, state: str, group: dict[str, str]
) -> int:
    key = _group_key(group)
    with transaction(db):
        outbox_store.enqueue(db, [Entry("mail", key, group, alert, notice, at)], at)
        (rid,) = db.conn.execute(
            "SELECT id FROM outbox WHERE fingerprint = ? AND notice = ?", (alert.fingerprint, notice)
        ).fetchone()
        if state != "pending":
            outbox_store.finish(db, [rid], state, at)
    return int(rid)


def _audit(db: sqlite_utils.Database, at: datetime, path: str, query: str) -> None:
    with transaction(db):
        state_store.record_audit(db, AuditRecord(at, "sim", "GET", path, query, 200, 1.5, 100, "ok"))


def tokens_of(db: sqlite_utils.Database, user: str) -> list[str]:
    return [t for (t,) in db.conn.execute("SELECT token FROM keys WHERE user_id = ? ORDER BY token", (user,))]


def decorate(db: sqlite_utils.Database, alice: str = "alice", bob: str = "bob") -> dict[str, str]:
    """Everything a daemon writes besides facts, at known ages; returns the fingerprints by name."""
    alice_key, bob_key = tokens_of(db, alice)[0], tokens_of(db, bob)[0]
    made = {
        "old-alice": _alert("old-alice", "resolved", "user", alice, OLD - timedelta(days=1), OLD),
        "old-bob-waiting": _alert("old-bob-waiting", "resolved", "user", bob, OLD - timedelta(days=1), OLD),
        "firing-alice-key": _alert("firing-alice-key", "firing", "key", alice_key, OLD, None),
        "recent-bob-key": _alert("recent-bob-key", "resolved", "key", bob_key, RECENT, RECENT + timedelta(hours=2)),
        "recent-team": _alert("recent-team", "resolved", "team", "t-1", RECENT, RECENT + timedelta(hours=1)),
    }
    with transaction(db):
        alert_store.save(db, made.values(), NOW)
    by_rule = {"rule": "spend"}
    ids = [
        _queue(db, made["old-alice"], "firing", OLD - timedelta(days=1), "sent", {"entity_id": alice}),
        _queue(db, made["old-alice"], "resolved", OLD, "sent", {"entity_id": alice}),
    ]
    _queue(db, made["old-bob-waiting"], "resolved", OLD, "pending", by_rule)  # still waiting: never purged
    key_notice = _queue(db, made["firing-alice-key"], "firing", OLD, "sent", by_rule)  # a firing alert's stays
    recent = _queue(db, made["recent-bob-key"], "firing", RECENT, "sent", by_rule)
    _queue(db, made["recent-team"], "firing", RECENT, "silenced", by_rule)
    # Messages of alerts whose rows no longer exist: an old finished one goes, a waiting one stays.
    _queue(db, _alert("gone", "resolved", "user", "carol", OLD, OLD), "firing", OLD, "failed", by_rule)
    _queue(db, _alert("gone-waiting", "resolved", "user", "carol", OLD, OLD), "firing", OLD, "pending", by_rule)
    with transaction(db):
        alice_group, rule_group = _group_key({"entity_id": alice}), _group_key(by_rule)
        outbox_store.record_attempt(db, "mail", alice_group, ids, OLD, "ok", "", 200, 5.0)
        outbox_store.record_attempt(db, "mail", rule_group, [recent], RECENT, "ok", "", 200, 5.0)
        outbox_store.record_attempt(db, "mail", rule_group, [key_notice], RECENT, "retryable", "", 503, 5.0)
        outbox_store.mark_group_sent(db, "mail", alice_group, OLD)
        outbox_store.mark_group_sent(db, "mail", rule_group, RECENT)
        old_window, next_window = "2026-03-01T00:00:00+00:00", "2026-12-01T00:00:00-05:00"
        budget_signals.record(db, f"proxy/sim/user/{alice}", old_window, ["threshold:80"], OLD, 80.0, None)
        budget_signals.record(db, f"proxy/sim/key/{alice_key}", "lifetime", ["threshold:50"], OLD, 50.0, None)
        budget_signals.record(db, f"rule/monthly/user/{alice}", next_window, ["forecast"], RECENT, 70.0, None)
        budget_signals.record(db, f"rule/monthly/user/{bob}", next_window, ["forecast"], RECENT, 70.0, None)
        budget_signals.record(db, f"proxy/sim/user/{alice}x", next_window, ["threshold:50"], RECENT, 9.0, None)
        budget_signals.record(db, "proxy/sim/team/t-1/limits/0", "2026-02-01T00:00:00+00:00", ["soft"], OLD, 5.0, None)
        # The kept budget evaluation (the web view's): alice's and her key's rows go, bob's stays.
        for budget, etype, eid in (
            (f"proxy/sim/user/{alice}", "user", alice),
            (f"proxy/sim/key/{alice_key}", "key", alice_key),
            (f"rule/monthly/user/{bob}", "user", bob),
        ):
            db.conn.execute(
                "INSERT INTO budget_statuses VALUES (?, ?, ?, ?, 'ok', 10.0, ?, '{}')",
                (budget, etype, eid, eid, RECENT.isoformat()),
            )
        for period, receiver, state in (
            ("2026-03-02T09:00:00+00:00", "mail", "sent"),
            ("2026-03-09T09:00:00+00:00", "mail", "failed"),
            ("2026-03-16T09:00:00+00:00", "mail", "pending"),
            ("2026-11-23T09:00:00+00:00", "mail", "sent"),
        ):
            db.conn.execute(
                "INSERT INTO digests (period, audience, receiver, state, created_at) VALUES (?, 'all', ?, ?, ?)",
                (period, receiver, state, period),
            )
        for day in ("2026-09-30", "2026-10-26", "2026-10-27"):
            db.conn.execute(
                "INSERT INTO intraday_totals (source, date, taken_at, spend) VALUES ('sim', ?, ?, 4.5)",
                (day, f"{day}T10:00:00+00:00"),
            )
        series = {"level": 1.0}
        for source, kind, entities in (("sim", "user", [alice, bob]), ("all", "key", [alice_key, bob_key])):
            doc = {"as_of": "2026-11-26", "series": {e: series for e in entities}}
            db.conn.execute(
                "INSERT INTO baselines (source, kind, as_of, fitted_at, params) VALUES (?, ?, '2026-11-26', ?, ?)",
                (source, kind, NOW.isoformat(), json.dumps(doc)),
            )
    _audit(db, OLD, "/user/info", f"user_id={alice}")
    _audit(db, OLD, "/key/list", "page=1&size=100")
    _audit(db, RECENT, "/user/info", f"user_id={alice}")
    _audit(db, RECENT, "/user/info", f"user_id={alice}x")
    _audit(db, RECENT, "/user/list", f"user_ids={bob}%2C{alice}")
    _audit(db, RECENT, "/user/info", f"user_id={bob}")
    return {name: a.fingerprint for name, a in made.items()}


def tables(db: sqlite_utils.Database) -> dict[str, int]:
    names = [
        n for (n,) in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if n != "sqlite_sequence"
    ]
    return {n: int(db.conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]) for n in names}


def dump(db: sqlite_utils.Database) -> str:
    """Every row of every table."""
    h = hashlib.sha256()
    for name in sorted(tables(db)):
        for row in sorted(map(repr, db.conn.execute(f"SELECT * FROM {name}"))):
            h.update(f"{name}:{row}".encode())
    return h.hexdigest()


def assert_exact(before: dict[str, int], after: dict[str, int], counts: retention.Counts) -> None:
    """Rows before minus rows after, per table, are what the purge reported (0 where it reported none)."""
    assert set(before) == set(after)
    assert {t: before[t] - after[t] for t in before} == {t: counts.deleted.get(t, 0) for t in before}


# ---------------------------------------------------------------------------------------------- periods
@pytest.mark.parametrize(
    ("period", "today", "first_kept"),
    [
        ("1mo", date(2026, 3, 31), date(2026, 2, 28)),
        ("13mo", date(2026, 11, 26), date(2025, 10, 26)),
        ("1mo", date(2026, 1, 15), date(2025, 12, 15)),
        ("1y", date(2024, 2, 29), date(2023, 2, 28)),
        ("2y", date(2026, 5, 1), date(2024, 5, 1)),
        ("400d", date(2026, 11, 26), date(2025, 10, 22)),
        ("8w", date(2026, 1, 1), date(2025, 11, 6)),
        ("5000y", date(2026, 1, 1), date.min),
    ],
)
def test_cutoff_counts_days_and_calendar_months(period: str, today: date, first_kept: date) -> None:
    assert cutoff(period, today) == first_kept


def test_cutoff_rejects_what_is_not_a_period() -> None:
    with pytest.raises(ValueError, match="retention period"):
        cutoff("13 months", date(2026, 1, 1))


# ---------------------------------------------------------------------------------------------- policy
def test_policy_purge_deletes_exactly_what_it_reports_and_keeps_what_must_stay(synced: Path, tmp_path: Path) -> None:
    db = open_store(_copy(synced, tmp_path))
    fps = decorate(db)
    audit_rows = {int(i): str(at) for i, at in db.conn.execute("SELECT id, at FROM audit_log")}
    before = tables(db)
    snapshot = dump(db)

    planned = purge_policy(db, NOW, POLICY, dry_run=True)
    assert planned.dry_run and dump(db) == snapshot  # a dry run deletes nothing

    done = purge_policy(db, NOW, POLICY)
    after = tables(db)
    assert not done.dry_run and done.deleted == planned.deleted and done.total > 0
    assert_exact(before, after, done)

    # Facts: exactly the UTC days before the cutoff went (9 of the 40 synced), the cutoff day stays.
    assert db.conn.execute("SELECT MIN(date) FROM daily_facts").fetchone()[0] == FACTS_CUT.isoformat()
    assert done.deleted["days"] == 9 * 2  # both routes
    assert [d for (d,) in db.conn.execute("SELECT date FROM intraday_totals ORDER BY 1")] == [
        "2026-10-27",
        NOW.date().isoformat(),
    ]
    # Alerts: only the old resolved one without a waiting message; the firing one, the one with a
    # pending message and the recent ones stay.
    kept = {fp for (fp,) in db.conn.execute("SELECT fingerprint FROM alerts")}
    assert kept == {fps["old-bob-waiting"], fps["firing-alice-key"], fps["recent-bob-key"], fps["recent-team"]}
    # Messages: the old alert's two, and the old failed one of an alert no longer kept; never a
    # pending one, never the old notice of an alert still firing.
    assert done.deleted["outbox"] == 3
    states = sorted(db.conn.execute("SELECT state, notice FROM outbox").fetchall())
    assert states == [
        ("pending", "firing"),
        ("pending", "resolved"),
        ("sent", "firing"),
        ("sent", "firing"),
        ("silenced", "firing"),
    ]
    assert done.deleted["delivery_attempts"] == 1 and done.deleted["route_groups"] == 1
    # Budget signals: those of windows that ended before the cutoff; a lifetime budget's stay.
    signals = {b for (b,) in db.conn.execute("SELECT budget_id FROM budget_signals")}
    assert signals == {
        f"proxy/sim/key/{tokens_of(db, 'alice')[0]}",
        "rule/monthly/user/alice",
        "rule/monthly/user/bob",
        "proxy/sim/user/alicex",
    }
    # Digests: the finished old ones; an old pending one is not finished.
    assert sorted(db.conn.execute("SELECT period, state FROM digests").fetchall()) == [
        ("2026-03-16T09:00:00+00:00", "pending"),
        ("2026-11-23T09:00:00+00:00", "sent"),
    ]
    # Audit: exactly the rows of instants before the cutoff (whatever the wall clock said at sync).
    cut = datetime(AUDIT_CUT.year, AUDIT_CUT.month, AUDIT_CUT.day, tzinfo=UTC)
    expected_gone = {i for i, at in audit_rows.items() if datetime.fromisoformat(at) < cut}
    left = {int(i) for (i,) in db.conn.execute("SELECT id FROM audit_log")}
    assert set(audit_rows) - left == expected_gone and len(expected_gone) >= 2
    # Baselines are never purged by the policy.
    assert after["baselines"] == before["baselines"] == 2

    again = purge_policy(db, NOW, POLICY)  # idempotent
    assert again.total == 0 and tables(db) == after


def test_purge_before_keeps_the_day_itself_and_touches_only_facts(synced: Path, tmp_path: Path) -> None:
    db = open_store(_copy(synced, tmp_path))
    decorate(db)
    day = date(2026, 11, 1)
    by_date = dict(db.conn.execute("SELECT date, COUNT(*) FROM daily_facts GROUP BY date").fetchall())
    before, snapshot = tables(db), dump(db)

    planned = purge_before(db, day, dry_run=True)
    assert dump(db) == snapshot
    done = purge_before(db, day)
    after = tables(db)
    assert done.deleted == planned.deleted
    assert_exact(before, after, done)
    assert set(done.deleted) == {"daily_facts", "days", "intraday_totals"}
    assert done.deleted["daily_facts"] == sum(n for d, n in by_date.items() if d < day.isoformat())
    assert db.conn.execute("SELECT MIN(date) FROM daily_facts").fetchone()[0] == day.isoformat()
    assert (
        db.conn.execute("SELECT COUNT(*) FROM daily_facts WHERE date = ?", (day.isoformat(),)).fetchone()[0]
        == (by_date[day.isoformat()])
    )
    assert done.deleted["intraday_totals"] == 3  # the three older snapshots; today's stays


def test_purge_before_refuses_yesterday_or_later() -> None:
    today = date(2026, 11, 26)
    retention.check_before(date(2026, 11, 25), today)
    with pytest.raises(PurgeRefused, match="latest allowed is 2026-11-25"):
        retention.check_before(date(2026, 11, 26), today)


# ---------------------------------------------------------------------------------------------- a user
def _user_rows(db: sqlite_utils.Database, user: str) -> dict[str, int]:
    """How many rows of each kind are about ``user`` (their keys found in the keys table)."""
    keys = tokens_of(db, user)
    q = db.conn.execute

    def n(sql: str, *params: object) -> int:
        return int(q(sql, params).fetchone()[0])

    marks = ",".join("?" * len(keys)) or "NULL"
    teams = sum(
        user in json.loads(m) or user in json.loads(a) for m, a in q("SELECT members, admins FROM teams").fetchall()
    )
    labels = [json.loads(x) for (x,) in q("SELECT labels FROM alerts")]
    return {
        "user_facts": n("SELECT COUNT(*) FROM daily_facts WHERE grain = 'user' AND entity_id = ?", user),
        "key_facts": n(f"SELECT COUNT(*) FROM daily_facts WHERE grain = 'key' AND entity_id IN ({marks})", *keys),
        "model_key_facts": n(
            f"SELECT COUNT(*) FROM daily_facts WHERE grain = 'model_key' AND detail_id IN ({marks})", *keys
        ),
        "users": n("SELECT COUNT(*) FROM users WHERE user_id = ?", user),
        "keys": len(keys),
        "teams": teams,
        "alerts": sum(
            (x["entity_type"] == "user" and x["entity_id"] == user)
            or (x["entity_type"] == "key" and x["entity_id"] in keys)
            for x in labels
        ),
        "budget_signals": sum(
            b.endswith(f"/user/{user}") or ("/key/" in b and b.rsplit("/", 1)[1] in keys)
            for (b,) in q("SELECT budget_id FROM budget_signals")
        ),
        "budget_statuses": sum(
            (t == "user" and e == user) or (t == "key" and e in keys)
            for t, e in q("SELECT entity_type, entity_id FROM budget_statuses")
        ),
    }


def test_purge_user_removes_the_user_everywhere_and_nothing_of_anyone_else(synced: Path, tmp_path: Path) -> None:
    db = open_store(_copy(synced, tmp_path))
    fps = decorate(db)
    users = [u for (u,) in db.conn.execute("SELECT user_id FROM users ORDER BY 1")]
    others = {u: _user_rows(db, u) for u in users if u != "alice"}
    alice = _user_rows(db, "alice")
    alice_keys = tokens_of(db, "alice")
    assert len(alice_keys) == 2 and all(alice.values()), alice  # alice has rows of every kind
    other_grains = dict(db.conn.execute("SELECT grain, COUNT(*) FROM daily_facts GROUP BY grain").fetchall())
    before, snapshot = tables(db), dump(db)

    planned = purge_user(db, "alice", dry_run=True)
    assert dump(db) == snapshot
    done = purge_user(db, "alice")
    after = tables(db)
    assert (done.deleted, done.updated) == (planned.deleted, planned.updated)
    assert_exact(before, after, done)

    # Everything about alice is gone, and what was reported is exactly what she had.
    assert _user_rows(db, "alice") == dict.fromkeys(alice, 0)
    assert done.deleted["daily_facts"] == alice["user_facts"] + alice["key_facts"] + alice["model_key_facts"]
    assert done.deleted["users"] == 1 and done.deleted["keys"] == 2
    assert db.conn.execute("SELECT COUNT(*) FROM daily_facts WHERE entity_id = 'alice'").fetchone()[0] == 0
    for token in alice_keys:
        assert (
            db.conn.execute(
                "SELECT COUNT(*) FROM daily_facts WHERE entity_id = ? OR detail_id = ?", (token, token)
            ).fetchone()[0]
            == 0
        )
    assert done.updated["teams"] == alice["teams"] and all(
        "alice" not in json.loads(m) + json.loads(a) for m, a in db.conn.execute("SELECT members, admins FROM teams")
    )
    kept_alerts = {fp for (fp,) in db.conn.execute("SELECT fingerprint FROM alerts")}
    assert kept_alerts == {fps["old-bob-waiting"], fps["recent-bob-key"], fps["recent-team"]}
    assert done.deleted["outbox"] == 3  # old-alice's two and the firing key alert's notice
    # The attempt in alice's own group, and the one that only carried her key's notice.
    assert done.deleted["delivery_attempts"] == 2 and done.deleted["route_groups"] == 1
    signals = sorted(b for (b,) in db.conn.execute("SELECT budget_id FROM budget_signals"))
    assert signals == sorted(["rule/monthly/user/bob", "proxy/sim/user/alicex", "proxy/sim/team/t-1/limits/0"])
    queries = sorted(q for (q,) in db.conn.execute("SELECT query FROM audit_log WHERE query LIKE 'user_id%'"))
    assert queries == ["user_id=alicex", "user_id=bob"]  # the comma list named alice: it went
    params = {k: json.loads(p)["series"] for k, p in db.conn.execute("SELECT kind, params FROM baselines")}
    assert set(params["user"]) == {"bob"} and set(params["key"]) == {tokens_of(db, "bob")[0]}
    assert done.updated["baselines"] == 2

    # Nobody else lost a row: every other user's rows of every kind, and the other grains.
    assert {u: _user_rows(db, u) for u in others} == others
    grains = dict(db.conn.execute("SELECT grain, COUNT(*) FROM daily_facts GROUP BY grain").fetchall())
    for grain in ("total", "model", "model_group", "provider", "endpoint", "team"):
        assert grains[grain] == other_grains[grain]

    again = purge_user(db, "alice")
    assert again.total == 0 and again.total_updated == 0


def test_an_erased_user_is_not_left_readable_in_the_file(synced: Path, tmp_path: Path) -> None:
    path = _copy(synced, tmp_path)
    db = open_store(path)
    name = b"Alice Nguyen"  # alice's alias: stored in her users row only
    assert name in path.read_bytes()
    db.conn.execute("UPDATE users SET seen_at = ? WHERE user_id = 'alice'", (RECENT.isoformat(),))
    wal = path.with_name(path.name + "-wal")
    assert name in wal.read_bytes()  # her row is in the write-ahead log too
    db.conn.execute("PRAGMA secure_delete = OFF")  # as in SQLite builds that do not turn it on by default
    purge_user(db, "alice")
    assert db.conn.execute("PRAGMA secure_delete").fetchone()[0] == 0  # the connection's setting is restored
    assert name not in path.read_bytes() and name not in wal.read_bytes()


def _pseudonymize(db: sqlite_utils.Database, pz: Pseudonymizer) -> None:
    """Turn the store into what a sync with pseudonymize_users writes: user ids as pseudonyms."""
    with transaction(db):
        for (user,) in db.conn.execute("SELECT user_id FROM users").fetchall():
            p = pz.user(user)
            db.conn.execute("UPDATE users SET user_id = ?, alias = NULL WHERE user_id = ?", (p, user))
            db.conn.execute("UPDATE keys SET user_id = ? WHERE user_id = ?", (p, user))
            db.conn.execute("UPDATE daily_facts SET entity_id = ? WHERE grain = 'user' AND entity_id = ?", (p, user))
        for team, members, admins in db.conn.execute("SELECT team_id, members, admins FROM teams").fetchall():
            db.conn.execute(
                "UPDATE teams SET members = ?, admins = ? WHERE team_id = ?",
                (
                    json.dumps([pz.user(m) for m in json.loads(members)]),
                    json.dumps([pz.user(a) for a in json.loads(admins)]),
                    team,
                ),
            )


def test_purge_user_finds_a_pseudonymized_user_by_the_real_id(synced: Path, tmp_path: Path) -> None:
    pz = Pseudonymizer(PSEUDONYM_KEY.encode())
    db = open_store(_copy(synced, tmp_path))
    _pseudonymize(db, pz)
    alice, bob = pz.user("alice"), pz.user("bob")
    assert alice.startswith("u-") and alice != "alice"
    decorate(db, alice=alice, bob=bob)
    had = _user_rows(db, alice)
    others = {u: _user_rows(db, u) for (u,) in db.conn.execute("SELECT user_id FROM users") if u != alice}

    assert purge_user(db, "alice", dry_run=True).total == 0  # without the key, "alice" is no one here
    before = tables(db)
    done = purge_user(db, "alice", pseudonymizer=pz)
    assert_exact(before, tables(db), done)
    assert done.deleted["users"] == 1 and done.deleted["keys"] == had["keys"] == 2
    assert done.deleted["daily_facts"] == had["user_facts"] + had["key_facts"] + had["model_key_facts"]
    assert done.updated["teams"] == had["teams"] > 0
    assert not db.conn.execute("SELECT COUNT(*) FROM users WHERE user_id = ?", (alice,)).fetchone()[0]
    assert {u: _user_rows(db, u) for u in others} == others
    # The pseudonym itself works as well.
    assert purge_user(db, bob, dry_run=True).deleted["users"] == 1


def test_purge_user_refuses_the_bucket_of_keys_without_a_user(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    for ident in ("Unassigned", "", "  "):
        with pytest.raises(PurgeRefused, match="not a user"):
            purge_user(db, ident, dry_run=True)


# ---------------------------------------------------------------------------------------------- the daemon
def _daemon_settings(tmp_path: Path, db: Path, **retention_: object) -> Settings:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    return Settings(
        store={"path": db},
        rules={"path": rules},
        retention={"daily_facts": "30d", "audit_log": "90d", "alerts": "180d", **retention_},
    )


def _old_audit(db: sqlite_utils.Database) -> int:
    """Write one audit row from long ago; return how many audit rows the 90d policy would purge as of NOW."""
    _audit(db, datetime(2025, 8, 1, tzinfo=UTC), "/key/list", "page=1")
    return int(db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE at < ?", (AUDIT_CUT.isoformat(),)).fetchone()[0])


def test_the_daemon_purges_once_per_utc_day(synced: Path, tmp_path: Path) -> None:
    path = _copy(synced, tmp_path)
    clock = [NOW]
    daemon = Daemon(_daemon_settings(tmp_path, path), None, clock=lambda: clock[0], environ={})
    store = daemon.store
    facts = tables(store)["daily_facts"]
    old = _old_audit(store)

    first = daemon.run_once(NOW)
    assert first.errors == [] and first.purged is not None
    assert first.purged.deleted["audit_log"] == old >= 1 and first.purged.deleted["daily_facts"] > 0
    assert tables(store)["daily_facts"] == facts - first.purged.deleted["daily_facts"]
    assert (
        json.loads(store.conn.execute("SELECT value FROM daemon_state WHERE key = 'purge'").fetchone()[0])["day"]
        == NOW.date().isoformat()
    )

    # Later the same UTC day: no purge, so an old row written meanwhile stays.
    assert _old_audit(store) == 1
    second = daemon.run_once(NOW + timedelta(hours=8))  # 23:30 UTC
    assert second.purged is None and second.errors == []
    assert _old_audit(store) == 2
    # The next UTC day: one purge again, then none until the day after.
    clock[0] = NOW + timedelta(hours=9)  # 00:30 UTC the next day
    third = daemon.run_once(clock[0])
    assert third.purged is not None and third.purged.deleted["audit_log"] == 2
    assert third.purged.deleted["daily_facts"] > 0  # the cutoff moved on by a day
    assert store.conn.execute("SELECT COUNT(*) FROM audit_log WHERE at < '2026-01-01'").fetchone()[0] == 0
    assert daemon.run_once(clock[0] + timedelta(minutes=15)).purged is None


def test_the_daemon_does_not_purge_when_not_scheduled(synced: Path, tmp_path: Path) -> None:
    path = _copy(synced, tmp_path)
    daemon = Daemon(_daemon_settings(tmp_path, path, scheduled=False), None, clock=lambda: NOW, environ={})
    before = tables(daemon.store)
    tick = daemon.run_once(NOW)
    assert tick.purged is None
    assert tables(daemon.store)["daily_facts"] == before["daily_facts"]


def test_a_failing_purge_is_reported_and_retried_without_stopping_the_loop(synced: Path, tmp_path: Path) -> None:
    path = _copy(synced, tmp_path)
    daemon = Daemon(_daemon_settings(tmp_path, path), None, clock=lambda: NOW, environ={})
    store = daemon.store
    old = _old_audit(store)
    store.conn.execute(
        "CREATE TRIGGER no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'kept for an audit'); END"
    )
    facts = tables(store)["daily_facts"]
    tick = daemon.run_once(NOW)
    assert tick.purged is None and any(e.startswith("purge:") and "kept for an audit" in e for e in tick.errors)
    assert tables(store)["daily_facts"] == facts  # one transaction: nothing went
    assert tick.alerting is not None  # the rest of the tick ran
    store.conn.execute("DROP TRIGGER no_delete")
    retry = daemon.run_once(NOW + timedelta(minutes=15))  # not recorded as done: the next tick tries again
    assert retry.purged is not None and retry.purged.deleted["audit_log"] == old


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def config(synced: Path, tmp_path: Path) -> Path:
    path = _copy(synced, tmp_path)
    db = open_store(path)
    decorate(db)
    db.conn.close()
    cfg = tmp_path / "config.toml"
    # The CLI reads the wall clock: periods that reach back to the same days as POLICY does from NOW.
    periods = "".join(
        f'{k} = "{_days_back_to(day)}"\n'
        for k, day in (("daily_facts", FACTS_CUT), ("audit_log", AUDIT_CUT), ("alerts", ALERTS_CUT))
    )
    cfg.write_text(f'[store]\npath = "{path}"\n[retention]\n{periods}')
    return cfg


def _days_back_to(day: date) -> str:
    return f"{max(1, (utc_today(utc_now()) - day).days)}d"


def _before_day() -> str:
    return min(date(2026, 11, 1), utc_today(utc_now()) - timedelta(days=1)).isoformat()


def test_cli_policy_dry_run_then_purge(config: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["-c", str(config), "purge", "--dry-run", "--format", "json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["mode"] == "policy" and planned["dry_run"] is True and planned["total_deleted"] > 0
    assert set(planned["kept_from"]) == {"daily_facts", "audit_log", "alerts"}
    real = runner.invoke(main, ["-c", str(config), "purge"])
    assert real.exit_code == 0, real.output
    assert f"deleted {planned['total_deleted']:,} rows" in real.output and "daily_facts" in real.output
    again = runner.invoke(main, ["-c", str(config), "purge", "--dry-run"])
    assert again.exit_code == 0 and "dry run: nothing deleted (0 rows would be deleted)" in again.output


def test_cli_user_erasure_in_json_and_table(config: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["-c", str(config), "purge", "--user", "alice", "--dry-run", "--format", "json"])
    assert dry.exit_code == 0, dry.output
    (planned,) = json.loads(dry.output)["users"]
    assert planned["user"] == "alice" and planned["deleted"]["users"] == 1 and planned["updated"]["teams"] >= 1
    real = runner.invoke(main, ["-c", str(config), "purge", "--user", "alice", "--user", "nobody-here"])
    assert real.exit_code == 0, real.output
    assert "alice" in real.output and f"deleted {planned['total_deleted']:,} rows" in real.output
    assert "no rows matched user nobody-here" in real.output


def test_cli_user_erasure_with_pseudonyms_reads_the_key(config: Path) -> None:
    db = open_store(config.parent / "s.db")
    _pseudonymize(db, Pseudonymizer(PSEUDONYM_KEY.encode()))
    db.conn.close()
    config.write_text(
        config.read_text() + '[privacy]\npseudonymize_users = true\npseudonym_key_env = "SENTINEL_TEST_PSEUDONYM_KEY"\n'
    )
    runner = CliRunner()
    args = ["-c", str(config), "purge", "--user", "bob", "--format", "json"]
    missing = runner.invoke(main, args, env={})
    assert missing.exit_code == 2 and "SENTINEL_TEST_PSEUDONYM_KEY" in missing.output
    done = runner.invoke(main, args, env={"SENTINEL_TEST_PSEUDONYM_KEY": PSEUDONYM_KEY})
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)["users"]
    assert result["deleted"]["users"] == 1 and result["deleted"]["keys"] == 1 and result["deleted"]["daily_facts"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2099-01-01"], "too recent"),
        (["--before", "2026-01-01", "--user", "alice"], "cannot be combined"),
        (["--before", "yesterday"], "not a YYYY-MM-DD date"),
        (["--user", "Unassigned"], "not a user"),
    ],
)
def test_cli_refuses_with_exit_status_2(config: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["-c", str(config), "purge", *args])
    assert result.exit_code == 2 and message in result.output


def test_cli_before_purges_facts_only(config: Path) -> None:
    db = open_store(config.parent / "s.db")
    before = tables(db)
    day = _before_day()
    result = CliRunner().invoke(main, ["-c", str(config), "purge", "--before", day, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["mode"] == "before" and doc["before"] == day and doc["total_deleted"] > 0
    assert_exact(before, tables(db), retention.Counts(doc["deleted"]))
    assert set(doc["deleted"]) == {"daily_facts", "days", "intraday_totals"}


def test_the_data_checks_records_go_with_the_days_they_describe(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO day_revisions (source, route, date, detected_at, final_spend, new_spend) "
            "VALUES (?, ?, ?, ?, 1, 2)",
            [
                ("s", "user", "2025-01-10", "2025-01-11T00:00:00+00:00"),
                ("s", "user", "2026-11-20", "2026-11-21T00:00:00+00:00"),
            ],
        )
        db.conn.executemany(
            "INSERT INTO data_outages (source, started_at, ended_at, detected_at) VALUES (?, ?, ?, ?)",
            [
                ("s", "2025-01-10T10:00:00+00:00", "2025-01-10T14:00:00+00:00", "2025-01-10T12:00:00+00:00"),
                ("s", "2025-01-12T10:00:00+00:00", None, "2025-01-12T12:00:00+00:00"),  # still going: kept
                ("s", "2026-11-20T10:00:00+00:00", "2026-11-20T14:00:00+00:00", "2026-11-20T12:00:00+00:00"),
            ],
        )
    counts = purge_policy(db, now, RetentionSettings())  # 13 months of facts: from 2025-10-26
    assert counts.deleted["day_revisions"] == 1 and counts.deleted["data_outages"] == 1
    assert db.conn.execute("SELECT date FROM day_revisions").fetchall() == [("2026-11-20",)]
    assert db.conn.execute("SELECT COUNT(*) FROM data_outages").fetchone()[0] == 2
