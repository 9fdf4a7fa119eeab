"""Finding anomalies in one grain's daily matrix: pure functions, ``now`` passed in.

An anomaly needs both statistical surprise (|z| beyond the limit, in an allowed direction) and a
material dollar and percent impact. On top of the single-day test:
- sustained shifts and slow runaways: the last three days scored against the baseline fitted
  before them; moderate but persistent excess adds up;
- expected peaks are not anomalies: a day that matches the same place in the previous months
  (month-end batch jobs) raises the expectation, and a drop shared by the whole proxy (a holiday)
  is not a provider's outage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from sentinel.detect.baseline import Baselines, FloatArray, fit, nanmedian, nanmin
from sentinel.detect.score import score
from sentinel.detect.series import SeriesMatrix

SUSTAIN_DAYS = 3


@dataclass(frozen=True)
class Thresholds:
    z: float = 5.0  # single-day surprise, in spreads
    sustained_z: float = 4.0  # combined surprise of SUSTAIN_DAYS days (sum of z / sqrt(days)) that is a shift
    sustained_min_z: float = 1.5  # ... with every one of those days above the baseline by this much
    min_usd: float = 10.0
    min_pct: float = 0.5
    directions: frozenset[str] = frozenset({"up"})


DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "provider": Thresholds(min_usd=5.0, min_pct=0.4, directions=frozenset({"up", "down"})),
    "model": Thresholds(min_usd=5.0, min_pct=0.4, directions=frozenset({"up", "down"})),
    "team": Thresholds(min_usd=5.0, min_pct=0.4),
    "user": Thresholds(min_usd=2.0, min_pct=0.75),
    "key": Thresholds(min_usd=2.0, min_pct=0.75),
}


@dataclass(frozen=True)
class Finding:
    entity_type: str
    entity_id: str
    date: date
    observed: float
    expected: float
    lower: float
    upper: float
    z: float
    p_value: float
    direction: str
    method: str  # dense | sparse | prior, + "+sustained" when found by the multi-day test
    history_days: int
    partial: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def impact_usd(self) -> float:
        return self.observed - self.expected

    @property
    def pct_change(self) -> float | None:
        return None if self.expected <= 0 else (self.observed - self.expected) / self.expected


def _month_peak_ratio(m: SeriesMatrix, idx: int, b: Baselines) -> FloatArray:
    """How far above its usual level each series was at this point of the previous two months.

    For each month, the largest ratio of spend to the fitted expectation within a day of the same
    distance from month end (batch jobs drift by a day); the smaller of the two months when the
    history covers both, so a single odd month does not make a schedule. NaN without history.
    """
    day = m.day(idx)
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    to_end = (next_month - day).days
    usual = np.maximum(b.level, 1e-12)
    per_month = []
    anchor = day.replace(day=1)
    for _ in range(2):
        prev_end = anchor - timedelta(days=1)
        centre = prev_end - timedelta(days=to_end - 1)
        best = np.full(m.values.shape[0], np.nan)
        for offset in (-1, 0, 1):
            ref = centre + timedelta(days=offset)
            j = m.index_of(ref)
            if 0 <= j < idx:
                ratio = m.values[:, j] / (usual * b.weekday[:, ref.weekday()])
                best = np.fmax(best, ratio)
        per_month.append(best)
        anchor = prev_end.replace(day=1)
    # the smaller of the months the history covers (one is enough early on)
    return nanmin(np.stack(per_month, axis=1), axis=1)


def fit_for(m: SeriesMatrix, day: date, cohort: NDArray[np.int64] | None = None) -> Baselines:
    """Baselines of every series of ``m`` for predicting ``day`` (history before it)."""
    return _fit_at(m, m.index_of(day), cohort)


def _fit_at(
    m: SeriesMatrix, idx: int, cohort: NDArray[np.int64] | None, cache: dict[int, Baselines] | None = None
) -> Baselines:
    """The fit on the days before ``idx``; ``cache`` (one per matrix) keeps it for the next caller
    that scores the same day with other thresholds (each anomaly rule's sensitivity)."""
    if cache is not None and idx in cache:
        return cache[idx]
    fitted = fit(m.values[:, :idx], m.start, m.day(idx), cohort=cohort)
    if cache is not None:
        cache[idx] = fitted
    return fitted


def find(
    kind: str,
    m: SeriesMatrix,
    day: date,
    *,
    thresholds: Thresholds,
    cohort: NDArray[np.int64] | None = None,
    share: float = 1.0,
    org_ratio: float | None = None,
    fitted: Baselines | None = None,
    excused: dict[str, float] | None = None,
    cache: dict[int, Baselines] | None = None,
) -> list[Finding]:
    """Anomalies of every series of one entity kind on ``day`` (``share`` < 1: a partial day).

    ``excused`` (if given) receives the dollars above the baseline of series whose peak was
    excused as a monthly schedule, so the teams and providers it lifts can be excused too.

    ``fitted``: baselines already fitted for ``day`` for exactly these series (reused between ticks).
    ``cache``: fits of this matrix by day index, shared by callers that score it with other thresholds.
    """
    idx = m.index_of(day)
    if idx < 1 or idx >= m.days or not m.entities:
        return []
    b = fitted if fitted is not None and fitted.as_of == day else _fit_at(m, idx, cohort, cache)
    s = score(b, m.values[:, idx], day, z_limit=thresholds.z, share=share)
    expected = s.expected.copy()
    notes: dict[int, list[str]] = {}
    recurring = np.zeros(len(m.entities), dtype=bool)
    if share >= 1.0:
        # A peak of the same size at this point of each previous month is a schedule, not a surprise.
        peak = _month_peak_ratio(m, idx, b)
        usual_today = np.maximum(b.level, 1e-12) * b.weekday[:, day.weekday()]
        today_ratio = s.observed / usual_today
        recurring = np.isfinite(peak) & (peak >= 2.0) & (peak >= 0.5 * today_ratio) & (s.observed > expected)
        for i in np.flatnonzero(recurring):
            notes.setdefault(int(i), []).append("a peak like this happened at this point of previous months")
        expected = np.where(recurring, np.maximum(expected, peak * usual_today), expected)
        if excused is not None:
            for i in np.flatnonzero(recurring):
                excused[m.entities[i]] = float(s.observed[i] - s.expected[i])
    impact = s.observed - expected
    with np.errstate(all="ignore"):
        pct = np.where(expected > 0, np.abs(impact) / expected, np.inf)
    material = (np.abs(impact) >= thresholds.min_usd * max(share, 0.25)) & (pct >= thresholds.min_pct)
    z = np.where(
        np.isfinite(expected),
        (s.z * np.where(expected > s.expected, s.expected / np.maximum(expected, 1e-12), 1.0)),
        0.0,
    )
    up = ("up" in thresholds.directions) & (z >= thresholds.z) & (impact > 0)
    down = ("down" in thresholds.directions) & (z <= -thresholds.z) & (impact < 0)
    if "down" in thresholds.directions and share >= 1.0:
        # Spend that stops dead on a series active every recent day is an outage or a routing
        # break, however noisy its usual level: the spread says how much, not whether.
        recent = m.values[:, max(0, idx - 28) : idx]
        always_on = (recent > 0).mean(axis=1) >= 0.9 if recent.shape[1] >= 14 else np.zeros(len(m.entities), bool)
        stopped = always_on & (s.observed <= 0.05 * expected) & (impact <= -0.5 * thresholds.min_usd)
        for i in np.flatnonzero(stopped & ~down):
            notes.setdefault(int(i), []).append("spend stopped on a series active every recent day")
        down |= stopped
    else:
        stopped = np.zeros(len(m.entities), dtype=bool)
    if org_ratio is not None:
        # A drop the whole proxy shares (a holiday, a quiet weekend) is not this entity's outage.
        with np.errstate(all="ignore"):
            own_ratio = s.observed / np.maximum(expected, 1e-12)
        shared = own_ratio >= 0.5 * org_ratio
        down &= ~shared
        stopped &= ~shared
    flagged = (material & (up | down)) | stopped
    methods = [b.method[i] for i in range(len(m.entities))]

    # Sustained: the last days against the baseline from before them.
    if share >= 1.0 and idx > SUSTAIN_DAYS:
        first = idx - SUSTAIN_DAYS + 1
        prior = _fit_at(m, first, cohort, cache)
        zs = []
        impacts = np.zeros(len(m.entities))
        for k in range(first, idx + 1):
            sk = score(prior, m.values[:, k], m.day(k), z_limit=thresholds.sustained_z)
            zs.append(sk.z)
            impacts += np.nan_to_num(sk.impact)
        zmat = np.stack(zs, axis=1)
        exp_sum = np.nansum(np.stack([prior.expected(m.day(k)) for k in range(first, idx + 1)], axis=1), axis=1)
        with np.errstate(all="ignore"):
            sus_pct = np.where(exp_sum > 0, np.abs(impacts) / exp_sum, np.inf)
        sus_material = (np.abs(impacts) >= thresholds.min_usd * SUSTAIN_DAYS) & (
            sus_pct >= max(thresholds.min_pct / 2, 0.25)
        )
        combined = zmat.sum(axis=1) / np.sqrt(SUSTAIN_DAYS)
        # Every day above the baseline, and most of them clearly so: noise rarely does both.
        every_up = np.all(zmat >= thresholds.sustained_min_z, axis=1) & (np.median(zmat, axis=1) >= 2.0)
        every_down = np.all(zmat <= -thresholds.sustained_min_z, axis=1) & (np.median(zmat, axis=1) <= -2.0)
        # A quiet weekend day inside a shift (small base, small z) must not hide it.
        every_up |= (np.sum(zmat >= 2.0, axis=1) >= SUSTAIN_DAYS - 1) & np.all(zmat >= 0.0, axis=1)
        every_down |= (np.sum(zmat <= -2.0, axis=1) >= SUSTAIN_DAYS - 1) & np.all(zmat <= 0.0, axis=1)
        sus_up = ("up" in thresholds.directions) & every_up & (combined >= thresholds.sustained_z) & (impacts > 0)
        sus_down = (
            ("down" in thresholds.directions) & every_down & (combined <= -thresholds.sustained_z) & (impacts < 0)
        )
        if org_ratio is not None:
            sus_down &= False  # multi-day drops of a provider need the single-day test's org check
        sustained = sus_material & (sus_up | sus_down) & ~flagged & ~recurring
        known = np.array([p != "insufficient" for p in prior.method], dtype=bool)
        sustained &= known
        for i in np.flatnonzero(sustained):
            methods[i] = f"{prior.method[i]}+sustained"
            notes.setdefault(int(i), []).append(
                f"{SUSTAIN_DAYS} days in a row above the baseline from before {m.day(first).isoformat()}"
            )
        if sustained.any():
            se = prior.expected(day)
            expected = np.where(sustained, se, expected)
            z = np.where(sustained, combined, z)
        flagged = flagged | sustained

    out: list[Finding] = []
    for i in np.flatnonzero(flagged):
        direction = "up" if s.observed[i] >= expected[i] else "down"
        out.append(
            Finding(
                entity_type=kind,
                entity_id=m.entities[i],
                date=day,
                observed=float(s.observed[i]),
                expected=float(expected[i]),
                lower=float(s.lower[i]),
                upper=float(max(s.upper[i], expected[i])),
                z=float(z[i]),
                p_value=float(s.p_value[i]),
                direction=direction,
                method=methods[i],
                history_days=int(b.history_days[i]),
                partial=share < 1.0,
                notes=tuple(notes.get(int(i), ())),
            )
        )
    return out


def org_ratio(total: SeriesMatrix, day: date) -> float | None:
    """Observed over expected for the whole proxy on ``day`` (None without a usable baseline)."""
    idx = total.index_of(day)
    if total.values.shape[0] == 0 or idx < 1:
        return None
    b = _fit_at(total, idx, None)
    exp = float(b.expected(day)[0])
    return None if exp <= 0 else float(total.values[0, idx]) / exp


PRICE_RATIO = 2.0  # spend per token at least this many times its usual level (or at most its inverse)
PRICE_BASE_DAYS = 28


def find_unit_cost(
    kind: str, spend: SeriesMatrix, tokens: SeriesMatrix, day: date, *, thresholds: Thresholds
) -> list[Finding]:
    """Spend per token against its usual level: a price change or a move to a pricier model shows
    here even when token volume, and so the spend detector's view of volume, looks normal.

    Expected spend is today's tokens at the usual price; the impact is what the price change cost.
    """
    idx = spend.index_of(day)
    if idx < 7 or idx >= spend.days or not spend.entities or spend.entities != tokens.entities:
        return []
    lo = max(0, idx - PRICE_BASE_DAYS)
    past_spend, past_tokens = spend.values[:, lo:idx], tokens.values[:, lo:idx]
    with np.errstate(all="ignore"):
        past_price = np.where(past_tokens > 0, past_spend / past_tokens, np.nan)
        usual = nanmedian(past_price, axis=1)
        active = np.sum(past_tokens > 0, axis=1)
        today_tokens = tokens.values[:, idx]
        today_spend = spend.values[:, idx]
        price = np.where(today_tokens > 0, today_spend / today_tokens, np.nan)
        ratio = price / usual
    expected = usual * today_tokens
    impact = today_spend - expected
    with np.errstate(all="ignore"):
        pct = np.abs(impact) / np.maximum(expected, 1e-12)
    ok = np.isfinite(ratio) & (active >= 7) & (np.abs(impact) >= thresholds.min_usd) & (pct >= thresholds.min_pct)
    up = ("up" in thresholds.directions) & (ratio >= PRICE_RATIO)
    down = ("down" in thresholds.directions) & (ratio <= 1 / PRICE_RATIO)
    out = []
    for i in np.flatnonzero(ok & (up | down)):
        out.append(
            Finding(
                entity_type=kind,
                entity_id=spend.entities[i],
                date=day,
                observed=float(today_spend[i]),
                expected=float(expected[i]),
                lower=float(expected[i] / PRICE_RATIO),
                upper=float(expected[i] * PRICE_RATIO),
                z=float(np.log(ratio[i]) / np.log(PRICE_RATIO)),
                p_value=float("nan"),
                direction="up" if ratio[i] > 1 else "down",
                method="unit_cost",
                history_days=int(active[i]),
                notes=(f"spend per token {ratio[i]:.1f}x its usual level at {today_tokens[i]:,.0f} tokens",),
            )
        )
    return out
