"""Alert state (``alerts``): the current or last episode of every condition, by fingerprint."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlite_utils

from sentinel.notify.model import Alert


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def to_json(alert: Alert) -> str:
    return json.dumps(
        {
            "fingerprint": alert.fingerprint,
            "status": alert.status,
            "rule": alert.rule,
            "severity": alert.severity,
            "summary": alert.summary,
            "labels": dict(alert.labels),
            "starts_at": alert.starts_at.isoformat(),
            "ends_at": _iso(alert.ends_at),
            "record": dict(alert.record),
            "one_shot": alert.one_shot,
            "expires_at": _iso(alert.expires_at),
        },
        default=str,
        sort_keys=True,
    )


def from_json(text: str) -> Alert:
    d = json.loads(text)
    return Alert(
        fingerprint=d["fingerprint"],
        status=d["status"],
        rule=d["rule"],
        severity=d["severity"],
        summary=d["summary"],
        labels=d["labels"],
        starts_at=datetime.fromisoformat(d["starts_at"]),
        ends_at=datetime.fromisoformat(d["ends_at"]) if d.get("ends_at") else None,
        record=d.get("record") or {},
        one_shot=bool(d.get("one_shot")),
        expires_at=datetime.fromisoformat(d["expires_at"]) if d.get("expires_at") else None,
    )


def load(db: sqlite_utils.Database, *, status: str | None = None) -> dict[str, Alert]:
    where, params = (" WHERE status = ?", [status]) if status else ("", [])
    rows = db.conn.execute(
        "SELECT fingerprint, rule, status, severity, summary, labels, record, starts_at, ends_at, "
        f"resolve_notice, last_seen_at FROM alerts{where}",
        params,
    )
    out = {}
    for fp, rule, st, sev, summary, labels, record, starts, ends, resolve_notice, _seen in rows:
        extra = json.loads(record)
        expires = extra.pop("_expires_at", None)
        out[fp] = Alert(
            fingerprint=fp,
            status=st,
            rule=rule,
            severity=sev,
            summary=summary,
            labels=json.loads(labels),
            starts_at=datetime.fromisoformat(starts),
            ends_at=datetime.fromisoformat(ends) if ends else None,
            record=extra,
            one_shot=not resolve_notice,
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )
    return out


def save(db: sqlite_utils.Database, alerts: Iterable[Alert], now: datetime) -> None:
    """Upsert alert state (inside the caller's transaction)."""
    rows = []
    for a in alerts:
        record = dict(a.record)
        if a.expires_at is not None:
            record["_expires_at"] = a.expires_at.isoformat()
        rows.append(
            (
                a.fingerprint,
                a.rule,
                a.status,
                a.severity,
                a.summary,
                json.dumps(dict(a.labels), sort_keys=True),
                json.dumps(record, default=str, sort_keys=True),
                a.starts_at.isoformat(),
                _iso(a.ends_at),
                now.isoformat(),
                0 if a.one_shot else 1,
            )
        )
    db.conn.executemany(
        "INSERT INTO alerts (fingerprint, rule, status, severity, summary, labels, record, starts_at, ends_at, "
        "last_seen_at, resolve_notice) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (fingerprint) DO UPDATE SET rule = excluded.rule, status = excluded.status, "
        "severity = excluded.severity, summary = excluded.summary, labels = excluded.labels, "
        "record = excluded.record, starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
        "last_seen_at = excluded.last_seen_at, resolve_notice = excluded.resolve_notice",
        rows,
    )
