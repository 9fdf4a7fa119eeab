"""Daily facts: replace a route's days atomically, and read them back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date, datetime

import sqlite_utils

from sentinel.models import METRIC_FIELDS, DailyActivity, Grain

_COLUMNS = ("source", "grain", "date", "entity_id", "detail_id", *METRIC_FIELDS)
_INSERT = f"INSERT INTO daily_facts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def replace_days(
    db: sqlite_utils.Database,
    source: str,
    route: str,
    grains: Iterable[Grain],
    activity: DailyActivity,
    *,
    final: frozenset[date],
    fetched_at: datetime,
) -> int:
    """Replace every fact of ``grains`` on ``activity.dates``; call inside a transaction.

    Replacing (not adding) makes a re-read idempotent, and drops entities that vanished from a
    day that was re-read. Returns the number of rows written.
    """
    conn = db.conn
    grain_list = list(grains)
    day_strs = [d.isoformat() for d in activity.dates]
    if not day_strs:
        return 0
    g_marks = ",".join("?" * len(grain_list))
    lo, hi = min(day_strs), max(day_strs)
    conn.execute(
        f"DELETE FROM daily_facts WHERE source = ? AND grain IN ({g_marks}) AND date BETWEEN ? AND ?",
        (source, *grain_list, lo, hi),
    )
    wanted = set(grain_list)
    kept = [f for f in activity.facts if f.grain in wanted]
    day_text = {d: d.isoformat() for d in activity.dates}
    # Grain is a str enum, so it binds as its text; rows go in primary-key order for B-tree locality.
    rows = sorted((source, f.grain, day_text[f.date], f.entity_id, f.detail_id, *f.metrics) for f in kept)
    conn.executemany(_INSERT, rows)
    # The day's spend as this route saw it: the total grain, or the sum over its only grain (teams).
    spend_by_day: dict[str, float] = dict.fromkeys(day_strs, 0.0)
    total_grain = Grain.TOTAL if Grain.TOTAL in wanted else grain_list[0]
    for f in kept:
        if f.grain == total_grain:
            spend_by_day[day_text[f.date]] += f.spend
    stamp = fetched_at.isoformat()
    _note_revisions(conn, source, route, spend_by_day, stamp)
    conn.executemany(
        "INSERT OR REPLACE INTO days (source, route, date, fetched_at, final, spend) VALUES (?, ?, ?, ?, ?, ?)",
        [(source, route, d, stamp, int(date.fromisoformat(d) in final), spend) for d, spend in spend_by_day.items()],
    )
    return len(rows)


def _note_revisions(conn: sqlite3.Connection, source: str, route: str, spend: dict[str, float], stamp: str) -> None:
    """Days that were final and now read a different total: the proxy changed history."""
    marks = ",".join("?" * len(spend))
    before = conn.execute(
        f"SELECT date, spend FROM days WHERE source = ? AND route = ? AND final = 1 AND date IN ({marks})",
        (source, route, *spend),
    ).fetchall()
    changed = [(source, route, d, stamp, old, spend[d]) for d, old in before if abs(spend[d] - old) > REVISION_EPSILON]
    conn.executemany(
        "INSERT OR REPLACE INTO day_revisions (source, route, date, detected_at, final_spend, new_spend) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        changed,
    )


REVISION_EPSILON = 1e-6  # float noise of a re-summed day; what counts as a real change is config (quality)


def revisions_since(db: sqlite_utils.Database, since: datetime) -> list[tuple[str, str, str, str, float, float]]:
    """(source, route, date, detected_at, final spend, new spend) detected at or after ``since``."""
    cur = db.conn.execute(
        "SELECT source, route, date, detected_at, final_spend, new_spend FROM day_revisions "
        "WHERE detected_at >= ? ORDER BY detected_at, source, route, date",
        (since.isoformat(),),
    )
    return [(str(a), str(b), str(c), str(d), float(e), float(f)) for a, b, c, d, e, f in cur]


def spend_by_entity(
    db: sqlite_utils.Database, grain: Grain, start: date, end: date, source: str | None = None
) -> list[tuple[str, float]]:
    """Total spend per entity of ``grain`` over start..end, largest first."""
    sql = (
        "SELECT entity_id, SUM(spend) FROM daily_facts WHERE grain = ? AND date BETWEEN ? AND ?"
        + (" AND source = ?" if source else "")
        + " GROUP BY entity_id ORDER BY SUM(spend) DESC"
    )
    params: tuple[str, ...] = (grain.value, start.isoformat(), end.isoformat())
    if source:
        params += (source,)
    return [(str(e), float(s)) for e, s in db.conn.execute(sql, params)]


def facts_for(
    db: sqlite_utils.Database, source: str, grain: Grain, start: date, end: date
) -> dict[tuple[str, str, str], tuple[float, ...]]:
    """(date, entity, detail) -> metrics, for comparisons and reports."""
    cur = db.conn.execute(
        f"SELECT date, entity_id, detail_id, {', '.join(METRIC_FIELDS)} FROM daily_facts "
        "WHERE source = ? AND grain = ? AND date BETWEEN ? AND ?",
        (source, grain.value, start.isoformat(), end.isoformat()),
    )
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in cur}


def stored_days(db: sqlite_utils.Database, source: str, route: str = "user") -> list[tuple[str, bool]]:
    cur = db.conn.execute("SELECT date, final FROM days WHERE source = ? AND route = ? ORDER BY date", (source, route))
    return [(str(d), bool(f)) for d, f in cur]


def mark_final(db: sqlite_utils.Database, source: str, days: Iterable[date]) -> None:
    """Days checked unchanged after they settled: final for every route."""
    db.conn.executemany(
        "UPDATE days SET final = 1 WHERE source = ? AND date = ?", [(source, d.isoformat()) for d in days]
    )


def record_intraday(db: sqlite_utils.Database, source: str, day: date, taken_at: datetime) -> None:
    """Snapshot today's stored running total (call right after today's facts were replaced)."""
    db.conn.execute(
        "INSERT OR REPLACE INTO intraday_totals (source, date, taken_at, spend, requests) "
        "SELECT source, date, ?, spend, api_requests FROM daily_facts "
        "WHERE source = ? AND grain = 'total' AND date = ?",
        (taken_at.isoformat(), source, day.isoformat()),
    )


def intraday_snapshots(
    db: sqlite_utils.Database, start: date, end: date, source: str | None = None
) -> tuple[list[tuple[str, datetime, float]], dict[str, float]]:
    """(date, taken_at, running total) snapshots and each day's final stored total, summed over sources."""
    where = "date BETWEEN ? AND ?" + (" AND source = ?" if source else "")
    params: list[str] = [start.isoformat(), end.isoformat(), *([source] if source else [])]
    snaps = [
        (str(d), datetime.fromisoformat(t), float(s))
        for d, t, s in db.conn.execute(
            f"SELECT date, taken_at, SUM(spend) FROM intraday_totals WHERE {where} GROUP BY date, taken_at", params
        )
    ]
    finals = {
        str(d): float(s)
        for d, s in db.conn.execute(
            f"SELECT date, SUM(spend) FROM daily_facts WHERE grain = 'total' AND {where} GROUP BY date", params
        )
    }
    return snaps, finals
