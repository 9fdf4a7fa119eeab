"""Daily series from the store as polars frames and dense (series x day) matrices.

Missing days are zero (the proxy simply has no rows for them); the last day may be partial and
is marked so by the caller, who knows the time of day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import sqlite_utils
from numpy.typing import NDArray

from sentinel.models import METRIC_FIELDS, Grain

# The entity kinds anomalies are reported for, and the stored grain each reads.
ENTITY_GRAINS: dict[str, Grain] = {
    "provider": Grain.PROVIDER,
    "user": Grain.USER,
    "team": Grain.TEAM,
    "model": Grain.MODEL,
    "key": Grain.KEY,
}


def load_daily(
    db: sqlite_utils.Database,
    grain: Grain,
    start: date,
    end: date,
    source: str | None = None,
    metrics: tuple[str, ...] = METRIC_FIELDS,
) -> pl.DataFrame:
    """Stored facts of one grain as a frame: date, entity_id, and the counters (summed over sources)."""
    if not set(metrics) <= set(METRIC_FIELDS):
        raise ValueError(f"unknown metrics {sorted(set(metrics) - set(METRIC_FIELDS))}")
    where = "grain = ? AND date BETWEEN ? AND ?" + (" AND source = ?" if source else "")
    params: list[str] = [grain.value, start.isoformat(), end.isoformat()]
    if source:
        params.append(source)
    sums = ", ".join(f"SUM({m})" for m in metrics)
    rows = db.conn.execute(
        f"SELECT date, entity_id, {sums} FROM daily_facts WHERE {where} GROUP BY date, entity_id", params
    ).fetchall()
    schema: dict[str, pl.DataType] = {"date": pl.Utf8(), "entity_id": pl.Utf8()}
    schema.update({m: pl.Float64() for m in metrics})
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.col("date").str.to_date())


@dataclass(frozen=True)
class SeriesMatrix:
    """Dense daily values: one row per entity, one column per day from ``start`` (zeros filled in)."""

    entities: tuple[str, ...]
    start: date
    values: NDArray[np.float64]  # shape (n_entities, n_days)

    @property
    def days(self) -> int:
        return int(self.values.shape[1])

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def index_of(self, day: date) -> int:
        return (day - self.start).days


def to_matrix(frame: pl.DataFrame, column: str, start: date, end: date) -> SeriesMatrix:
    """Pivot a long frame (date, entity_id, column) into a zero-filled entity x day matrix."""
    n_days = (end - start).days + 1
    if frame.is_empty():
        return SeriesMatrix((), start, np.zeros((0, n_days)))
    entities = frame.get_column("entity_id").unique().sort()
    index = {e: i for i, e in enumerate(entities.to_list())}
    rows = frame.get_column("entity_id").replace_strict(index, return_dtype=pl.Int64).to_numpy()
    cols = np.array([(d - start).days for d in frame.get_column("date").to_list()], dtype=np.int64)
    keep = (cols >= 0) & (cols < n_days)
    values = np.zeros((len(index), n_days))
    np.add.at(values, (rows[keep], cols[keep]), frame.get_column(column).to_numpy()[keep])
    return SeriesMatrix(tuple(entities.to_list()), start, values)


def daily_series(
    db: sqlite_utils.Database, kind: str, start: date, today: date, source: str | None = None
) -> pl.DataFrame:
    """One row per entity and day from ``start`` to ``today``: spend, tokens, requests; missing days
    are zero, and ``partial`` marks today, which is still running."""
    frame = load_daily(db, ENTITY_GRAINS[kind], start, today, source)
    days = pl.DataFrame({"date": pl.date_range(start, today, interval="1d", eager=True)})
    entities = frame.select("entity_id").unique()
    grid = entities.join(days, how="cross")
    full = grid.join(frame, on=["entity_id", "date"], how="left").with_columns(
        [pl.col(m).fill_null(0.0) for m in METRIC_FIELDS]
    )
    return full.with_columns((pl.col("date") == today).alias("partial")).sort(["entity_id", "date"])
