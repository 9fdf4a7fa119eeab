"""Where spend will be when a budget window ends: the entity's weekly pattern carried forward, not a line.

For each remaining day a seasonal baseline of the mean gives an expected spend and a spread (per
weekday, at the entity's current level; see ``day_moments``); today counts only for the share of a
normal day still to come (the intraday profile) and the window's last day only up to the reset.
The projection's uncertainty has two parts: day-to-day noise, which partly cancels over many days,
and the uncertainty of the level itself, which does not (every remaining day shares it, and it grows
the further ahead a day is). The breach probability, interval and ETA all come from that one
distribution. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from statistics import NormalDist

import numpy as np

from sentinel.detect.baseline import INSUFFICIENT, LEVEL_DAYS, FloatArray, nanmean, nanmedian, nanvar, recent_life

# The level may wander: its relative uncertainty grows by this much per sqrt(day) ahead. Chosen on
# benchmarks/budget_forecast.py: 0.04 gives a quarter fewer false warnings than 0 for 2 days less lead.
LEVEL_DRIFT = 0.04
CLIP_MADS = 3.0  # a day above the usual active day by more than 3 robust log-spreads is a spike
MAX_LEVEL_RATIO = 3.0  # the last 14 days may move the weekly pattern by at most this factor
MIN_HISTORY_DAYS = 7
_STANDARD = NormalDist()  # the stdlib's normal: the same numbers as scipy's, without its per-call overhead
MIN_LEVEL_REL_SD = 0.05  # even a perfectly steady history does not know next month to better than 5 %


@dataclass(frozen=True)
class DayMoments:
    """Expected spend and variance per series and UTC day from ``first`` (n series x d days)."""

    first: date
    mean: FloatArray
    var: FloatArray
    level_rel_sd: FloatArray  # per series: relative uncertainty of the level, shared by every day
    method: tuple[str, ...]
    history_days: tuple[int, ...]

    def row(self, index: int) -> SeriesMoments | None:
        if self.method[index] == INSUFFICIENT:
            return None
        return SeriesMoments(
            self.first,
            self.mean[index],
            self.var[index],
            float(self.level_rel_sd[index]),
            self.method[index],
            self.history_days[index],
        )


@dataclass(frozen=True)
class SeriesMoments:
    first: date
    mean: FloatArray
    var: FloatArray
    level_rel_sd: float
    method: str
    history_days: int


def day_moments(history: FloatArray, as_of: date, n_days: int) -> DayMoments:
    """Moments of every series for the ``n_days`` UTC days from ``as_of``, from ``history`` (series x
    days, ending the day before ``as_of``).

    Budgets care about sums, so this is a model of the mean, not of the typical day: per weekday, the
    mean of the last 8 weeks with spikes clipped (a one-off spike is an anomaly, not a run rate; days
    without spend count as zeros), scaled by how the last 14 days compare with those weekday means
    (a level that moved). Spread per weekday from the same clipped days.
    """
    n = history.shape[0]
    recent, start, first, in_life = recent_life(history, as_of)
    window = recent.shape[1]
    positive = recent > 0
    life = window - first
    # Clip spikes at the median active day + CLIP_MADS robust spreads (on the log scale: spend is skewed).
    logs = np.where(positive, np.log(np.where(positive, recent, 1.0)), np.nan)
    centre = nanmedian(logs, axis=1)
    spread = np.maximum(np.nan_to_num(nanmedian(np.abs(logs - centre[:, None]), axis=1) * 1.4826), 0.25)
    cap = np.exp(np.nan_to_num(centre) + CLIP_MADS * spread)
    clipped = np.where(in_life, np.minimum(recent, cap[:, None]), np.nan)
    wd = (np.arange(window) + start.weekday()) % 7
    weekday_mean = np.stack([nanmean(clipped[:, wd == w], 1) for w in range(7)], axis=1)
    weekday_var = np.stack([nanvar(clipped[:, wd == w], 1) for w in range(7)], axis=1)
    overall = nanmean(clipped, 1)
    weekday_mean = np.where(np.isnan(weekday_mean), overall[:, None], weekday_mean)
    weekday_var = np.where(np.isnan(weekday_var), nanvar(clipped, 1)[:, None], weekday_var)
    # Level: the last 14 days against what the weekday means say they should have been.
    last = clipped[:, -LEVEL_DAYS:]
    expected_last = weekday_mean[:, wd[-LEVEL_DAYS:]]
    with np.errstate(all="ignore"):
        ratio = np.nansum(last, axis=1) / np.nansum(np.where(np.isnan(last), np.nan, expected_last), axis=1)
    ratio = np.clip(np.where(np.isfinite(ratio), ratio, 1.0), 1 / MAX_LEVEL_RATIO, MAX_LEVEL_RATIO)
    days = (np.arange(n_days) + as_of.weekday()) % 7
    mean = weekday_mean[:, days] * ratio[:, None]
    var = weekday_var[:, days] * ratio[:, None] ** 2
    daily_sd = np.sqrt(nanmean(weekday_var, 1))
    with np.errstate(all="ignore"):
        rel = daily_sd / (np.maximum(overall, 1e-9) * np.sqrt(np.minimum(np.maximum(life, 1), LEVEL_DAYS)))
    rel = np.maximum(np.nan_to_num(rel, nan=1.0, posinf=1.0), MIN_LEVEL_REL_SD)
    method = tuple(INSUFFICIENT if life[i] < MIN_HISTORY_DAYS else "weekday-mean" for i in range(n))
    return DayMoments(as_of, np.nan_to_num(mean), np.nan_to_num(var), rel, method, tuple(int(x) for x in life))


@dataclass(frozen=True)
class Forecast:
    at_end: float  # expected spend when the window ends
    lower: float  # central interval of the spend at window end
    upper: float
    p_breach: float  # probability the limit is reached before the window ends
    eta: datetime | None  # when the expected path reaches the limit (None: it does not, in this window)
    eta_earliest: datetime | None  # when the upper edge of the interval reaches it
    method: str
    history_days: int
    interval: float


ShareOfDay = Callable[[datetime], float]


def uniform_share(moment: datetime) -> float:
    t = moment.astimezone(UTC)
    return (t.hour * 3600 + t.minute * 60 + t.second) / 86400


def project(
    spent: float,
    limit: float | None,
    as_of: datetime,
    end: datetime,
    m: SeriesMoments,
    *,
    share: ShareOfDay = uniform_share,
    interval: float = 0.9,
) -> Forecast:
    """Spend at ``end`` given ``spent`` at ``as_of``, with the chance and the time of crossing ``limit``."""
    z = _STANDARD.inv_cdf(0.5 + interval / 2)
    segments = _segments(as_of, end, m, share)
    cum_mean = np.cumsum([s[1] for s in segments]) if segments else np.zeros(0)
    cum_var = np.cumsum([s[2] for s in segments]) if segments else np.zeros(0)
    means = np.array([seg[1] for seg in segments]) if segments else np.zeros(0)
    ahead = np.arange(1, len(means) + 1)
    rel = np.sqrt(m.level_rel_sd**2 + LEVEL_DRIFT**2 * ahead)
    cum_sd = np.sqrt(cum_var + np.cumsum(means * rel) ** 2)
    total_mean = float(cum_mean[-1]) if len(cum_mean) else 0.0
    total_sd = float(cum_sd[-1]) if len(cum_sd) else 0.0
    p = 0.0
    eta = eta_early = None
    if limit is not None:
        need = limit - spent
        if need <= 0:
            p = 1.0
        elif total_sd > 0:
            p = 1.0 - NormalDist(total_mean, total_sd).cdf(need)
        else:
            p = 1.0 if total_mean >= need else 0.0
        if need > 0:
            eta = _crossing(segments, cum_mean, need)
            eta_early = _crossing(segments, cum_mean + z * cum_sd, need)
    return Forecast(
        at_end=spent + total_mean,
        lower=spent + max(total_mean - z * total_sd, 0.0),
        upper=spent + total_mean + z * total_sd,
        p_breach=p,
        eta=eta,
        eta_earliest=eta_early,
        method=m.method,
        history_days=m.history_days,
        interval=interval,
    )


def _segments(
    as_of: datetime, end: datetime, m: SeriesMoments, share: ShareOfDay
) -> list[tuple[datetime, float, float, datetime]]:
    """(segment start, expected spend, variance, segment end) for each UTC day left in the window."""
    out: list[tuple[datetime, float, float, datetime]] = []
    if end <= as_of:
        return out
    day = as_of.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    while day <= last:
        start_t = max(as_of, datetime.combine(day, time(0), tzinfo=UTC))
        end_t = min(end, datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))
        lo = share(start_t) if start_t.date() == day and start_t.time() != time(0) else 0.0
        hi = share(end_t) if end_t.date() == day else 1.0
        portion = max(hi - lo, 0.0)
        j = (day - m.first).days
        if j >= len(m.mean):  # beyond the computed horizon: repeat the last computed week
            j = len(m.mean) - 7 + (j - len(m.mean)) % 7 if len(m.mean) >= 7 else len(m.mean) - 1
        mean = float(m.mean[j]) * portion if j >= 0 else 0.0
        var = float(m.var[j]) * portion if j >= 0 else 0.0
        out.append((start_t, mean, var, end_t))
        day += timedelta(days=1)
    return out


def _crossing(
    segments: list[tuple[datetime, float, float, datetime]], path: FloatArray, need: float
) -> datetime | None:
    """When a cumulative path first reaches ``need``, interpolating linearly within its day."""
    before = 0.0
    for (start_t, _mean, _var, end_t), value in zip(segments, path, strict=True):
        value = float(value)
        if value >= need:
            step = value - before
            frac = 1.0 if step <= 0 else min(max((need - before) / step, 0.0), 1.0)
            return start_t + (end_t - start_t) * frac
        before = value
    return None
