"""Opening the SQLite store: WAL, a busy timeout, and forward-only migrations.

The schema version is SQLite's ``user_version``; each migration runs in its own transaction,
so a crash mid-upgrade leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from sentinel.errors import StoreError

_V1 = """
        -- One counter set per source, UTC day, grain and entity. Re-reading a day replaces its rows.
        CREATE TABLE daily_facts (
            source TEXT NOT NULL,
            grain TEXT NOT NULL,
            date TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            detail_id TEXT NOT NULL DEFAULT '',
            spend REAL NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cache_read_input_tokens INTEGER NOT NULL,
            cache_creation_input_tokens INTEGER NOT NULL,
            api_requests INTEGER NOT NULL,
            successful_requests INTEGER NOT NULL,
            failed_requests INTEGER NOT NULL,
            PRIMARY KEY (source, grain, date, entity_id, detail_id)
        ) WITHOUT ROWID;
        -- No second index: readers take a whole grain over a date range (the primary key order),
        -- and every extra index would double the cost of a backfill's millions of inserts.

        -- Which days each route has been read for, and whether they can still change.
        CREATE TABLE days (
            source TEXT NOT NULL,
            route TEXT NOT NULL,
            date TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            final INTEGER NOT NULL,
            spend REAL NOT NULL,
            PRIMARY KEY (source, route, date)
        ) WITHOUT ROWID;

        CREATE TABLE users (
            source TEXT NOT NULL, user_id TEXT NOT NULL, alias TEXT, role TEXT, teams TEXT NOT NULL DEFAULT '[]',
            max_budget REAL, spend REAL, budget_duration TEXT, budget_reset_at TEXT,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (source, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE teams (
            source TEXT NOT NULL, team_id TEXT NOT NULL, alias TEXT,
            members TEXT NOT NULL DEFAULT '[]', admins TEXT NOT NULL DEFAULT '[]',
            max_budget REAL, soft_budget REAL, spend REAL, budget_duration TEXT, budget_reset_at TEXT,
            budget_limits TEXT NOT NULL DEFAULT '[]',
            seen_at TEXT NOT NULL,
            PRIMARY KEY (source, team_id)
        ) WITHOUT ROWID;
        CREATE TABLE keys (
            source TEXT NOT NULL, token TEXT NOT NULL, alias TEXT, user_id TEXT, team_id TEXT,
            blocked INTEGER NOT NULL DEFAULT 0,
            max_budget REAL, soft_budget REAL, spend REAL, budget_duration TEXT, budget_reset_at TEXT,
            in_key_list INTEGER NOT NULL DEFAULT 0,  -- 0: only known from activity (e.g. deleted keys)
            seen_at TEXT NOT NULL,
            PRIMARY KEY (source, token)
        ) WITHOUT ROWID;

        CREATE TABLE sync_state (
            source TEXT PRIMARY KEY,
            last_poll_at TEXT, last_success_at TEXT, last_error TEXT, last_error_at TEXT,
            backfill_since TEXT, backfill_until TEXT, backfill_cursor TEXT, backfill_done_at TEXT,
            entities_synced_at TEXT
        );

        -- Append-only record of every request Sentinel made (or refused to make).
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL, source TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
            query TEXT NOT NULL, status INTEGER, duration_ms REAL NOT NULL, bytes INTEGER NOT NULL,
            outcome TEXT NOT NULL
        );
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""

_V2 = """
        -- Today's running total at each poll: the intraday profile a same-day runaway is judged by.
        CREATE TABLE intraday_totals (
            source TEXT NOT NULL,
            date TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            spend REAL NOT NULL,
            PRIMARY KEY (source, date, taken_at)
        ) WITHOUT ROWID;

        -- What a source's proxy turned out to serve (JSON), so a fresh process does not re-learn it
        -- with a wasted call on every poll.
        ALTER TABLE sync_state ADD COLUMN capabilities TEXT;

        -- Fitted baseline parameters as plain JSON, reused by each tick until the next refit.
        CREATE TABLE baselines (
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            as_of TEXT NOT NULL,
            fitted_at TEXT NOT NULL,
            params TEXT NOT NULL,
            PRIMARY KEY (source, kind)
        ) WITHOUT ROWID;
"""

_V3 = """
        -- Budget signals already fired, one row per budget, window and signal ("threshold:80", "soft",
        -- "forecast"): each fires once per window, across restarts; a reset starts a new window.
        CREATE TABLE budget_signals (
            budget_id TEXT NOT NULL,
            period TEXT NOT NULL,
            signal TEXT NOT NULL,
            fired_at TEXT NOT NULL,
            spent REAL NOT NULL,
            alert TEXT,
            PRIMARY KEY (budget_id, period, signal)
        ) WITHOUT ROWID;
"""

_V4 = """
        -- Alert state: one row per condition (fingerprint), its current or last episode. A row that
        -- is firing and no longer found by an evaluation resolves (one resolved notice).
        CREATE TABLE alerts (
            fingerprint TEXT PRIMARY KEY,
            rule TEXT NOT NULL,
            status TEXT NOT NULL,              -- firing | resolved
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            labels TEXT NOT NULL,              -- JSON object
            record TEXT NOT NULL,              -- JSON: the numbers (anomaly / budget / threshold / absence)
            starts_at TEXT NOT NULL,
            ends_at TEXT,
            last_seen_at TEXT NOT NULL,
            resolve_notice INTEGER NOT NULL    -- 0: one-shot notices (budget signals) send no resolved notice
        ) WITHOUT ROWID;

        -- The outbox: what is to be sent to whom, written in the transaction that evaluated it.
        -- (receiver, fingerprint, episode, notice) is unique, so no evaluation, retry or restart
        -- queues a notice twice; ``notice`` says which message of the episode this is.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            receiver TEXT NOT NULL,
            group_key TEXT NOT NULL,
            group_labels TEXT NOT NULL,        -- JSON object
            fingerprint TEXT NOT NULL,
            episode TEXT NOT NULL,             -- the alert's starts_at
            notice TEXT NOT NULL,              -- firing | repeat@<time> | resolved
            alert TEXT NOT NULL,               -- JSON of the alert as sent
            created_at TEXT NOT NULL,
            not_before TEXT NOT NULL,          -- group_wait / group_interval
            state TEXT NOT NULL,               -- pending | claimed | sent | failed | silenced | inhibited
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_until TEXT,
            last_error TEXT,
            done_at TEXT,
            UNIQUE (receiver, fingerprint, episode, notice)
        );
        CREATE INDEX outbox_work ON outbox (state, receiver, id);
        CREATE INDEX outbox_alert ON outbox (receiver, fingerprint, id);

        -- Every attempt to send, whatever happened.
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            receiver TEXT NOT NULL,
            group_key TEXT NOT NULL,
            outbox_ids TEXT NOT NULL,          -- JSON list
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,             -- ok | retryable | permanent | silenced | inhibited
            detail TEXT NOT NULL,
            status INTEGER,
            duration_ms REAL NOT NULL
        );

        -- A receiver that failed waits before its next try, so its messages stay in order.
        CREATE TABLE receiver_backoff (
            receiver TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            retry_at TEXT NOT NULL
        ) WITHOUT ROWID;

        -- When a group last went out to a receiver (group_interval).
        CREATE TABLE route_groups (
            receiver TEXT NOT NULL,
            group_key TEXT NOT NULL,
            last_sent_at TEXT NOT NULL,
            PRIMARY KEY (receiver, group_key)
        ) WITHOUT ROWID;

        -- The rule files as last loaded without a problem: a process that starts (or a timer run)
        -- while an edit is broken keeps running these, and raises an operator alert.
        CREATE TABLE rule_snapshot (
            name TEXT PRIMARY KEY,             -- the file's name within the rules directory
            text TEXT NOT NULL,
            loaded_at TEXT NOT NULL
        ) WITHOUT ROWID;

        -- Silences (`sentinel silence add`): matchers (JSON list), who and why, and until when.
        CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers TEXT NOT NULL,
            author TEXT NOT NULL,
            comment TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
"""

_V5 = """
        -- Digests: one row per period (the scheduled time, UTC), audience ("all" or "team:<id>") and
        -- receiver, written before it is sent and marked after, so each goes out once per period
        -- across restarts (a crash mid-send sends it again: at least once).
        CREATE TABLE digests (
            period TEXT NOT NULL,
            audience TEXT NOT NULL,
            receiver TEXT NOT NULL,
            state TEXT NOT NULL,               -- pending | sent | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            sent_at TEXT,
            detail TEXT,
            PRIMARY KEY (period, audience, receiver)
        ) WITHOUT ROWID;

        -- What the daemon wants `sentinel status` to show: last tick, rule health, next digest (JSON).
        CREATE TABLE daemon_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID;
"""

_V6 = """
        -- Requests alongside spend in today's running total: logging that stopped shows as neither
        -- growing, while traffic that only fails still adds requests.
        ALTER TABLE intraday_totals ADD COLUMN requests INTEGER;

        -- A day already final whose total changed when it was read again (a late flush, a backfill
        -- on the proxy, a bug): kept so the change is reported once and can be audited.
        CREATE TABLE day_revisions (
            source TEXT NOT NULL,
            route TEXT NOT NULL,
            date TEXT NOT NULL,
            detected_at TEXT NOT NULL,
            final_spend REAL NOT NULL,         -- the total when it was final
            new_spend REAL NOT NULL,
            PRIMARY KEY (source, route, date, detected_at)
        ) WITHOUT ROWID;

        -- Spells when a source recorded nothing across every provider while traffic was expected
        -- (its logging broke): per-entity drops on those days are not anomalies.
        CREATE TABLE data_outages (
            source TEXT NOT NULL,
            started_at TEXT NOT NULL,          -- the last growth of the running total before it stopped
            ended_at TEXT,                     -- NULL while it lasts
            detected_at TEXT NOT NULL,
            PRIMARY KEY (source, started_at)
        ) WITHOUT ROWID;
"""

_V7 = """
        -- Every budget as the last alerting cycle over all sources evaluated it (budget.snapshot):
        -- what the web view shows, without evaluating thousands of forecasts for each page.
        CREATE TABLE budget_statuses (
            budget_id TEXT PRIMARY KEY,
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,               -- exceeded | at_risk | soft_exceeded | ok
            pct_used REAL,
            evaluated_at TEXT NOT NULL,
            status TEXT NOT NULL               -- JSON: what `sentinel budgets --format json` prints per budget
        ) WITHOUT ROWID;
        CREATE INDEX budget_statuses_entity ON budget_statuses (entity_type, entity_id);
        -- When that cycle ran (one row; kept apart so that a cycle that found no budget still counts).
        CREATE TABLE budget_evaluation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            evaluated_at TEXT NOT NULL
        );
"""

# Each entry is one schema version's SQL; append, never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
SCHEMA_VERSION = len(MIGRATIONS)


def open_store(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the store at ``path``."""
    target = Path(path)
    try:
        if str(path) != ":memory:":
            target.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions explicitly (BEGIN IMMEDIATE) where we write.
        conn = sqlite3.connect(str(target), isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: a backfill chunk's B-tree pages stay in memory
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, target)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {target}: {exc}") from None
    return sqlite_utils.Database(conn)


def open_reader(path: Path | str) -> sqlite_utils.Database:
    """Open an existing, migrated store read-only (a reader serving others: it can create, migrate
    or change nothing). StoreError if it is missing or of another schema version."""
    target = Path(path)
    try:
        conn = sqlite3.connect(
            f"{target.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=30.0,
            check_same_thread=False,
        )
        conn.execute("PRAGMA query_only=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store: {exc}") from None
    if version != SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"the store has schema version {version}, not {SCHEMA_VERSION}: open it with Sentinel first")
    return sqlite_utils.Database(conn)


def _migrate(conn: sqlite3.Connection, target: Path) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"the store {target} has schema version {current}, newer than this Sentinel knows "
            f"({SCHEMA_VERSION}); upgrade Sentinel"
        )
    for version in range(current, SCHEMA_VERSION):
        # executescript would commit an open transaction, so the script carries its own BEGIN/COMMIT.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
