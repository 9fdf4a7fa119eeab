"""Fitted baselines as plain JSON (never pickles), one document per source and entity kind."""

from __future__ import annotations

import json
from datetime import date, datetime

import sqlite_utils

from sentinel.detect.baseline import Baselines, from_json


def save(
    db: sqlite_utils.Database, source: str, kind: str, entities: tuple[str, ...], fitted: Baselines, fitted_at: datetime
) -> None:
    doc = fitted.to_json(entities)
    db.conn.execute(
        "INSERT OR REPLACE INTO baselines (source, kind, as_of, fitted_at, params) VALUES (?, ?, ?, ?, ?)",
        (source, kind, fitted.as_of.isoformat(), fitted_at.isoformat(), json.dumps(doc, separators=(",", ":"))),
    )


def load(db: sqlite_utils.Database, source: str, kind: str, as_of: date) -> tuple[tuple[str, ...], Baselines] | None:
    """The stored fit for predicting ``as_of``, if one was made for that day."""
    row = db.conn.execute(
        "SELECT params FROM baselines WHERE source = ? AND kind = ? AND as_of = ?", (source, kind, as_of.isoformat())
    ).fetchone()
    if row is None:
        return None
    doc = json.loads(row[0])
    return from_json(doc)


def fitted_at(db: sqlite_utils.Database, source: str) -> dict[str, tuple[str, str]]:
    """kind -> (as_of, fitted_at) of the stored fits, for status pages."""
    return {
        str(k): (str(a), str(f))
        for k, a, f in db.conn.execute("SELECT kind, as_of, fitted_at FROM baselines WHERE source = ?", (source,))
    }
