"""The detector on hand-built daily series: fit (baselines), score, find (anomalies) and backtest (episodes).

Every series is seeded and realistic: ~90 days, weekdays ~$40, weekends ~$12, ~12 % multiplicative
noise (providers ten times that). ``START`` is a Monday, so day index ``i`` falls on weekday ``i % 7``,
and the scored days sit mid-month, away from the month-end "same day of previous months" rule.
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from sentinel.detect.anomaly import DEFAULT_THRESHOLDS, Finding, find, org_ratio
from sentinel.detect.baseline import fit
from sentinel.detect.engine import TOKEN_TYPES, DetectionData, backtest
from sentinel.detect.explain import ExplainContext
from sentinel.detect.score import score
from sentinel.detect.series import SeriesMatrix

Series = NDArray[np.float64]

START = date(2025, 1, 20)  # a Monday
N_DAYS = 90
TODAY = 86  # Wednesday 2025-04-16: 12 full weeks of history before it
MONDAY = 84  # Monday 2025-04-14, right after a quiet weekend
SATURDAY = 82  # Saturday 2025-04-12

WEEKDAY_USD, WEEKEND_USD, NOISE = 40.0, 12.0, 0.12
PROVIDER_SCALE = 10.0  # a provider carries many users' spend: ~$400 on a weekday
SEEDS = (0, 1, 2, 3, 4)


def weekly(
    seed: int,
    *,
    days: int = N_DAYS,
    weekday: float = WEEKDAY_USD,
    weekend: float = WEEKEND_USD,
    noise: float = NOISE,
) -> Series:
    """A dense series with a weekly pattern and multiplicative (log-normal) noise."""
    rng = np.random.default_rng(seed)
    base = np.where(np.arange(days) % 7 < 5, weekday, weekend)
    return np.asarray(base * np.exp(rng.normal(0.0, noise, days)), dtype=np.float64)


def provider_weekly(seed: int, *, days: int = N_DAYS, scale: float = PROVIDER_SCALE) -> Series:
    return weekly(seed, days=days, weekday=WEEKDAY_USD * scale, weekend=WEEKEND_USD * scale)


def sparse_bursts(seed: int, *, days: int = N_DAYS, low: float = 30.0, high: float = 60.0) -> Series:
    """Active about three days a month (one burst every ~10 days, jittered), zero otherwise."""
    rng = np.random.default_rng(seed)
    values = np.zeros(days)
    for anchor in range(3, days - 5, 10):
        values[anchor + int(rng.integers(-2, 3))] = rng.uniform(low, high)
    return values


def matrix(**rows: Series) -> SeriesMatrix:
    return SeriesMatrix(tuple(rows), START, np.vstack(list(rows.values())).astype(np.float64))


def day(idx: int) -> date:
    return START + timedelta(days=idx)


def find_one(
    kind: str, values: Series, idx: int, *, cohort: NDArray[np.int64] | None = None, ratio: float | None = None
) -> list[Finding]:
    """Findings for a single series ``s`` of ``kind`` on day ``idx``, with the kind's default thresholds."""
    return find(kind, matrix(s=values), day(idx), thresholds=DEFAULT_THRESHOLDS[kind], cohort=cohort, org_ratio=ratio)


def expected_on(values: Series, idx: int) -> float:
    """The fitted point forecast for day ``idx`` from the days before it."""
    return float(fit(values[None, :idx], START, day(idx)).expected(day(idx))[0])


def detection_data(kind: str, m: SeriesMatrix) -> DetectionData:
    """Minimal engine input: one kind's spend, the proxy total, and tokens at a constant price."""
    n = m.days
    tokens = {t: SeriesMatrix(m.entities, START, m.values * 10_000.0) for t in TOKEN_TYPES}
    total = SeriesMatrix(("total",), START, m.values.sum(axis=0, keepdims=True))
    ctx = ExplainContext(
        spend={kind: m},
        model_key=SeriesMatrix((), START, np.zeros((0, n))),
        tokens={kind: tokens},
        key_owner={},
        key_team={},
        user_teams={},
    )
    return DetectionData(START, day(n - 1), {kind: m}, total, {}, ctx)


# --- 1. the weekly pattern is part of "normal" ---------------------------------------------------


def test_weekday_profile_is_learned() -> None:
    values = weekly(0)
    assert expected_on(values, MONDAY) == pytest.approx(WEEKDAY_USD, rel=0.2)
    assert expected_on(values, SATURDAY) == pytest.approx(WEEKEND_USD, rel=0.25)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["user", "provider"])
def test_normal_monday_after_quiet_weekend_is_not_an_anomaly(kind: str, seed: int) -> None:
    values = weekly(seed) if kind == "user" else provider_weekly(seed)
    # the scenario: a quiet weekend, then an ordinary (noise-only) Monday several times its spend
    assert values[MONDAY] > 2 * values[MONDAY - 2 : MONDAY].max()
    assert find_one(kind, values, MONDAY) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_saturday_is_not_a_provider_drop(seed: int) -> None:
    values = provider_weekly(seed)
    assert values[SATURDAY] < 0.5 * values[SATURDAY - 5 : SATURDAY].min()  # far below the weekdays before it
    assert find_one("provider", values, SATURDAY) == []


@pytest.mark.parametrize("kind", ["user", "provider"])
def test_no_findings_on_four_ordinary_weeks(kind: str) -> None:
    # ten ordinary series (noise only), every day of their last four weeks
    rows = {f"s{seed}": weekly(seed) if kind == "user" else provider_weekly(seed) for seed in range(10)}
    m = matrix(**rows)
    alarms = [
        (f.entity_id, f.date.isoformat(), f.method, f.direction, round(f.z, 1))
        for idx in range(N_DAYS - 28, N_DAYS)
        for f in find(kind, m, day(idx), thresholds=DEFAULT_THRESHOLDS[kind])
    ]
    assert alarms == [], f"{len(alarms)} false alarms on ordinary noise: {alarms}"


# --- 2. a one-day spike ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "provider"])
def test_one_day_spike_is_an_anomaly_with_a_sensible_interval(kind: str) -> None:
    values = weekly(1) if kind == "user" else provider_weekly(1)
    usual = WEEKDAY_USD if kind == "user" else WEEKDAY_USD * PROVIDER_SCALE
    values[TODAY] = 5 * usual
    (f,) = find_one(kind, values, TODAY)
    assert (f.entity_id, f.date, f.direction, f.method) == ("s", day(TODAY), "up", "dense")
    assert f.observed == pytest.approx(5 * usual)
    assert f.expected == pytest.approx(usual, rel=0.2)  # the usual weekday, not the week's average
    assert f.lower < f.expected < f.upper < f.observed
    assert f.z >= DEFAULT_THRESHOLDS[kind].z
    assert f.p_value < 0.01
    assert f.impact_usd == pytest.approx(f.observed - f.expected)


def test_weekend_spike_to_weekday_level_is_an_anomaly() -> None:
    # 5x a Saturday is only ~1.5x a weekday: a detector blind to the week would miss it.
    values = weekly(2)
    values[SATURDAY] = 5 * WEEKEND_USD
    (f,) = find_one("user", values, SATURDAY)
    assert f.direction == "up"
    assert f.expected == pytest.approx(WEEKEND_USD, rel=0.25)


# --- 3. a level shift -----------------------------------------------------------------------------

SHIFT_DAY = 78  # a Tuesday
SHIFT = 1.7
SHIFT_DAYS = 100


def shifted(seed: int) -> Series:
    values = weekly(seed, days=SHIFT_DAYS)
    values[SHIFT_DAY:] *= SHIFT
    return values


@pytest.mark.parametrize("seed", SEEDS)
def test_level_shift_is_caught_within_three_days(seed: int) -> None:
    values = shifted(seed)
    flagged = [idx for idx in range(SHIFT_DAY - 3, SHIFT_DAY + 3) if find_one("user", values, idx)]
    assert flagged, "a +70 % shift went unnoticed for three days"
    assert flagged[0] >= SHIFT_DAY, "flagged before the shift began"
    (f,) = find_one("user", values, flagged[0])
    assert f.direction == "up"
    assert f.expected < values[flagged[0]] / 1.3  # judged against the old level


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_level_shift_is_one_episode_in_backtest(seed: int) -> None:
    m = matrix(s=shifted(seed))
    records = backtest(detection_data("user", m), day(SHIFT_DAY - 2), day(SHIFT_DAY + 12))
    episodes = [r for r in records if r["entity_id"] == "s"]
    summary = [(r["date"], r["direction"], r["episode"]) for r in episodes]
    assert len(episodes) == 1, f"one shift reported as {len(episodes)} episodes: {summary}"
    (record,) = episodes
    assert record["direction"] == "up"
    assert day(SHIFT_DAY).isoformat() <= str(record["date"]) <= day(SHIFT_DAY + 2).isoformat()
    episode = record["episode"]
    assert isinstance(episode, dict)
    assert episode["onset"] == record["date"]
    assert episode["days"] >= 2  # the flagged days after the onset joined it instead of opening new episodes


# --- 4. a slow runaway ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_runaway_ramp_is_caught_before_its_peak(seed: int) -> None:
    values = weekly(seed)
    ramp_start = MONDAY
    growth = 1.5 ** np.arange(1, 6)  # 1.5x, 2.25x, 3.4x, 5.1x, 7.6x: a loop compounding daily
    values[ramp_start : ramp_start + 5] *= growth
    peak = ramp_start + 4
    assert find_one("user", values, ramp_start - 1) == []
    flagged = [idx for idx in range(ramp_start, peak + 1) if find_one("user", values, idx)]
    assert flagged and flagged[0] < peak, f"first flagged day {flagged} vs peak {peak}"
    assert all(f.direction == "up" for f in find_one("user", values, flagged[0]))


# --- 5. provider drops, and the whole proxy dropping together ------------------------------------


def providers(seed: int) -> dict[str, Series]:
    return {"openai": provider_weekly(seed), "anthropic": provider_weekly(seed + 100, scale=5.0)}


def test_provider_outage_is_a_down_anomaly() -> None:
    series = providers(3)
    series["openai"][TODAY] = 0.4  # a few stray cents: the provider is down
    m = matrix(**series)
    total = SeriesMatrix(("total",), START, m.values.sum(axis=0, keepdims=True))
    ratio = org_ratio(total, day(TODAY))
    assert ratio is not None and 0.2 < ratio < 0.6  # the rest of the proxy carried on
    found = find("provider", m, day(TODAY), thresholds=DEFAULT_THRESHOLDS["provider"], org_ratio=ratio)
    (f,) = found
    assert (f.entity_id, f.direction) == ("openai", "down")
    assert f.expected == pytest.approx(WEEKDAY_USD * PROVIDER_SCALE, rel=0.2)
    assert f.observed == pytest.approx(0.4)
    assert f.observed < f.lower < f.expected
    assert f.z <= -DEFAULT_THRESHOLDS["provider"].z


def test_holiday_drop_shared_by_the_whole_proxy_is_not_a_provider_outage() -> None:
    series = providers(4)
    holiday = 0.02  # everyone stops: the whole proxy runs at ~2 % of a normal Wednesday
    for values in series.values():
        values[TODAY] *= holiday
    m = matrix(**series)
    total = SeriesMatrix(("total",), START, m.values.sum(axis=0, keepdims=True))
    ratio = org_ratio(total, day(TODAY))
    assert ratio is not None and ratio == pytest.approx(holiday, rel=0.5)
    limits = DEFAULT_THRESHOLDS["provider"]
    # on its own the provider's drop is a surprise; knowing the proxy dropped alike, it is not
    assert [f.direction for f in find("provider", m, day(TODAY), thresholds=limits) if f.entity_id == "openai"] == [
        "down"
    ]
    assert find("provider", m, day(TODAY), thresholds=limits, org_ratio=ratio) == []


# --- 6. a past spike does not mask the next ------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_past_spike_does_not_mask_the_next(seed: int) -> None:
    clean = weekly(seed)
    clean[TODAY] *= 6
    spiked = clean.copy()
    spiked[TODAY - 20] *= 6
    (f,) = find_one("user", spiked, TODAY)
    assert f.direction == "up"
    assert expected_on(spiked, TODAY) == pytest.approx(expected_on(clean, TODAY), rel=0.1)
    assert f.expected == pytest.approx(expected_on(clean, TODAY), rel=0.1)


# --- 7. a new user is judged against the team ----------------------------------------------------


def team_with_newcomer(today_usd: float) -> tuple[SeriesMatrix, NDArray[np.int64]]:
    rng = np.random.default_rng(5)
    newcomer = np.zeros(N_DAYS)
    newcomer[TODAY - 2 : TODAY] = WEEKDAY_USD * np.exp(rng.normal(0.0, NOISE, 2))  # joined on Monday
    newcomer[TODAY] = today_usd
    m = matrix(
        ana=weekly(11, weekday=35.0, weekend=10.0),
        bo=weekly(12, weekday=40.0, weekend=12.0),
        cy=weekly(13, weekday=45.0, weekend=14.0),
        whale=weekly(14, weekday=2000.0, weekend=600.0),  # another team: must not shape this prior
        newcomer=newcomer,
    )
    return m, np.array([0, 0, 0, 1, 0], dtype=np.int64)


def test_new_user_borrows_the_team_prior() -> None:
    m, cohort = team_with_newcomer(WEEKDAY_USD)
    b = fit(m.values[:, :TODAY], START, day(TODAY), cohort=cohort)
    assert b.method[m.entities.index("newcomer")] == "prior"
    assert b.history_days[m.entities.index("newcomer")] == 2
    team_week_average = (5 * WEEKDAY_USD + 2 * WEEKEND_USD) / 7
    assert b.expected(day(TODAY))[m.entities.index("newcomer")] == pytest.approx(team_week_average, rel=0.35)


def test_new_user_at_the_team_level_is_not_flagged() -> None:
    m, cohort = team_with_newcomer(WEEKDAY_USD)
    found = find("user", m, day(TODAY), thresholds=DEFAULT_THRESHOLDS["user"], cohort=cohort)
    assert [f for f in found if f.entity_id == "newcomer"] == []


def test_new_user_at_thirty_times_the_team_level_is_flagged() -> None:
    m, cohort = team_with_newcomer(30 * WEEKDAY_USD)
    found = find("user", m, day(TODAY), thresholds=DEFAULT_THRESHOLDS["user"], cohort=cohort)
    newcomer = [f for f in found if f.entity_id == "newcomer"]
    b = fit(m.values[:, :TODAY], START, day(TODAY), cohort=cohort)
    z = score(b, m.values[:, TODAY], day(TODAY), z_limit=DEFAULT_THRESHOLDS["user"].z).z[m.entities.index("newcomer")]
    assert len(newcomer) == 1, f"$1200 on a first week vs a team prior of ${b.level[-1]:.2f}: z={z:.2f}, not flagged"
    assert (newcomer[0].direction, newcomer[0].method) == ("up", "prior")


# --- 8. a sparse user -----------------------------------------------------------------------------


def test_sparse_user_is_modelled_as_bursts() -> None:
    values = sparse_bursts(6)
    assert 4 <= np.count_nonzero(values[TODAY - 56 : TODAY]) <= 7  # about three a month
    b = fit(values[None, :TODAY], START, day(TODAY))
    assert b.method == ("sparse",)


@pytest.mark.parametrize("seed", SEEDS)
def test_usual_burst_of_a_sparse_user_is_not_flagged(seed: int) -> None:
    values = sparse_bursts(seed)
    past = values[:TODAY][values[:TODAY] > 0]
    for burst in (float(np.median(past)), float(past.max()), float(past.min())):
        values[TODAY] = burst
        assert find_one("user", values, TODAY) == [], f"usual burst ${burst:.2f} flagged"


@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_user_burst_fifteen_times_the_usual_is_flagged(seed: int) -> None:
    values = sparse_bursts(seed)
    values[TODAY] = 15 * float(np.median(values[:TODAY][values[:TODAY] > 0]))
    (f,) = find_one("user", values, TODAY)
    assert (f.direction, f.method) == ("up", "sparse")
    assert f.upper < f.observed


# --- 9. insufficient history ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "provider"])
def test_insufficient_history_without_cohort_reports_nothing(kind: str) -> None:
    values = np.zeros(N_DAYS)
    values[TODAY - 5 : TODAY] = WEEKDAY_USD
    values[TODAY] = 30 * WEEKDAY_USD
    b = fit(values[None, :TODAY], START, day(TODAY))
    assert b.method == ("insufficient",)
    assert find_one(kind, values, TODAY) == []
    assert find_one(kind, values, TODAY, cohort=np.array([-1], dtype=np.int64)) == []


# --- direction and materiality --------------------------------------------------------------------


def test_a_user_down_day_is_never_reported() -> None:
    values = weekly(8)
    values[TODAY] = 0.4
    b = fit(values[None, :TODAY], START, day(TODAY))
    assert score(b, values[TODAY : TODAY + 1], day(TODAY), z_limit=5.0).z[0] <= -5  # a real surprise
    assert find_one("provider", values, TODAY)[0].direction == "down"  # which a provider would report
    assert find_one("user", values, TODAY) == []
    assert find_one("key", values, TODAY) == []


def test_an_immaterial_surprise_is_not_reported() -> None:
    cents = sparse_bursts(9, low=0.01, high=0.03)  # a user spending a few cents now and then
    cents[TODAY] = 1.5  # 75x the usual, yet $1.50
    b = fit(cents[None, :TODAY], START, day(TODAY))
    assert score(b, cents[TODAY : TODAY + 1], day(TODAY), z_limit=5.0).z[0] >= DEFAULT_THRESHOLDS["user"].z
    assert find_one("user", cents, TODAY) == []
    # the same surprise in dollars that matter is reported
    assert [f.direction for f in find_one("user", cents * 100, TODAY)] == ["up"]


# --- 10. determinism ------------------------------------------------------------------------------


def busy_org() -> tuple[SeriesMatrix, NDArray[np.int64]]:
    spike = weekly(20)
    spike[TODAY] *= 5
    shift = weekly(21)
    shift[TODAY - 3 :] *= 2.5
    burst = sparse_bursts(22)
    burst[TODAY] = 900.0
    newcomer = np.zeros(N_DAYS)
    newcomer[TODAY] = 5000.0
    m = matrix(calm=weekly(23), spike=spike, shift=shift, burst=burst, newcomer=newcomer)
    return m, np.array([0, 0, 0, -1, 0], dtype=np.int64)


def test_same_input_gives_identical_findings() -> None:
    m, cohort = busy_org()
    limits = DEFAULT_THRESHOLDS["user"]
    first = find("user", m, day(TODAY), thresholds=limits, cohort=cohort)
    again = find(
        "user",
        matrix(**dict(zip(m.entities, m.values.copy(), strict=True))),
        day(TODAY),
        thresholds=limits,
        cohort=cohort.copy(),
    )
    assert {f.entity_id for f in first} >= {"spike", "shift", "burst"}
    assert first == again


def test_same_input_gives_identical_backtest() -> None:
    m, _ = busy_org()
    data = detection_data("user", m)
    first = backtest(data, day(TODAY - 2), day(TODAY))
    assert first
    assert backtest(data, day(TODAY - 2), day(TODAY)) == first


def test_nanmedian_equals_numpys_on_rows_with_and_without_nans() -> None:
    from sentinel.detect.baseline import nanmedian

    rng = np.random.default_rng(11)
    for shape in ((40, 9), (7, 1), (3, 56)):
        x = rng.gamma(2.0, 10.0, shape)
        x[rng.random(shape) < 0.4] = np.nan
        x[0, :] = np.nan  # a row with no value at all: NaN, as numpy gives
        for axis in (0, 1):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                expected = np.nanmedian(x, axis=axis)
            np.testing.assert_array_equal(nanmedian(x, axis), expected)
