"""`sentinel report`: spend, tokens and requests for a period, grouped, against the period before.

The store has no joint grain for every pair of dimensions (the API has none), so a report picks
the finest grain that holds all its dimensions, and the exact one where it can:

    nothing, or day/week/month only   total            (the whole proxy)
    one of provider/model/team/user/key
                                      that grain       (exact)
    provider + model                  model            (a model's provider is its prefix)
    two or more of key/user/team      key              (each key's owner and team from the key list)
    model or provider with key/user/team
                                      model_key        (per model, per key; owner and team from the key list)

Pure functions over polars frames (:func:`summarize`) with the store read at the edge (:func:`load`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
import sqlite_utils

from sentinel.models import METRIC_FIELDS, Grain

DIMENSIONS = ("provider", "model", "team", "user", "key", "day", "week", "month")
TIME_DIMENSIONS = ("day", "week", "month")
ENTITY_GRAIN = {
    "provider": Grain.PROVIDER,
    "model": Grain.MODEL,
    "team": Grain.TEAM,
    "user": Grain.USER,
    "key": Grain.KEY,
}
# Every stored counter but the split of requests into successes and failures.
COUNTERS = tuple(f for f in METRIC_FIELDS if f not in ("successful_requests", "failed_requests"))
NO_TEAM = "(no team)"
UNASSIGNED = "Unassigned"


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # inclusive

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> Period:
        """The period of the same length just before."""
        return Period(self.since - timedelta(days=self.days), self.since - timedelta(days=1))


def grain_for(by: Sequence[str]) -> Grain:
    entities = [d for d in by if d not in TIME_DIMENSIONS]
    if not entities:
        return Grain.TOTAL
    if len(entities) == 1:
        return ENTITY_GRAIN[entities[0]]
    kinds = set(entities)
    if kinds <= {"provider", "model"}:
        return Grain.MODEL
    if kinds <= {"key", "user", "team"}:
        return Grain.KEY
    return Grain.MODEL_KEY


# ---------------------------------------------------------------------------------------------- the edge
def load(db: sqlite_utils.Database, grain: Grain, since: date, until: date, source: str | None = None) -> pl.DataFrame:
    """Facts of one grain as a frame: date, entity_id, detail_id and the counters, summed over
    sources unless ``source`` is given; with each key's owner and team where keys are involved."""
    where = "f.grain = ? AND f.date BETWEEN ? AND ?" + (" AND f.source = ?" if source else "")
    params: list[str] = [grain.value, since.isoformat(), until.isoformat(), *([source] if source else [])]
    key_column = "f.entity_id" if grain == Grain.KEY else "f.detail_id"
    rows = db.conn.execute(
        f"SELECT f.date, f.entity_id, f.detail_id, k.user_id, k.team_id, "
        f"{', '.join(f'SUM(f.{c})' for c in COUNTERS)} FROM daily_facts f "
        f"LEFT JOIN keys k ON k.source = f.source AND k.token = {key_column} "
        f"WHERE {where} GROUP BY f.date, f.entity_id, f.detail_id",
        params,
    ).fetchall()
    schema: dict[str, pl.DataType] = {
        "date": pl.Utf8(),
        "entity_id": pl.Utf8(),
        "detail_id": pl.Utf8(),
        "owner": pl.Utf8(),
        "key_team": pl.Utf8(),
    }
    schema.update({c: pl.Float64() for c in COUNTERS})
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(pl.col("date").str.to_date())


def names(db: sqlite_utils.Database) -> dict[str, dict[str, str]]:
    """Aliases to show next to ids: team, user and key."""
    out: dict[str, dict[str, str]] = {"team": {}, "user": {}, "key": {}}
    for table, column, kind in (("teams", "team_id", "team"), ("users", "user_id", "user"), ("keys", "token", "key")):
        for ident, alias in db.conn.execute(f"SELECT {column}, alias FROM {table} WHERE alias IS NOT NULL"):
            out[kind][str(ident)] = str(alias)
    return out


# ---------------------------------------------------------------------------------------------- pure
def dimensions(frame: pl.DataFrame, grain: Grain, by: Sequence[str]) -> pl.DataFrame:
    """Add one column per requested dimension, named after it."""
    columns: list[pl.Expr] = []
    model = pl.col("entity_id")
    key = pl.col("entity_id") if grain == Grain.KEY else pl.col("detail_id")
    for dim in by:
        if dim == "day":
            columns.append(pl.col("date").cast(pl.Utf8).alias("day"))
        elif dim == "week":
            monday = pl.col("date") - pl.duration(days=pl.col("date").dt.weekday() - 1)
            columns.append(monday.cast(pl.Utf8).alias("week"))
        elif dim == "month":
            columns.append(pl.col("date").dt.strftime("%Y-%m").alias("month"))
        elif grain == ENTITY_GRAIN.get(dim):  # the grain of this very dimension: its entity
            columns.append(pl.col("entity_id").alias(dim))
        elif dim == "model":
            columns.append(model.alias("model"))
        elif dim == "provider":
            # The provider of a model as logged ("openai/gpt-4o-mini"); the bare name has none.
            columns.append(
                pl.when(model.str.contains("/"))
                .then(model.str.split("/").list.first())
                .otherwise(pl.lit("unknown"))
                .alias("provider")
            )
        elif dim == "key":
            columns.append(key.alias("key"))
        elif dim == "user":
            columns.append(pl.col("owner").fill_null(UNASSIGNED).alias("user"))
        elif dim == "team":
            columns.append(pl.col("key_team").fill_null(NO_TEAM).alias("team"))
    return frame.with_columns(columns)


def summarize(current: pl.DataFrame, previous: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """One row per group: the counters, the previous period's spend and the change, and the
    effective price per million tokens; largest spend first."""
    keys = list(by)

    def totals(frame: pl.DataFrame) -> pl.DataFrame:
        sums = [pl.col(c).sum() for c in COUNTERS]
        if not keys:
            return frame.select(sums)
        return frame.group_by(keys).agg(sums)

    now = totals(current)
    before = totals(previous).select([*keys, pl.col("spend").alias("previous_spend")])
    time_dims = [d for d in keys if d in TIME_DIMENSIONS]
    if keys and not time_dims:
        # A group new in this period spent nothing before (its change in % is then undefined).
        joined = now.join(before, on=keys, how="full", coalesce=True).with_columns(
            pl.col("previous_spend").fill_null(0.0)
        )
    elif not keys:
        joined = now.with_columns(before.get_column("previous_spend"))
    else:
        # Grouped by time too: "the period before" of a day is no day of this period, so no change.
        joined = now.with_columns(pl.lit(None, dtype=pl.Float64).alias("previous_spend"))
    tokens = pl.col("prompt_tokens") + pl.col("completion_tokens")
    out = joined.with_columns([pl.col(c).fill_null(0.0) for c in COUNTERS]).with_columns(
        (pl.col("spend") - pl.col("previous_spend")).alias("change"),
        pl.when(pl.col("previous_spend") > 0)
        .then(100.0 * (pl.col("spend") - pl.col("previous_spend")) / pl.col("previous_spend"))
        .otherwise(None)
        .alias("change_pct"),
        pl.when(tokens > 0).then(1e6 * pl.col("spend") / tokens).otherwise(None).alias("usd_per_1m_tokens"),
    )
    order = ["spend", *keys] if keys else ["spend"]
    return out.sort(order, descending=[True] + [False] * (len(order) - 1), nulls_last=True)


def build(
    db: sqlite_utils.Database, period: Period, by: Sequence[str], source: str | None = None
) -> tuple[pl.DataFrame, Grain]:
    grain = grain_for(by)
    previous = period.previous()
    current = dimensions(load(db, grain, period.since, period.until, source), grain, by)
    before = dimensions(load(db, grain, previous.since, previous.until, source), grain, by)
    return summarize(current, before, by), grain


# ---------------------------------------------------------------------------------------------- output
OUTPUT_COLUMNS = (
    "spend",
    "previous_spend",
    "change",
    "change_pct",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "usd_per_1m_tokens",
)


def records(frame: pl.DataFrame, by: Sequence[str], aliases: dict[str, dict[str, str]]) -> list[dict[str, object]]:
    out = []
    for row in frame.iter_rows(named=True):
        record: dict[str, object] = {}
        for dim in by:
            record[dim] = row[dim]
            if dim in aliases and row[dim] in aliases[dim]:
                record[f"{dim}_name"] = aliases[dim][row[dim]]
        for column in OUTPUT_COLUMNS:
            value = row[column]
            if isinstance(value, float) and column not in ("spend", "previous_spend", "change"):
                value = round(value, 4) if column in ("change_pct", "usd_per_1m_tokens") else int(value)
            elif isinstance(value, float):
                value = round(value, 6)
            record[column] = value
        out.append(record)
    return out


def to_csv(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(period: Period, by: Sequence[str], grain: Grain, rows: list[dict[str, object]]) -> str:
    previous = period.previous()
    doc = {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "previous": {"since": previous.since.isoformat(), "until": previous.until.isoformat()},
        "by": list(by),
        "grain": grain.value,
        "rows": rows,
    }
    return json.dumps(doc, indent=2)
