"""Per-source sync checkpoint and health, and the append-only audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import sqlite_utils

from sentinel.egress import AuditRecord


@dataclass(frozen=True, slots=True)
class SyncState:
    source: str
    last_poll_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    backfill_since: str | None = None
    backfill_until: str | None = None
    backfill_cursor: str | None = None  # last day of the last chunk committed
    backfill_done_at: str | None = None
    entities_synced_at: str | None = None


def failing(state: SyncState) -> bool:
    """The last poll failed: an error was recorded after the last success (or with none yet)."""
    if not state.last_error_at:
        return False
    if not state.last_success_at:
        return True
    return datetime.fromisoformat(state.last_error_at) > datetime.fromisoformat(state.last_success_at)


def is_up(state: SyncState) -> bool:
    """The source has been read, and its last poll succeeded."""
    return bool(state.last_success_at) and not failing(state)


def get_state(db: sqlite_utils.Database, source: str) -> SyncState:
    row = db.conn.execute(
        "SELECT source, last_poll_at, last_success_at, last_error, last_error_at, backfill_since, "
        "backfill_until, backfill_cursor, backfill_done_at, entities_synced_at FROM sync_state WHERE source = ?",
        (source,),
    ).fetchone()
    return SyncState(*row) if row else SyncState(source)


def _upsert(db: sqlite_utils.Database, source: str, **values: str | None) -> None:
    cols = ", ".join(values)
    marks = ", ".join("?" * len(values))
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    db.conn.execute(
        f"INSERT INTO sync_state (source, {cols}) VALUES (?, {marks}) ON CONFLICT (source) DO UPDATE SET {updates}",
        (source, *values.values()),
    )


def mark_success(db: sqlite_utils.Database, source: str, at: datetime) -> None:
    _upsert(db, source, last_poll_at=at.isoformat(), last_success_at=at.isoformat(), last_error=None)


def mark_error(db: sqlite_utils.Database, source: str, at: datetime, error: str) -> None:
    _upsert(db, source, last_poll_at=at.isoformat(), last_error=error, last_error_at=at.isoformat())


def mark_entities_synced(db: sqlite_utils.Database, source: str, at: datetime) -> None:
    _upsert(db, source, entities_synced_at=at.isoformat())


def start_backfill(db: sqlite_utils.Database, source: str, since: date, until: date) -> None:
    _upsert(
        db,
        source,
        backfill_since=since.isoformat(),
        backfill_until=until.isoformat(),
        backfill_cursor=None,
        backfill_done_at=None,
    )


def advance_backfill(db: sqlite_utils.Database, source: str, cursor: date) -> None:
    _upsert(db, source, backfill_cursor=cursor.isoformat())


def finish_backfill(db: sqlite_utils.Database, source: str, at: datetime) -> None:
    _upsert(db, source, backfill_done_at=at.isoformat())


def record_audit(db: sqlite_utils.Database, record: AuditRecord) -> None:
    db.conn.execute(
        "INSERT INTO audit_log (at, source, method, path, query, status, duration_ms, bytes, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.at.isoformat(),
            record.source,
            record.method,
            record.path,
            record.query,
            record.status,
            record.duration_ms,
            record.bytes,
            record.outcome,
        ),
    )


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    state: SyncState
    days_stored: int
    first_day: str | None
    last_day: str | None
    final_days: int
    audit_calls: int


def source_status(db: sqlite_utils.Database, source: str) -> SourceStatus:
    days, first, last, final = db.conn.execute(
        "SELECT COUNT(*), MIN(date), MAX(date), COALESCE(SUM(final), 0) FROM days WHERE source = ? AND route = 'user'",
        (source,),
    ).fetchone()
    calls = db.conn.execute("SELECT COUNT(*) FROM audit_log WHERE source = ?", (source,)).fetchone()[0]
    return SourceStatus(source, get_state(db, source), int(days), first, last, int(final), int(calls))


def known_sources(db: sqlite_utils.Database) -> list[str]:
    return [str(r[0]) for r in db.conn.execute("SELECT source FROM sync_state ORDER BY source")]


def get_capabilities(db: sqlite_utils.Database, source: str) -> dict[str, object]:
    row = db.conn.execute("SELECT capabilities FROM sync_state WHERE source = ?", (source,)).fetchone()
    if not row or not row[0]:
        return {}
    loaded = json.loads(row[0])
    return loaded if isinstance(loaded, dict) else {}


def set_capabilities(db: sqlite_utils.Database, source: str, capabilities: dict[str, object]) -> None:
    _upsert(db, source, capabilities=json.dumps(capabilities, sort_keys=True))
