"""Silences in the store (``silences``): matchers as a JSON list of matcher strings, times ISO-8601 UTC."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import sqlite_utils

from sentinel.route.matchers import parse
from sentinel.route.silences import Silence
from sentinel.store import transaction

_COLUMNS = "id, matchers, author, comment, starts_at, ends_at, created_at"


def add(db: sqlite_utils.Database, silence: Silence) -> None:
    """Store a new silence; ``ValueError`` if its id is taken."""
    try:
        with transaction(db):
            db.conn.execute(
                f"INSERT INTO silences ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    json.dumps([str(m) for m in silence.matchers]),
                    silence.author,
                    silence.comment,
                    _time(silence.starts_at),
                    _time(silence.ends_at),
                    _time(silence.created_at),
                ),
            )
    except sqlite3.IntegrityError:
        raise ValueError(f"a silence with id {silence.id} already exists") from None


def all_(db: sqlite_utils.Database) -> list[Silence]:
    """Every stored silence, pending, active or expired, oldest first."""
    rows = db.conn.execute(f"SELECT {_COLUMNS} FROM silences").fetchall()
    return sorted((_silence(row) for row in rows), key=lambda s: (s.created_at, s.id))


def active(db: sqlite_utils.Database, now: datetime) -> list[Silence]:
    """The silences active at ``now``, oldest first."""
    return [s for s in all_(db) if s.is_active(now)]


def get(db: sqlite_utils.Database, id_prefix: str) -> Silence:
    """The silence whose id is, or uniquely starts with, ``id_prefix``; ``KeyError`` if none or several."""
    prefix = id_prefix.strip()
    if not prefix:
        raise KeyError("give a silence id (or the start of one)")
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM silences WHERE substr(id, 1, ?) = ? ORDER BY id", (len(prefix), prefix)
    ).fetchall()
    exact = [row for row in rows if row[0] == prefix]
    if exact:
        return _silence(exact[0])
    if not rows:
        raise KeyError(f"no silence with an id starting {prefix!r}")
    if len(rows) > 1:
        ids = ", ".join(row[0] for row in rows)
        raise KeyError(f"{len(rows)} silences have ids starting {prefix!r} ({ids}); give more of the id")
    return _silence(rows[0])


def expire(db: sqlite_utils.Database, id: str, now: datetime) -> Silence:
    """End the silence ``id`` (or a unique id prefix) at ``now`` and return it as stored.

    A pending silence ends before it began: both its start and end become ``now``. A silence already
    expired at ``now`` raises ``ValueError``; an unknown id raises ``KeyError``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must carry a timezone (got {now.isoformat()})")
    now = now.astimezone(UTC)
    with transaction(db):
        silence = get(db, id)
        if silence.state(now) == "expired":
            raise ValueError(f"silence {silence.id} already expired at {silence.ends_at.isoformat()}")
        starts_at = min(silence.starts_at, now)
        db.conn.execute(
            "UPDATE silences SET starts_at = ?, ends_at = ? WHERE id = ?",
            (_time(starts_at), _time(now), silence.id),
        )
    return Silence(
        id=silence.id,
        matchers=silence.matchers,
        author=silence.author,
        comment=silence.comment,
        starts_at=starts_at,
        ends_at=now,
        created_at=silence.created_at,
    )


def _time(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"times must carry a timezone (got {at.isoformat()})")
    return at.astimezone(UTC).isoformat()


def _silence(row: tuple[str, str, str, str, str, str, str]) -> Silence:
    id_, matchers, author, comment, starts_at, ends_at, created_at = row
    return Silence(
        id=id_,
        matchers=tuple(parse(text) for text in json.loads(matchers)),
        author=author,
        comment=comment,
        starts_at=_parse_time(starts_at),
        ends_at=_parse_time(ends_at),
        created_at=_parse_time(created_at),
    )


def _parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
