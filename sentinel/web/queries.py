"""The web view's reads of daily spend: the query shapes that stay fast on a big store.

The primary key of ``daily_facts`` is (source, grain, date, entity, detail). So every read here
names the sources (``source IN``), which lets the key narrow it, and reads one entity's days as a
list of dates (a point look-up per day) instead of a date range (which would visit every entity of
those days). Two partial indexes (``INDEXES``) serve what the key cannot: the user grain by user
(per-user sums over a long period) and the model x key grain by model and key (what a team's,
user's, model's or key's spend went to).

Those indexes are not part of the schema: every insert pays for them (a backfill's writes take
about 2.5 times as long and the store grows by half, see benchmarks/web.py), so only a store the
web view is served from has them. ``prepare`` builds them, once, when the view starts; from then on
the syncs keep them current. Spend is summed over sources throughout, like the rest of Sentinel's
reports (with ``total()``, SQLite's float sum, which skips SUM's integer overflow checks).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from sentinel.models import Grain
from sentinel.store import transaction

# A per-user sum over more days than this reads the user index (every user-day, in user order:
# no sort) rather than the days' rows in key order (fewer rows, but sorted by user to be summed).
LONG_PERIOD_DAYS = 45
_BATCH = 400  # ids per statement (well under SQLite's limit on bound parameters)


# What the web view reads that the primary key cannot narrow: one user's days, one model's keys.
INDEXES = {
    "daily_facts_user_days": "ON daily_facts (entity_id, date, spend) WHERE grain = 'user'",
    "daily_facts_model_key": "ON daily_facts (entity_id, detail_id, date, spend) WHERE grain = 'model_key'",
}


def missing_indexes(db: sqlite_utils.Database) -> list[str]:
    """The web view's indexes this store does not have yet."""
    have = {str(r[0]) for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return [name for name in INDEXES if name not in have]


def prepare(db: sqlite_utils.Database) -> list[str]:
    """Build the indexes the web view reads by (``INDEXES``), if the store lacks them; the names built.
    Seconds on a store of millions of facts, once: the syncs keep them current afterwards."""
    missing = missing_indexes(db)
    for name in missing:
        with transaction(db):
            db.conn.execute(f"CREATE INDEX IF NOT EXISTS {name} {INDEXES[name]}")
    return missing


def sources(db: sqlite_utils.Database) -> tuple[str, ...]:
    """Every source with stored facts: one primary-key step per source, never a scan."""
    rows = db.conn.execute(
        "WITH RECURSIVE s(source) AS (SELECT MIN(source) FROM daily_facts UNION ALL "
        "SELECT (SELECT MIN(source) FROM daily_facts WHERE source > s.source) FROM s WHERE s.source IS NOT NULL) "
        "SELECT source FROM s WHERE source IS NOT NULL"
    )
    return tuple(str(r[0]) for r in rows)


def first_day(db: sqlite_utils.Database, srcs: Sequence[str]) -> date | None:
    """The first day any source has stored (the whole-proxy grain: one key step per source)."""
    if not srcs:
        return None
    row = db.conn.execute(
        f"SELECT MIN(date) FROM daily_facts WHERE source IN ({_marks(srcs)}) AND grain = ?",
        (*srcs, Grain.TOTAL.value),
    ).fetchone()
    return date.fromisoformat(str(row[0])) if row and row[0] else None


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _batches(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), _BATCH):
        yield values[i : i + _BATCH]


def series(
    db: sqlite_utils.Database, srcs: Sequence[str], grain: Grain, entity: str, first: date, last: date
) -> NDArray[np.float64]:
    """One entity's spend on each day first..last (0 where nothing is stored)."""
    wanted = days(first, last)
    out = np.zeros(len(wanted))
    if not srcs or not wanted:
        return out
    rows = db.conn.execute(
        f"SELECT date, total(spend) FROM daily_facts WHERE source IN ({_marks(srcs)}) AND grain = ? "
        f"AND date IN ({_marks(wanted)}) AND entity_id = ? GROUP BY date",
        (*srcs, grain.value, *wanted, entity),
    )
    for day, spend in rows:
        out[(date.fromisoformat(day) - first).days] = float(spend)
    return out


def spend_by_entity(
    db: sqlite_utils.Database, srcs: Sequence[str], grain: Grain, first: date, last: date
) -> dict[str, float]:
    """Spend per entity of ``grain`` over first..last."""
    if not srcs or last < first:
        return {}
    if grain == Grain.USER and (last - first).days + 1 > LONG_PERIOD_DAYS:
        rows = db.conn.execute(
            "SELECT entity_id, total(spend) FROM daily_facts INDEXED BY daily_facts_user_days "
            f"WHERE grain = 'user' AND date BETWEEN ? AND ? AND source IN ({_marks(srcs)}) GROUP BY entity_id",
            (first.isoformat(), last.isoformat(), *srcs),
        )
    else:
        rows = db.conn.execute(
            f"SELECT entity_id, total(spend) FROM daily_facts WHERE source IN ({_marks(srcs)}) AND grain = ? "
            "AND date BETWEEN ? AND ? GROUP BY entity_id",
            (*srcs, grain.value, first.isoformat(), last.isoformat()),
        )
    return {str(e): float(s) for e, s in rows}


def user_spend(
    db: sqlite_utils.Database, srcs: Sequence[str], users: Sequence[str], first: date, last: date
) -> dict[str, float]:
    """Spend of the listed users over first..last (a range of the user index per user)."""
    out: dict[str, float] = {}
    for batch in _batches(list(users)) if srcs else ():
        rows = db.conn.execute(
            "SELECT entity_id, total(spend) FROM daily_facts INDEXED BY daily_facts_user_days "
            f"WHERE grain = 'user' AND entity_id IN ({_marks(batch)}) AND date BETWEEN ? AND ? "
            f"AND source IN ({_marks(srcs)}) GROUP BY entity_id",
            (*batch, first.isoformat(), last.isoformat(), *srcs),
        )
        out.update({str(e): float(s) for e, s in rows})
    return out


def models(db: sqlite_utils.Database, srcs: Sequence[str], first: date, last: date) -> list[str]:
    """The models with stored spend on first..last (the model grain: a few rows a day)."""
    if not srcs:
        return []
    rows = db.conn.execute(
        f"SELECT DISTINCT entity_id FROM daily_facts WHERE source IN ({_marks(srcs)}) AND grain = 'model' "
        "AND date BETWEEN ? AND ? ORDER BY entity_id",
        (*srcs, first.isoformat(), last.isoformat()),
    )
    return [str(r[0]) for r in rows]


def model_key_spend(
    db: sqlite_utils.Database,
    srcs: Sequence[str],
    models_: Sequence[str],
    period: tuple[date, date, date],
    keys: Sequence[str] | None = None,
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(model, key) -> spend over a period and over the period before it, for the listed models and
    (if given) only the listed keys. ``period`` is (the first day before, the first day, the last
    day). One pass over a range of the model x key index per model (and key) serves both periods:
    reading them apart would walk each model's entries twice."""
    this: dict[tuple[str, str], float] = {}
    before: dict[tuple[str, str], float] = {}
    if not srcs or not models_ or (keys is not None and not keys):
        return this, before
    previous_first, first, last = period
    for model_batch in _batches(list(models_)):
        if keys is None:
            statements = [(f"entity_id IN ({_marks(model_batch)})", (*model_batch,))]
        else:
            statements = [
                (
                    f"entity_id IN ({_marks(model_batch)}) AND detail_id IN ({_marks(key_batch)})",
                    (*model_batch, *key_batch),
                )
                for key_batch in _batches(list(keys))
            ]
        for where, params in statements:
            rows = db.conn.execute(
                # Grouped in the index's order (no sort), each period summed apart.
                "SELECT entity_id, detail_id, total(CASE WHEN date >= ?1 THEN spend END), "
                "total(CASE WHEN date < ?1 THEN spend END), max(date >= ?1), min(date >= ?1) "
                "FROM daily_facts INDEXED BY daily_facts_model_key "
                f"WHERE grain = 'model_key' AND {where} AND date BETWEEN ? AND ? AND source IN ({_marks(srcs)}) "
                "GROUP BY entity_id, detail_id",
                (first.isoformat(), *params, previous_first.isoformat(), last.isoformat(), *srcs),
            )
            for model, key, spend, spend_before, has_this, only_this in rows:
                if has_this:
                    this[(str(model), str(key))] = float(spend)
                if not only_this:
                    before[(str(model), str(key))] = float(spend_before)
    return this, before


def has_facts(db: sqlite_utils.Database, srcs: Sequence[str], grain: Grain, entity: str) -> bool:
    """Whether any spend of this entity is stored (for the small grains, and users by their index)."""
    if not srcs:
        return False
    within = f"AND source IN ({_marks(srcs)}) LIMIT 1"
    if grain == Grain.USER:
        sql = "SELECT 1 FROM daily_facts INDEXED BY daily_facts_user_days WHERE grain = 'user' AND entity_id = ? "
        return db.conn.execute(sql + within, (entity, *srcs)).fetchone() is not None
    if grain == Grain.MODEL:
        sql = "SELECT 1 FROM daily_facts INDEXED BY daily_facts_model_key WHERE grain = 'model_key' AND entity_id = ? "
        if db.conn.execute(sql + within, (entity, *srcs)).fetchone() is not None:
            return True
    row = db.conn.execute(
        f"SELECT 1 FROM daily_facts WHERE source IN ({_marks(srcs)}) AND grain = ? AND entity_id = ? LIMIT 1",
        (*srcs, grain.value, entity),
    ).fetchone()
    return row is not None
