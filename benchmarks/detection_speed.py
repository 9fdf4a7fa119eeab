"""Detection speed: 10,000 series x 365 days.

Prints the time and peak memory of a full pass (fit every series' baseline and score the last
day), of the per-tick incremental pass (score today's partial spend with the day's stored fits),
and, for the ratio, a per-series loop of statsmodels' robust STL over a sample of the series.

    .venv/bin/python benchmarks/detection_speed.py [--series 10000] [--days 365] [--stl-sample 200]
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

import numpy as np

from sentinel.detect.anomaly import DEFAULT_THRESHOLDS, find, fit_for
from sentinel.detect.series import SeriesMatrix


def synthetic(series: int, days: int, seed: int = 1) -> SeriesMatrix:
    """Weekly pattern, growth, noise; a fifth of the series sparse, a few spikes."""
    rng = np.random.default_rng(seed)
    start = date(2025, 11, 26)
    weekday = (np.arange(days) + start.weekday()) % 7
    week = np.where(weekday >= 5, 0.35, 1.0)
    level = rng.lognormal(1.0, 1.2, size=(series, 1))
    growth = 1 + rng.normal(0.001, 0.001, size=(series, 1)) * np.arange(days)
    noise = rng.lognormal(0, 0.25, size=(series, days))
    values = level * week * growth * noise
    sparse = rng.random(series) < 0.2
    values[sparse] *= rng.random((int(sparse.sum()), days)) < 0.15
    spikes = rng.random((series, days)) < 0.002
    values[spikes] *= 8
    return SeriesMatrix(tuple(f"s{i:05d}" for i in range(series)), start, values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--stl-sample", type=int, default=200)
    args = parser.parse_args()

    m = synthetic(args.series, args.days)
    day = m.day(m.days - 1)
    limits = DEFAULT_THRESHOLDS["user"]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    findings = find("user", m, day, thresholds=limits)
    full = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"full pass: {args.series:,} series x {args.days} days: {full:.2f}s "
        f"(fit + score + sustained check), {len(findings)} anomalies, peak RSS {rss:,.0f} MB "
        f"(data alone {rss0:,.0f} MB)"
    )

    fitted = fit_for(m, day)
    partial = m.values.copy()
    partial[:, -1] *= 0.5  # today, half-way through
    today = SeriesMatrix(m.entities, m.start, partial)
    t0 = time.perf_counter()
    ticks = 5
    for _ in range(ticks):
        find("user", today, day, thresholds=limits, share=0.5, fitted=fitted)
    tick = (time.perf_counter() - t0) / ticks
    print(f"incremental tick (today's partial spend with the day's stored fits): {tick * 1000:.0f} ms")

    from statsmodels.tsa.seasonal import STL

    sample = min(args.stl_sample, args.series)
    t0 = time.perf_counter()
    for i in range(sample):
        STL(m.values[i, :-1], period=7, robust=True).fit()
    per_series = (time.perf_counter() - t0) / sample
    print(
        f"robust STL loop: {per_series * 1000:.1f} ms a series -> {per_series * args.series:.0f}s for "
        f"{args.series:,} series ({per_series * args.series / full:.0f}x the full pass)"
    )


if __name__ == "__main__":
    main()
