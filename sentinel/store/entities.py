"""Users, teams and keys with aliases, membership and budget fields, per source."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlite_utils

from sentinel.models import Budget, KeyRecord, KeyRef, TeamRecord, UserRecord


def _budget_cols(b: Budget) -> tuple[object, ...]:
    reset = b.budget_reset_at.isoformat() if b.budget_reset_at else None
    return (b.max_budget, b.spend, b.budget_duration, reset)


def upsert_users(db: sqlite_utils.Database, source: str, users: Iterable[UserRecord], seen_at: datetime) -> int:
    rows = [
        (
            source,
            u.user_id,
            u.alias,
            u.role,
            json.dumps(list(u.teams)),
            *_budget_cols(u.budget),
            seen_at.isoformat(),
        )
        for u in users
    ]
    db.conn.executemany(
        "INSERT OR REPLACE INTO users (source, user_id, alias, role, teams, max_budget, spend, budget_duration, "
        "budget_reset_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def upsert_teams(db: sqlite_utils.Database, source: str, teams: Iterable[TeamRecord], seen_at: datetime) -> int:
    rows = [
        (
            source,
            t.team_id,
            t.alias,
            json.dumps(list(t.members)),
            json.dumps(list(t.admins)),
            t.budget.max_budget,
            t.budget.soft_budget,
            *_budget_cols(t.budget)[1:],
            json.dumps(list(t.budget_limits), default=str),
            seen_at.isoformat(),
        )
        for t in teams
    ]
    db.conn.executemany(
        "INSERT OR REPLACE INTO teams (source, team_id, alias, members, admins, max_budget, soft_budget, spend, "
        "budget_duration, budget_reset_at, budget_limits, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def upsert_keys(db: sqlite_utils.Database, source: str, keys: Iterable[KeyRecord], seen_at: datetime) -> int:
    rows = [
        (
            source,
            k.token,
            k.alias,
            k.user_id,
            k.team_id,
            int(k.blocked),
            k.budget.max_budget,
            k.budget.soft_budget,
            *_budget_cols(k.budget)[1:],
            seen_at.isoformat(),
        )
        for k in keys
    ]
    db.conn.executemany(
        "INSERT OR REPLACE INTO keys (source, token, alias, user_id, team_id, blocked, max_budget, soft_budget, "
        "spend, budget_duration, budget_reset_at, in_key_list, seen_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        rows,
    )
    return len(rows)


def note_key_refs(db: sqlite_utils.Database, source: str, refs: Iterable[KeyRef], seen_at: datetime) -> None:
    """Keys seen in activity: owner and team from the key metadata, without clobbering /key/list data."""
    stamp = seen_at.isoformat()
    db.conn.executemany(
        "INSERT INTO keys (source, token, alias, user_id, team_id, seen_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (source, token) DO UPDATE SET "
        "alias = COALESCE(keys.alias, excluded.alias), user_id = COALESCE(keys.user_id, excluded.user_id), "
        "team_id = COALESCE(keys.team_id, excluded.team_id)",
        [(source, r.token, r.alias, r.user_id, r.team_id, stamp) for r in refs],
    )


def note_aliases(
    db: sqlite_utils.Database, source: str, table: str, aliases: dict[str, str], seen_at: datetime
) -> None:
    """Aliases seen in activity (user_alias / team_alias) for entities the lists did not return."""
    id_col = {"users": "user_id", "teams": "team_id"}[table]
    stamp = seen_at.isoformat()
    db.conn.executemany(
        f"INSERT INTO {table} (source, {id_col}, alias, seen_at) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (source, {id_col}) DO UPDATE SET alias = COALESCE({table}.alias, excluded.alias)",
        [(source, k, v, stamp) for k, v in aliases.items()],
    )


def aliases(db: sqlite_utils.Database, table: str, source: str | None = None) -> dict[str, str]:
    id_col = {"users": "user_id", "teams": "team_id", "keys": "token"}[table]
    sql = f"SELECT {id_col}, alias FROM {table} WHERE alias IS NOT NULL" + (" AND source = ?" if source else "")
    return {str(i): str(a) for i, a in db.conn.execute(sql, (source,) if source else ())}
