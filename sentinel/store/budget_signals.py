"""Which budget signals have fired in which window (``budget_signals``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlite_utils


def fired(db: sqlite_utils.Database, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], frozenset[str]]:
    """(budget_id, period) -> names of the signals already fired in that window."""
    wanted = set(keys)
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    if not wanted:
        return {}
    for budget_id, period, signal in db.conn.execute("SELECT budget_id, period, signal FROM budget_signals"):
        if (budget_id, period) in wanted:
            out[(budget_id, period)].add(signal)
    return {k: frozenset(v) for k, v in out.items()}


def record(
    db: sqlite_utils.Database,
    budget_id: str,
    period: str,
    names: Iterable[str],
    at: datetime,
    spent: float,
    alert: dict[str, object] | None,
) -> None:
    """Mark signals fired (inside the caller's transaction); a name already there stays as it was."""
    body = json.dumps(alert, default=str) if alert is not None else None
    db.conn.executemany(
        "INSERT OR IGNORE INTO budget_signals (budget_id, period, signal, fired_at, spent, alert) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(budget_id, period, name, at.isoformat(), spent, body) for name in names],
    )
