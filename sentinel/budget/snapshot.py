"""The last full budget evaluation, kept in the store for readers that cannot afford one.

Every alerting cycle over all sources computes every budget's status and forecast (seconds on a
big proxy). It keeps the result in ``budget_statuses``, one row per budget, in the transaction
that records its alerts: the document ``sentinel budgets --format json`` prints for the budget
(``budget.report.to_json``), with the columns readers filter and sort by. The web view reads the
rows it shows from there instead of evaluating again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlite_utils

from sentinel.budget.model import STATES, BudgetStatus
from sentinel.budget.report import to_json

_RANK = "CASE state " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATES)) + " ELSE 9 END"
_ORDER = f"{_RANK}, COALESCE(pct_used, 0) DESC, entity_type, name, budget_id"
_BATCH = 400


def save(db: sqlite_utils.Database, statuses: Iterable[BudgetStatus], now: datetime) -> None:
    """Replace the kept evaluation with ``statuses`` (inside the caller's transaction)."""
    stamp = now.isoformat()
    rows = []
    for s in statuses:
        doc = to_json(s)
        rows.append(
            (
                s.spec.budget_id,
                s.spec.entity_type,
                s.spec.entity_id,
                s.spec.display,
                s.state,
                doc["pct_used"],
                stamp,
                orjson.dumps(doc).decode(),
            )
        )
    db.conn.execute("DELETE FROM budget_statuses")
    db.conn.execute("INSERT OR REPLACE INTO budget_evaluation (id, evaluated_at) VALUES (1, ?)", (stamp,))
    db.conn.executemany(
        "INSERT OR REPLACE INTO budget_statuses (budget_id, entity_type, entity_id, name, state, pct_used, "
        "evaluated_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def evaluated_at(db: sqlite_utils.Database) -> datetime | None:
    """When the kept evaluation was made (None: no cycle has kept one)."""
    row = db.conn.execute("SELECT evaluated_at FROM budget_evaluation WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return None
    at = datetime.fromisoformat(str(row[0]))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """Budgets per state (every state, 0 included)."""
    out = dict.fromkeys(STATES, 0)
    for state, n in db.conn.execute("SELECT state, COUNT(*) FROM budget_statuses GROUP BY state"):
        out[str(state)] = int(n)
    return out


def page(db: sqlite_utils.Database, state: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
    """Budgets worst first (state, then % used), ``limit`` of them from ``offset``; one state or all."""
    where, params = ("WHERE state = ?", [state]) if state else ("", [])
    rows = db.conn.execute(
        f"SELECT status FROM budget_statuses {where} ORDER BY {_ORDER} LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [orjson.loads(r[0]) for r in rows]


def of(db: sqlite_utils.Database, entities: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The budgets of these (entity type, entity id) pairs, worst first."""
    by_type: dict[str, list[str]] = {}
    for etype, eid in entities:
        by_type.setdefault(etype, []).append(eid)
    found: list[tuple[Any, ...]] = []
    for etype, ids in sorted(by_type.items()):
        unique: Sequence[str] = sorted(set(ids))
        for i in range(0, len(unique), _BATCH):
            batch = unique[i : i + _BATCH]
            found += db.conn.execute(
                f"SELECT {_RANK}, -COALESCE(pct_used, 0), entity_type, name, budget_id, status FROM budget_statuses "
                f"WHERE entity_type = ? AND entity_id IN ({','.join('?' * len(batch))})",
                (etype, *batch),
            ).fetchall()
    found.sort(key=lambda r: r[:5])
    return [orjson.loads(r[5]) for r in found]
