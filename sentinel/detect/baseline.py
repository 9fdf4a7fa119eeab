"""Robust seasonal baselines, fitted for every series at once (numpy over a series x day matrix).

Per series, from the days before the scored day:
- weekday factors: per-weekday medians over the last 8 weeks relative to the overall median,
  shrunk toward the population's weekday profile when a series has little data;
- level and trend: the median of the deseasonalised last 14 days, and a Theil-Sen slope over
  the last 28 (medians and pairwise slopes, so a past spike cannot drag the baseline);
- spread: the MAD of the deseasonalised residuals, floored relative to the level;
- sparse series (most days zero) are modelled as "active or not" plus the usual size of an
  active day, never as a z-score on zeros;
- series with too little history borrow a prior from their cohort (a user's team) or say
  "insufficient history" instead of guessing.
Everything is deterministic; fitted parameters serialise to plain JSON.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

WEEKS = 8
LEVEL_DAYS = 14
TREND_DAYS = 28
MIN_DENSE_DAYS = 14
SPARSE_ZERO_SHARE = 0.5
MIN_SPARSE_ACTIVE = 4

DENSE, SPARSE, PRIOR, INSUFFICIENT = "dense", "sparse", "prior", "insufficient"


@dataclass(frozen=True)
class Baselines:
    """Fitted parameters for n series as of ``as_of`` (the first day they predict)."""

    as_of: date
    method: tuple[str, ...]  # per series: dense | sparse | prior | insufficient
    level: FloatArray  # deseasonalised level at as_of (dense), or mean of an active day (sparse/prior)
    slope: FloatArray  # per day (dense only)
    weekday: FloatArray  # (n, 7) multiplicative factors, Monday = 0
    scale: FloatArray  # spread of a day around the expectation (dense), or log-spread (sparse/prior)
    active_rate: FloatArray  # share of days with spend (sparse/prior); 1 for dense
    history_days: NDArray[np.int64]  # days since the series' first spend, within the fit window
    weekday_active: FloatArray  # (n, 7) share of each weekday with spend (intermittent weekends)
    active_level: FloatArray  # median spend of a day with spend
    active_log_scale: FloatArray  # log-spread of days with spend

    def expected(self, day: date) -> FloatArray:
        """Expected spend of each series on ``day`` (point forecast)."""
        w = day.weekday()
        ahead = (day - self.as_of).days
        dense = np.maximum(self.level + self.slope * (ahead + (LEVEL_DAYS + 1) / 2), 0.0) * self.weekday[:, w]
        sparse = self.active_rate * self.level
        return np.where(np.array(self.method) == DENSE, dense, sparse)

    def to_json(self, entities: tuple[str, ...]) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "series": {
                e: {
                    "method": self.method[i],
                    "level": round(float(self.level[i]), 9),
                    "slope": round(float(self.slope[i]), 9),
                    "weekday": [round(float(x), 6) for x in self.weekday[i]],
                    "scale": round(float(self.scale[i]), 9),
                    "active_rate": round(float(self.active_rate[i]), 6),
                    "history_days": int(self.history_days[i]),
                    "weekday_active": [round(float(x), 4) for x in self.weekday_active[i]],
                    "active_level": round(float(self.active_level[i]), 9),
                    "active_log_scale": round(float(self.active_log_scale[i]), 6),
                }
                for i, e in enumerate(entities)
            },
        }


def from_json(doc: dict[str, object]) -> tuple[tuple[str, ...], Baselines]:
    """The inverse of ``Baselines.to_json``: (entities, baselines)."""
    series = doc["series"]
    assert isinstance(series, dict)
    entities = tuple(series)
    rows = [series[e] for e in entities]
    return entities, Baselines(
        as_of=date.fromisoformat(str(doc["as_of"])),
        method=tuple(str(r["method"]) for r in rows),
        level=np.array([r["level"] for r in rows], dtype=np.float64),
        slope=np.array([r["slope"] for r in rows], dtype=np.float64),
        weekday=np.array([r["weekday"] for r in rows], dtype=np.float64).reshape(len(rows), 7),
        scale=np.array([r["scale"] for r in rows], dtype=np.float64),
        active_rate=np.array([r["active_rate"] for r in rows], dtype=np.float64),
        history_days=np.array([r["history_days"] for r in rows], dtype=np.int64),
        weekday_active=np.array([r["weekday_active"] for r in rows], dtype=np.float64).reshape(len(rows), 7),
        active_level=np.array([r["active_level"] for r in rows], dtype=np.float64),
        active_log_scale=np.array([r["active_log_scale"] for r in rows], dtype=np.float64),
    )


def _weekday_of(start: date, n_days: int) -> NDArray[np.int64]:
    return (np.arange(n_days) + start.weekday()) % 7


def _quiet(reduce: Callable[..., Any], x: FloatArray, axis: int) -> FloatArray:
    """A NaN-ignoring reduction where an all-NaN row is simply NaN, without a RuntimeWarning."""
    if x.shape[axis] == 0:
        shape = list(x.shape)
        del shape[axis]
        return np.full(shape, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(reduce(x, axis=axis), dtype=np.float64)


def nanmedian(x: FloatArray, axis: int) -> FloatArray:
    """The median ignoring NaNs (NaN where a row has none), exactly as ``np.nanmedian`` computes it.

    Sorting once and picking the middle values is several times faster than numpy's own path for
    short rows (a masked-array median), which dominated a fit of a few series."""
    if x.ndim == 0 or x.shape[axis] == 0:
        return _quiet(np.nanmedian, x, axis)
    ordered = np.sort(x, axis=axis)  # NaNs sort last
    counts = np.sum(~np.isnan(x), axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum((counts - 1) // 2, 0), axis=axis)
    high = np.take_along_axis(ordered, np.minimum(counts // 2, x.shape[axis] - 1), axis=axis)
    with np.errstate(all="ignore"):
        middle = (low + high) / 2.0
    return np.asarray(np.squeeze(np.where(counts == 0, np.nan, middle), axis=axis), dtype=np.float64)


def nanmin(x: FloatArray, axis: int) -> FloatArray:
    return _quiet(np.nanmin, x, axis)


def nanmean(x: FloatArray, axis: int) -> FloatArray:
    return _quiet(np.nanmean, x, axis)


def nanvar(x: FloatArray, axis: int) -> FloatArray:
    return _quiet(np.nanvar, x, axis)


def recent_life(history: FloatArray, as_of: date) -> tuple[FloatArray, date, NDArray[np.int64], NDArray[np.bool_]]:
    """The last WEEKS weeks of ``history`` (ending the day before ``as_of``): (values, first day,
    index of each series' first day with spend, mask of the days from then on). A series' life
    starts at its first spend, so a new user's earlier zeros are not counted as quiet days."""
    t = history.shape[1]
    window = min(t, WEEKS * 7)
    recent = history[:, t - window :]
    positive = recent > 0
    first = np.where(positive.any(axis=1), positive.argmax(axis=1), window).astype(np.int64)
    in_life = np.arange(window)[None, :] >= first[:, None]
    return recent, as_of - timedelta(days=window), first, in_life


def weekday_factors(
    history: FloatArray, start: date, active: NDArray[np.bool_], *, independent: bool = False
) -> FloatArray:
    """(n, 7) factors: each weekday's median over the overall median, shrunk toward the population.

    ``independent``: each row is its own population (what fitting that row alone gives), so rows
    that are one series at several dates can be fitted in one call."""
    _n, t = history.shape
    wd = _weekday_of(start, t)
    masked = np.where(active, history, np.nan)
    overall = nanmedian(masked, axis=1)
    per_day = np.stack([nanmedian(masked[:, wd == w], axis=1) for w in range(7)], axis=1)
    counts = np.stack([np.sum(active[:, wd == w], axis=1) for w in range(7)], axis=1).astype(float)
    with np.errstate(all="ignore"):
        raw = per_day / overall[:, None]
    raw = np.where(np.isfinite(raw), raw, np.nan)
    # Population profile: the median factor over series with enough data (a robust org-wide week).
    if independent:
        population = np.where(counts >= 3, raw, np.nan)
        population = np.where(np.isfinite(population), population, 1.0)
        population = population / population.mean(axis=1, keepdims=True)
    else:
        population = nanmedian(np.where(counts >= 3, raw, np.nan), axis=0)
        population = np.where(np.isfinite(population), population, 1.0)
        population = (population / population.mean())[None, :]
    weight = counts / (counts + 3.0)  # shrink a series' own factor toward the population when data is thin
    own = np.where(np.isnan(raw), population, raw)
    factors = weight * own + (1 - weight) * population
    factors = np.clip(factors, 0.05, 20.0)
    return np.asarray(factors / factors.mean(axis=1, keepdims=True), dtype=np.float64)


def theil_sen_slope(values: FloatArray) -> FloatArray:
    """Median of pairwise slopes per row (NaNs ignored): robust to a few outlying days."""
    _n, t = values.shape
    i, j = np.triu_indices(t, k=1)
    with np.errstate(all="ignore"):
        slopes = (values[:, j] - values[:, i]) / (j - i)
    out = nanmedian(slopes, axis=1)
    return np.where(np.isfinite(out), out, 0.0)


def fit(
    history: FloatArray,
    start: date,
    as_of: date,
    *,
    cohort: NDArray[np.int64] | None = None,
    min_scale_share: float = 0.1,
    min_scale_usd: float = 0.1,
    independent: bool = False,
) -> Baselines:
    """Fit every row of ``history`` (days start .. as_of - 1) for predicting ``as_of`` onward.

    ``cohort`` gives each series a cohort index (e.g. its team) whose members lend a prior to
    series with too little history; -1 or None means no cohort. ``independent``: no row lends
    anything to another (no cohort, no shared weekday profile), so each row's fit is the one it
    would get alone; for one series' history seen from several days (see ``digest.build.daily_points``).
    """
    if independent and cohort is not None:
        raise ValueError("independent rows have no cohort")
    n, t = history.shape
    if (start + timedelta(days=t)) != as_of:
        raise ValueError("history must end the day before as_of")
    recent, recent_start, first, in_life = recent_life(history, as_of)
    window = recent.shape[1]
    positive = recent > 0
    history_days = (window - first).astype(np.int64)
    active_days = positive.sum(axis=1)
    zero_share = 1.0 - active_days / np.maximum(history_days, 1)

    # --- dense: weekday factors, level, trend, spread (on the series' life only)
    factors = weekday_factors(recent, recent_start, in_life, independent=independent)
    wd = _weekday_of(recent_start, window)
    deseason = recent / factors[:, wd]
    deseason = np.where(in_life, deseason, np.nan)
    level_part = deseason[:, -LEVEL_DAYS:]
    level = nanmedian(level_part, axis=1)
    trend_part = deseason[:, -TREND_DAYS:]
    slope = theil_sen_slope(trend_part)
    # A trend may not extrapolate more than 3 % of the level per day: growth, not a forecast of a spike.
    cap = 0.03 * np.abs(np.nan_to_num(level))
    slope = np.clip(slope, -cap, cap)
    # The level is the median of the last LEVEL_DAYS, so it sits (LEVEL_DAYS + 1) / 2 days back.
    centre = (LEVEL_DAYS + 1) / 2
    fitted = level[:, None] + slope[:, None] * (np.arange(-trend_part.shape[1], 0) + centre)
    resid = trend_part - fitted
    mad = nanmedian(np.abs(resid - nanmedian(resid, axis=1)[:, None]), axis=1) * 1.4826
    scale = np.maximum(np.nan_to_num(mad), np.maximum(min_scale_share * np.nan_to_num(level), min_scale_usd))

    # --- sparse: active rate and the usual size of an active day (log scale)
    logs = np.where(positive & in_life, np.log(np.where(positive, recent, 1.0)), np.nan)
    log_median = nanmedian(logs, axis=1)
    log_mad = nanmedian(np.abs(logs - log_median[:, None]), axis=1) * 1.4826
    log_scale = np.maximum(np.nan_to_num(log_mad), 0.35)
    active_rate = active_days / np.maximum(history_days, 1)
    sparse_level = np.exp(np.nan_to_num(log_median))

    method = np.full(n, INSUFFICIENT, dtype=object)
    dense = (history_days >= MIN_DENSE_DAYS) & (zero_share <= SPARSE_ZERO_SHARE)
    sparse = ~dense & (active_days >= MIN_SPARSE_ACTIVE) & (history_days >= MIN_DENSE_DAYS)
    method[dense] = DENSE
    method[sparse] = SPARSE

    out_level = np.where(dense, np.nan_to_num(level), sparse_level)
    out_scale = np.where(dense, scale, log_scale)
    out_rate = np.where(dense, 1.0, active_rate)

    # --- cold start: borrow the cohort's typical active day
    if cohort is not None:
        established = dense | sparse
        for c in np.unique(cohort[cohort >= 0]):
            members = (cohort == c) & established
            cold = (cohort == c) & ~established
            if not members.any() or not cold.any():
                continue
            # the cohort's typical active day and its spread, from members' own log medians
            member_logs = np.log(np.maximum(np.where(dense, np.nan_to_num(level), sparse_level)[members], 1e-9))
            centre_log = float(np.median(member_logs))
            spread = float(np.median(np.abs(member_logs - centre_log)) * 1.4826) if members.sum() > 1 else 1.0
            out_level[cold] = np.exp(centre_log)
            out_scale[cold] = max(spread, 0.35) + 0.25  # wider than a member's own spread: it is a prior
            out_rate[cold] = 1.0
            method[cold] = PRIOR
    in_life_days = np.stack([np.sum(in_life[:, wd == w], axis=1) for w in range(7)], axis=1)
    active_by_day = np.stack([np.sum((positive & in_life)[:, wd == w], axis=1) for w in range(7)], axis=1)
    weekday_active = np.where(in_life_days > 0, active_by_day / np.maximum(in_life_days, 1), 1.0)
    return Baselines(
        weekday_active=np.asarray(weekday_active, dtype=np.float64),
        active_level=np.asarray(np.where(active_days > 0, sparse_level, 0.0), dtype=np.float64),
        active_log_scale=np.asarray(log_scale, dtype=np.float64),
        as_of=as_of,
        method=tuple(str(m) for m in method),
        level=np.asarray(out_level, dtype=np.float64),
        slope=np.where(dense, slope, 0.0),
        weekday=np.where(dense[:, None], factors, 1.0),
        scale=np.asarray(out_scale, dtype=np.float64),
        active_rate=np.asarray(out_rate, dtype=np.float64),
        history_days=history_days,
    )
