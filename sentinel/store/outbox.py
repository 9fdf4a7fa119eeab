"""The outbox (``outbox``, ``delivery_attempts``, ``receiver_backoff``, ``route_groups``).

Rows are written in the evaluation's transaction; the delivery worker claims them with a lease,
sends, and records the outcome. A claim whose worker died expires and is claimed again, so every
row is sent at least once; (receiver, fingerprint, episode, notice) is unique, so nothing is queued twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from sentinel.notify.model import Alert
from sentinel.notify.plan import Entry, LastNotice
from sentinel.store import alerts as alert_store


@dataclass(frozen=True)
class Row:
    id: int
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    fingerprint: str
    notice: str
    alert: Alert
    created_at: datetime
    attempts: int


def enqueue(db: sqlite_utils.Database, entries: Iterable[Entry], now: datetime) -> int:
    """Queue notices (inside the caller's transaction); one already queued is left as it is."""
    before = db.conn.total_changes
    db.conn.executemany(
        "INSERT OR IGNORE INTO outbox (receiver, group_key, group_labels, fingerprint, episode, notice, alert, "
        "created_at, not_before, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
        [
            (
                e.receiver,
                e.group_key,
                json.dumps(dict(e.group_labels), sort_keys=True),
                e.alert.fingerprint,
                e.episode,
                e.notice,
                alert_store.to_json(e.alert),
                now.isoformat(),
                e.not_before.isoformat(),
            )
            for e in entries
        ],
    )
    return db.conn.total_changes - before


def last_notices(db: sqlite_utils.Database, fingerprints: Iterable[str]) -> dict[tuple[str, str], LastNotice]:
    """(receiver, fingerprint) -> the latest notice queued for it."""
    wanted = set(fingerprints)
    out: dict[tuple[str, str], LastNotice] = {}
    if not wanted:
        return out
    rows = db.conn.execute(
        "SELECT receiver, fingerprint, notice, state, created_at, episode FROM outbox "
        "WHERE id IN (SELECT MAX(id) FROM outbox GROUP BY receiver, fingerprint)"
    ).fetchall()
    told = {
        (r, fp, ep): (bool(on_way), sent)
        for r, fp, ep, on_way, sent in db.conn.execute(
            "SELECT receiver, fingerprint, episode, MAX(state IN ('sent', 'pending', 'claimed')), "
            "MAX(CASE WHEN state = 'sent' THEN done_at END) FROM outbox GROUP BY receiver, fingerprint, episode"
        )
    }
    for receiver, fp, notice, state, created, episode in rows:
        if fp in wanted:
            was_told, sent = told.get((receiver, fp, episode), (False, None))
            out[(receiver, fp)] = LastNotice(
                notice,
                state,
                datetime.fromisoformat(created),
                episode,
                was_told,
                datetime.fromisoformat(sent) if sent else None,
            )
    return out


def group_sent(db: sqlite_utils.Database) -> dict[tuple[str, str], datetime]:
    return {
        (r, g): datetime.fromisoformat(t)
        for r, g, t in db.conn.execute("SELECT receiver, group_key, last_sent_at FROM route_groups")
    }


def release_expired_claims(db: sqlite_utils.Database, now: datetime) -> int:
    """Claims whose worker died (lease over) go back to pending: they were maybe sent, maybe not."""
    cur = db.conn.execute(
        "UPDATE outbox SET state = 'pending', claimed_until = NULL WHERE state = 'claimed' AND claimed_until < ?",
        (now.isoformat(),),
    )
    return cur.rowcount


def pending_receivers(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.conn.execute("SELECT DISTINCT receiver FROM outbox WHERE state = 'pending' ORDER BY 1")]


def due_groups(db: sqlite_utils.Database, receiver: str, now: datetime) -> list[list[Row]]:
    """A receiver's due rows, grouped by group key, oldest group first (ids keep the queue order)."""
    rows = db.conn.execute(
        "SELECT id, receiver, group_key, group_labels, fingerprint, notice, alert, created_at, attempts FROM outbox "
        "WHERE state = 'pending' AND receiver = ? AND not_before <= ? ORDER BY id",
        (receiver, now.isoformat()),
    ).fetchall()
    groups: dict[str, list[Row]] = {}
    for rid, rec, gk, gl, fp, notice, alert, created, attempts in rows:
        groups.setdefault(gk, []).append(
            Row(
                rid,
                rec,
                gk,
                json.loads(gl),
                fp,
                notice,
                alert_store.from_json(alert),
                datetime.fromisoformat(created),
                attempts,
            )
        )
    return list(groups.values())


def claim(db: sqlite_utils.Database, ids: Sequence[int], until: datetime) -> list[int]:
    """Claim rows still pending (inside a transaction); returns the ids this worker now holds."""
    got = []
    for rid in ids:
        cur = db.conn.execute(
            "UPDATE outbox SET state = 'claimed', claimed_until = ?, attempts = attempts + 1 "
            "WHERE id = ? AND state = 'pending'",
            (until.isoformat(), rid),
        )
        if cur.rowcount:
            got.append(rid)
    return got


def finish(db: sqlite_utils.Database, ids: Sequence[int], state: str, now: datetime, error: str | None = None) -> None:
    db.conn.executemany(
        "UPDATE outbox SET state = ?, claimed_until = NULL, done_at = ?, last_error = ? WHERE id = ?",
        [(state, now.isoformat(), error, rid) for rid in ids],
    )


def release(db: sqlite_utils.Database, ids: Sequence[int], error: str) -> None:
    """Back to pending after a retryable failure."""
    db.conn.executemany(
        "UPDATE outbox SET state = 'pending', claimed_until = NULL, last_error = ? WHERE id = ?",
        [(error, rid) for rid in ids],
    )


def record_attempt(
    db: sqlite_utils.Database,
    receiver: str,
    group_key: str,
    ids: Sequence[int],
    at: datetime,
    outcome: str,
    detail: str,
    status: int | None,
    duration_ms: float,
) -> None:
    db.conn.execute(
        "INSERT INTO delivery_attempts (receiver, group_key, outbox_ids, at, outcome, detail, status, duration_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (receiver, group_key, json.dumps(list(ids)), at.isoformat(), outcome, detail, status, duration_ms),
    )


def mark_group_sent(db: sqlite_utils.Database, receiver: str, group_key: str, at: datetime) -> None:
    db.conn.execute(
        "INSERT INTO route_groups (receiver, group_key, last_sent_at) VALUES (?, ?, ?) "
        "ON CONFLICT (receiver, group_key) DO UPDATE SET last_sent_at = excluded.last_sent_at",
        (receiver, group_key, at.isoformat()),
    )


def backoff(db: sqlite_utils.Database, receiver: str) -> tuple[int, datetime | None]:
    row = db.conn.execute("SELECT failures, retry_at FROM receiver_backoff WHERE receiver = ?", (receiver,)).fetchone()
    return (0, None) if row is None else (int(row[0]), datetime.fromisoformat(row[1]))


def set_backoff(db: sqlite_utils.Database, receiver: str, failures: int, retry_at: datetime | None) -> None:
    if retry_at is None:
        db.conn.execute("DELETE FROM receiver_backoff WHERE receiver = ?", (receiver,))
        return
    db.conn.execute(
        "INSERT INTO receiver_backoff (receiver, failures, retry_at) VALUES (?, ?, ?) "
        "ON CONFLICT (receiver) DO UPDATE SET failures = excluded.failures, retry_at = excluded.retry_at",
        (receiver, failures, retry_at.isoformat()),
    )


def depth(db: sqlite_utils.Database) -> dict[str, int]:
    """Rows per state (for `sentinel status` and tests)."""
    return {s: int(n) for s, n in db.conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")}
