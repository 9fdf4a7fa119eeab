"""Scoring one day of every series against its baseline: expectation, interval, surprise, impact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.special import stdtr  # the Student t CDF; scipy.stats would add ~45 MB to a daemon's memory

from sentinel.detect.baseline import DENSE, INSUFFICIENT, Baselines, FloatArray

# Heavy-tailed residuals: a Student t with few degrees of freedom keeps p-values honest for spend,
# whose ordinary days already include the odd doubling.
DF = 4
WEEKDAY_SPREAD_FLOOR = 0.15
INTERMITTENT = 0.8  # a weekday with spend on fewer than this share of weeks comes and goes


@dataclass(frozen=True)
class Scores:
    observed: FloatArray
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray
    z: FloatArray  # signed surprise (log-scale for sparse and prior series)
    p_value: FloatArray  # one-sided, in the direction of z

    @property
    def impact(self) -> FloatArray:
        return np.asarray(self.observed - self.expected, dtype=np.float64)


def score(b: Baselines, observed: FloatArray, day: date, *, z_limit: float, share: float = 1.0) -> Scores:
    """Score ``observed`` (spend on ``day``; ``share`` of the day elapsed if partial) against ``b``.

    The interval is expected ± z_limit spreads (dense), or the usual active day times
    exp(±z_limit log-spreads) (sparse and prior).
    """
    method = np.array(b.method)
    dense = method == DENSE
    known = method != INSUFFICIENT
    w = day.weekday()
    expected_day = b.expected(day)
    expected = expected_day * share
    # A partial day's spread shrinks roughly with the square root of the share elapsed.
    # A quiet weekday's factor may not shrink the spread below a fifth of an average day: low-volume
    # days are relatively noisier (one person working on a Saturday is not an anomaly).
    day_scale = np.maximum(b.scale * b.weekday[:, w], WEEKDAY_SPREAD_FLOOR * b.level) * np.sqrt(max(share, 1e-6))
    with np.errstate(all="ignore"):
        z_dense = (observed - expected) / day_scale
        active_level = b.level * share
        z_sparse = np.where(
            observed > 0, (np.log(np.maximum(observed, 1e-12)) - np.log(np.maximum(active_level, 1e-12))) / b.scale, 0.0
        )
    # A dense series whose spend on this weekday comes and goes (someone working some Saturdays)
    # is judged on such days like a sparse one: is this active day bigger than its usual active day?
    intermittent = dense & (b.weekday_active[:, w] < INTERMITTENT) & (observed > expected)
    with np.errstate(all="ignore"):
        z_intermittent = (
            np.log(np.maximum(observed, 1e-12)) - np.log(np.maximum(b.active_level * share, 1e-12))
        ) / b.active_log_scale
    z_dense = np.where(intermittent, np.minimum(z_dense, z_intermittent), z_dense)
    z = np.where(dense, z_dense, np.where(known, z_sparse, 0.0))
    z = np.nan_to_num(z)
    lower = np.where(dense, np.maximum(expected - z_limit * day_scale, 0.0), 0.0)
    log_spread = np.where(dense, 0.0, b.scale)  # only sparse and prior series have a log-scale spread
    upper = np.where(dense, expected + z_limit * day_scale, active_level * np.exp(z_limit * log_spread))
    upper = np.where(known, upper, np.nan)
    lower = np.where(known, lower, np.nan)
    p = stdtr(DF, -np.abs(z))  # one-sided: the tail beyond |z|
    return Scores(
        observed=np.asarray(observed, dtype=np.float64),
        expected=np.where(known, expected, np.nan),
        lower=np.asarray(lower, dtype=np.float64),
        upper=np.asarray(upper, dtype=np.float64),
        z=np.asarray(z, dtype=np.float64),
        p_value=np.asarray(p, dtype=np.float64),
    )
