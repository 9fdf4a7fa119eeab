"""Deterministic synthetic traffic of a LiteLLM proxy, stored the way the proxy's daily tables store it.

Each date's rows are generated from their own RNG stream (`seed`, date), so any day can be rebuilt alone, a
new day can be appended when the clock passes midnight, and an anomaly on one day never perturbs another.
"Today" is partial: a row's counters are its full-day totals cut at the intraday share reached by `now`.

Data-quality faults are applied at the same cut: a logging outage (`stop_logging`/`resume_logging`) removes the
requests made while it lasted, a late flush (`revise_day`) scales a settled day's rows after the fact.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from sentinel.simulator import budgets as bud
from sentinel.simulator.catalog import ENDPOINTS, GROUPS, MODEL_INDEX, MODELS, PROVIDERS, intraday_share, model_arrays
from sentinel.simulator.entities import Roster, SimKey, SimTeam, SimUser, build_roster
from sentinel.simulator.events import MONTH_END_FACTOR, InjectedEvent, Plan, is_month_end, plan_events
from sentinel.simulator.rows import (
    CACHE_CREATION,
    CACHE_READ,
    COMPLETION,
    FAILED,
    PROMPT,
    REQUESTS,
    RESPONSE_MS,
    SUCCESSFUL,
    TEAM_TABLE_SALT,
    USER_TABLE_SALT,
    DayBlock,
    Dims,
    row_ids,
)
from sentinel.simulator.truth import Grain, TruthTable, compute_truth

GROWTH_PER_DAY = 0.0025  # ~+25 % over 90 days
_TEAM_DURATIONS: tuple[str | None, ...] = ("1mo", "30d", "7d", "1d")
_NICE = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0, 50000.0)
_PRICE_COLUMNS = ("input_cost", "output_cost", "cache_read_cost", "cache_creation_cost")
Span = tuple[float, float]  # [from, to) as cumulative shares of a day's traffic (0 at 00:00 UTC, 1 at 24:00)
Gap = tuple[datetime, datetime | None]  # logging broken from, until (None: still broken)
FULL_DAY: tuple[Span, ...] = ((0.0, 1.0),)


@dataclass(frozen=True)
class TrafficConfig:
    seed: int = 7
    users: int = 40
    teams: int = 5
    days: int = 90  # dates in the range, today included
    today: date | None = None  # default: the date of `now`, else today's UTC date
    now: datetime | None = None  # UTC; default: `today` 12:00 UTC
    full_metrics: bool = True  # False: only the nine SpendMetrics fields every version since 1.72 has
    inject_anomalies: bool = True  # False: no anomalies; the labelled hard negatives stay (they are normal)
    # Models (as logged, e.g. "anthropic/claude-3-5-sonnet-20240620") missing from LiteLLM's price map: their
    # requests and tokens are logged as usual with spend 0, in every table and in the budget counters.
    unpriced_models: tuple[str, ...] = ()
    # Every key without a user_id (team/service keys only): all traffic lands under the "Unassigned" entity.
    # /user/list still lists the users; user-level injected events then describe traffic no user owns.
    service_keys_only: bool = False

    def resolve(self) -> tuple[date, datetime]:
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.now is not None:
            now = (self.now if self.now.tzinfo else self.now.replace(tzinfo=UTC)).astimezone(UTC)
            if self.today is not None and self.today != now.date():
                raise ValueError("today and now disagree")
            return now.date(), now
        today = self.today or datetime.now(UTC).date()
        return today, datetime.combine(today, time(12), UTC)


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def logged_spans(day: date, now: datetime, gaps: tuple[Gap, ...] | list[Gap]) -> tuple[Span, ...]:
    """The parts of `day`'s traffic the proxy has recorded by `now`: the day up to `now`, less logging gaps."""
    midnight = datetime.combine(day, time(), UTC)
    end_of_day = midnight + timedelta(days=1)
    pieces = [(midnight, min(now, end_of_day))]
    for start, end in gaps:
        kept: list[tuple[datetime, datetime]] = []
        for a, b in pieces:
            kept.append((a, min(b, start)))  # before the gap
            if end is not None:
                kept.append((max(a, end), b))  # after it
        pieces = [(a, b) for a, b in kept if b > a]

    def share(moment: datetime) -> float:  # exact at the day's ends, so a whole day is FULL_DAY
        return 1.0 if moment >= end_of_day else intraday_share((moment - midnight).total_seconds())

    return tuple((share(a), share(b)) for a, b in pieces if b > a)


@dataclass(frozen=True)
class Snapshot:
    """A consistent view for one request: past blocks never change, today's is swapped whole."""

    blocks: dict[date, DayBlock]
    now: datetime
    version: int
    gaps: tuple[Gap, ...] = ()  # logging outages, for the request times of /spend/logs samples

    def logged_spans(self, day: date) -> tuple[Span, ...]:
        return logged_spans(day, self.now, self.gaps)

    def between(self, start: date, end: date) -> list[DayBlock]:
        """Blocks with start <= date <= end, newest first (the table's `date DESC`)."""
        return [self.blocks[d] for d in sorted(self.blocks, reverse=True) if start <= d <= end]


@dataclass(frozen=True)
class _RawDay:
    """Full-day rows of one date before the intraday cut, sorted by user-table id."""

    day: date
    slot: NDArray[np.int32]
    ints: NDArray[np.int64]
    id_hi: NDArray[np.uint64]
    id_lo: NDArray[np.uint64]
    offset: NDArray[np.float64]  # per-row phase in [0, 1): when its first request of the day lands


class TrafficModel:
    def __init__(self, config: TrafficConfig | None = None) -> None:
        self.config = config or TrafficConfig()
        self._today, self._now = self.config.resolve()
        self._anchor = self._today.toordinal()
        self._first = self._today - timedelta(days=self.config.days - 1)
        self._lock = threading.RLock()
        self._version = 0
        unknown = sorted(set(self.config.unpriced_models) - set(MODEL_INDEX))
        if unknown:
            raise ValueError(f"unpriced_models: unknown models {unknown}; known: {sorted(MODEL_INDEX)}")
        roster = build_roster(
            self.config.users, self.config.teams, self._first, self._today, np.random.default_rng(self.config.seed)
        )
        self._roster = roster
        self._plan: Plan = plan_events(roster, self._first, self._today, self.config.inject_anomalies)
        if self.config.service_keys_only:  # after planning: the events still name who drives the traffic
            roster.keys = [replace(k, user_id=None) for k in roster.keys]
            roster.key_user = [-1] * len(roster.keys)
        self._init_arrays(roster)
        self.dims = self._build_dims(roster)
        self._blocks: dict[date, DayBlock] = {}
        self._key_spend: dict[date, NDArray[np.float64]] = {}
        self._spend_cache: dict[tuple[date | None, int], NDArray[np.float64]] = {}
        self._gaps: list[Gap] = []
        self._revisions: dict[date, float] = {}
        day = self._first
        while day < self._today:
            self._store(self._materialize(self._generate(day), FULL_DAY))
            day += timedelta(days=1)
        self._raw_today = self._generate(self._today)
        self._store(self._materialize(self._raw_today, self._spans(self._today, self._now)))
        self._size_budgets()

    # ----------------------------------------------------------------- public accessors
    @property
    def users(self) -> list[SimUser]:
        """users[0] is the master key's user "default_user_id" (no traffic, as on a real proxy's /user/list)."""
        return list(self._roster.users)

    @property
    def teams(self) -> list[SimTeam]:
        return list(self._roster.teams)

    @property
    def keys(self) -> list[SimKey]:
        return list(self._roster.keys)

    @property
    def events(self) -> list[InjectedEvent]:
        return list(self._plan.events)

    @property
    def dates(self) -> list[date]:
        with self._lock:
            return sorted(self._blocks)

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def today(self) -> date:
        return self._today

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(dict(self._blocks), self._now, self._version, tuple(self._gaps))

    def advance(self, now: datetime) -> None:
        """Move the clock forward: today's rows grow in place (same ids), new rows appear, and crossing
        midnight finalises today and opens the next date."""
        now = _utc(now)
        with self._lock:
            if now < self._now:
                raise ValueError(f"clock cannot go back from {self._now.isoformat()} to {now.isoformat()}")
            while now.date() > self._today:
                self._store(self._materialize(self._raw_today, self._spans(self._today, now)))
                self._today += timedelta(days=1)
                self._raw_today = self._generate(self._today)
            self._now = now
            self._store(self._materialize(self._raw_today, self._spans(self._today, now)))

    def advance_by(self, delta: timedelta) -> None:
        """Atomic `advance(now + delta)`: concurrent requests each add their step."""
        with self._lock:
            self.advance(self._now + delta)

    def catch_up(self, now: datetime) -> None:
        """Advance to `now` unless the clock is already past it (for a wall-clock-driven server)."""
        now = _utc(now)
        with self._lock:
            if now > self._now:
                self.advance(now)

    def stop_logging(self, at: datetime) -> None:
        """The proxy's spend logging breaks at `at` (UTC): requests still arrive, nothing is recorded.

        The date of `at` keeps what was written before `at`; later dates, including those the clock reaches
        afterwards, have no rows until `resume_logging`. `at` may lie before the first date (no data at all),
        in the past, or ahead of the clock. Entity budget counters lose the same spend.
        """
        at = _utc(at)
        with self._lock:
            if self._gaps and self._gaps[-1][1] is None:
                raise ValueError(f"logging is already stopped (since {self._gaps[-1][0].isoformat()})")
            last_end = self._gaps[-1][1] if self._gaps else None
            if last_end is not None and at < last_end:
                raise ValueError(f"logging resumed at {last_end.isoformat()}; it cannot stop before that")
            self._gaps.append((at, None))
            self._rebuild(at.date())

    def resume_logging(self, at: datetime) -> None:
        """Logging works again from `at` (UTC): requests made from then on are recorded as usual."""
        at = _utc(at)
        with self._lock:
            if not self._gaps or self._gaps[-1][1] is not None:
                raise ValueError("logging is not stopped")
            start = self._gaps[-1][0]
            if at < start:
                raise ValueError(f"logging stopped at {start.isoformat()}; it cannot resume before that")
            self._gaps[-1] = (start, at)
            self._rebuild(start.date())

    def revise_day(self, day: date, factor: float) -> None:
        """A late flush (API.md §6): every row of a past, complete `day` is scaled by `factor` after the fact —
        spend exactly, token and request counters rounded — in the user and team tables alike. Revisions of the
        same day compound. The day's block gets a new version, so no cached answer is reused."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number, not {factor!r}")
        with self._lock:
            if day not in self._blocks or day >= self._today:
                raise ValueError(f"{day.isoformat()} is not a past, complete date of this model")
            self._revisions[day] = self._revisions.get(day, 1.0) * factor
            self._store(self._materialize(self._generate(day), self._spans(day, self._now)))

    def truth(self, grain: Grain, start: date, end: date) -> TruthTable:
        """Ground truth from the raw rows, independent of the response builders.

        It is what the proxy serves, not what happened: requests made during a logging outage are missing from
        it, a revised day shows its revised counters, and unpriced models count with spend 0.
        """
        return compute_truth(self.snapshot(), self.dims, grain, start, end)

    def key_spend_since(self, start: date | None) -> NDArray[np.float64]:
        """Spend per key index from `start` (None: all history) up to now."""
        with self._lock:
            cache_key = (start, self._version)
            cached = self._spend_cache.get(cache_key)
            if cached is None:
                total = np.zeros(self.dims.n_keys)
                for day, spend in self._key_spend.items():
                    if start is None or day >= start:
                        total += spend
                if len(self._spend_cache) > 64:
                    self._spend_cache.clear()
                cached = self._spend_cache[cache_key] = total
            return cached

    def budget_state(self, kind: Literal["user", "team", "key"], entity_id: str) -> bud.BudgetState:
        """The budget fields the proxy would report for one entity at the model's `now`."""
        with self._lock:
            now = self._now
            r = self._roster
            if kind == "key":
                index = next(i for i, k in enumerate(r.keys) if k.token == entity_id)
                mask = np.arange(len(r.keys)) == index
                key = r.keys[index]
                limits: tuple[float | None, float | None, str | None] = (
                    key.max_budget,
                    key.soft_budget,
                    key.budget_duration,
                )
            elif kind == "user":
                index = next(i for i, u in enumerate(r.users) if u.user_id == entity_id)
                mask = self._key_user == index
                user = r.users[index]
                limits = (user.max_budget, None, user.budget_duration)
            else:
                index = next(i for i, t in enumerate(r.teams) if t.team_id == entity_id)
                mask = self._key_team == index
                team = r.teams[index]
                limits = (team.max_budget, team.soft_budget, team.budget_duration)
            total = float(self.key_spend_since(None)[mask].sum())
            duration = limits[2]
            if duration is None:
                return bud.BudgetState(total, total, limits[0], limits[1], None, None, None)
            reset = bud.next_reset(duration, now)
            start = bud.window_start(duration, reset)
            spend = float(self.key_spend_since(start.date())[mask].sum())
            return bud.BudgetState(spend, total, limits[0], limits[1], duration, reset, start)

    def model_prices(self) -> dict[str, NDArray[np.float64]]:
        return dict(self._m)

    # ----------------------------------------------------------------- construction
    def _init_arrays(self, roster: Roster) -> None:
        a = roster.actors
        self._a_rate = np.array(a.base_rate)
        self._a_pwd = np.array(a.p_weekday)
        self._a_pwe = np.array(a.p_weekend)
        self._a_wer = np.array(a.weekend_rate)
        self._a_sigma = np.array(a.sigma)
        self._a_first = np.array([d.toordinal() for d in a.first_day], dtype=np.int64)
        self._a_month_end = np.array(a.month_end, dtype=np.bool_)
        s = roster.slots.arrays()
        self._s_key = s["key"].astype(np.int32)
        self._s_model = s["model"].astype(np.int32)
        self._s_actor = s["actor"].astype(np.intp)
        self._s_rate = s["rate"].astype(np.float64)
        self._s_prompt = s["prompt_mean"].astype(np.float64)
        self._s_completion = s["completion_mean"].astype(np.float64)
        self._s_on = s["on"].astype(np.float64)
        self._key_user = np.array(roster.key_user, dtype=np.int32)
        self._key_team = np.array(roster.key_team, dtype=np.int32)
        self._m = model_arrays()
        for name in self.config.unpriced_models:  # LiteLLM prices what it cannot find at $0
            for column in _PRICE_COLUMNS:
                self._m[column][MODEL_INDEX[name]] = 0.0

    def _build_dims(self, r: Roster) -> Dims:
        users = r.users
        key_meta = [
            {
                "key_alias": k.key_alias,
                "team_id": k.team_id,
                "user_id": k.user_id,
                "user_email": users[r.key_user[i]].user_email if r.key_user[i] >= 0 else None,
                "key_exists": True,
            }
            for i, k in enumerate(r.keys)
        ]
        group_index = np.array([GROUPS.index(m.model_group) for m in MODELS], dtype=np.int32)
        provider_index = np.array([PROVIDERS.index(m.provider) for m in MODELS], dtype=np.int32)
        endpoint_index = np.array([ENDPOINTS.index(m.endpoint) for m in MODELS], dtype=np.int32)
        key_user = np.where(self._key_user >= 0, self._key_user, len(users)).astype(np.int32)
        return Dims(
            slot_key=self._s_key,
            slot_model=self._s_model,
            slot_group=group_index[self._s_model],
            slot_provider=provider_index[self._s_model],
            slot_endpoint=endpoint_index[self._s_model],
            slot_user=key_user[self._s_key],
            slot_team=self._key_team[self._s_key],
            key_tokens=[k.token for k in r.keys],
            key_meta=key_meta,
            models=[m.model for m in MODELS],
            groups=list(GROUPS),
            providers=list(PROVIDERS),
            endpoints=list(ENDPOINTS),
            user_entities=[u.user_id for u in users] + ["Unassigned"],
            user_meta=[{"user_email": u.user_email, "user_alias": u.user_alias} for u in users]
            + [{"user_email": None, "user_alias": None}],
            team_ids=[t.team_id for t in r.teams],
            team_meta=[{"team_alias": t.team_alias} for t in r.teams],
        )

    def _spans(self, day: date, now: datetime) -> tuple[Span, ...]:
        return logged_spans(day, now, self._gaps)

    def _rebuild(self, since: date) -> None:
        """Re-cut every stored date from `since` on, after the logging gaps changed."""
        for day in sorted(self._blocks):
            if day >= since:
                raw = self._raw_today if day == self._today else self._generate(day)
                self._store(self._materialize(raw, self._spans(day, self._now)))

    # ----------------------------------------------------------------- generation
    def _actor_factor(self, day: date, rng: np.random.Generator) -> NDArray[np.float64]:
        ordinal = day.toordinal()
        weekend = day.weekday() >= 5
        active = rng.random(self._a_rate.shape[0]) < (self._a_pwe if weekend else self._a_pwd)
        active &= self._a_first <= ordinal
        noise = np.exp(rng.normal(0.0, self._a_sigma) - self._a_sigma**2 / 2)  # mean-one multiplicative
        potential = noise * (self._a_wer if weekend else 1.0) * np.exp(GROWTH_PER_DAY * (ordinal - self._anchor))
        if is_month_end(day):
            potential = np.where(self._a_month_end, potential * MONTH_END_FACTOR, potential)
        factor = potential * active
        for e in self._plan.actor_effects:
            if e.start <= day <= e.end:
                if e.actors is None:
                    factor *= e.factor
                else:
                    idx = np.array(e.actors, dtype=np.intp)
                    base = potential[idx] if e.force_active else factor[idx]
                    factor[idx] = base * e.factor
        return np.asarray(factor, dtype=np.float64)

    def _slot_lambda(self, day: date, factor: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        mult = self._s_on.copy()
        fail_all = np.zeros(mult.shape[0], dtype=np.bool_)
        active = [e for e in self._plan.slot_effects if e.start <= day <= e.end]
        for e in sorted(active, key=lambda e: e.mode != "on"):  # switch shadows on before scaling
            idx = np.array(e.slots, dtype=np.intp)
            if e.mode == "on":
                mult[idx] = e.factor
            elif e.mode == "mul":
                mult[idx] *= e.factor
            fail_all[idx] |= e.fail_all
        lam = self._s_rate * factor[self._s_actor] * mult
        for e in active:
            if e.mode == "rate":  # a loop runs whether or not its owner is at the keyboard
                lam[np.array(e.slots, dtype=np.intp)] = e.factor
        return lam, fail_all

    def _generate(self, day: date) -> _RawDay:
        rng = np.random.default_rng([self.config.seed, day.toordinal()])
        lam, fail_all = self._slot_lambda(day, self._actor_factor(day, rng))
        requests = rng.poisson(lam)
        slots = np.flatnonzero(requests).astype(np.int32)
        n = requests[slots].astype(np.int64)
        model = self._s_model[slots]
        m = self._m
        k = slots.shape[0]
        failed = np.where(fail_all[slots], n, rng.binomial(n, m["fail_rate"][model]))
        ok = n - failed
        prompt = np.rint(ok * self._s_prompt[slots] * np.exp(rng.normal(0, 0.15, k)))
        completion = np.rint(ok * self._s_completion[slots] * np.exp(rng.normal(0, 0.15, k)))
        cache_read = np.rint(prompt * m["cache_read_share"][model] * np.clip(rng.normal(1, 0.1, k), 0.5, 1.4))
        cache_creation = np.rint(prompt * m["cache_creation_share"][model] * np.clip(rng.normal(1, 0.2, k), 0.3, 1.6))
        response_ms = np.rint(n * m["latency_ms"][model] * np.exp(rng.normal(0, 0.2, k)))
        ints = np.zeros((k, 8), dtype=np.int64)
        ints[:, PROMPT] = prompt
        ints[:, COMPLETION] = completion
        ints[:, CACHE_READ] = cache_read
        ints[:, CACHE_CREATION] = cache_creation
        ints[:, REQUESTS] = n
        ints[:, SUCCESSFUL] = ok
        ints[:, FAILED] = failed
        ints[:, RESPONSE_MS] = response_ms
        hi, lo = row_ids(self.config.seed, day.toordinal(), slots, USER_TABLE_SALT)
        order = np.lexsort((lo, hi))
        lo_sorted = lo[order]
        offset = (lo_sorted >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        return _RawDay(day, slots[order], ints[order], hi[order], lo_sorted, offset)

    def _materialize(self, raw: _RawDay, spans: tuple[Span, ...]) -> DayBlock:
        """The rows of `raw` as recorded: the requests made within `spans` of the day, then any revision."""
        if spans == FULL_DAY:
            slots, ints, hi, lo = raw.slot, raw.ints, raw.id_hi, raw.id_lo
        else:
            full = raw.ints[:, REQUESTS]

            def made_by(share: float) -> NDArray[np.int64]:  # requests a row has made when `share` is reached
                return np.minimum(np.floor(full * share + raw.offset).astype(np.int64), full)

            now_n = np.zeros_like(full)
            for start, end in spans:
                now_n += made_by(end) - made_by(start)
            keep = now_n > 0  # a row exists once its first recorded request of the day has been made
            slots, hi, lo = raw.slot[keep], raw.id_hi[keep], raw.id_lo[keep]
            full, now_n = full[keep], now_n[keep]
            ints = raw.ints[keep] * now_n[:, None] // full[:, None]  # counters grow monotonically
            ints[:, REQUESTS] = now_n
            ints[:, SUCCESSFUL] = now_n - ints[:, FAILED]
        model = self._s_model[slots]
        m = self._m
        uncached = ints[:, PROMPT] - ints[:, CACHE_READ] - ints[:, CACHE_CREATION]
        floats = np.empty((slots.shape[0], 2))
        floats[:, 0] = (
            uncached * m["input_cost"][model]
            + ints[:, CACHE_READ] * m["cache_read_cost"][model]
            + ints[:, CACHE_CREATION] * m["cache_creation_cost"][model]
            + ints[:, COMPLETION] * m["output_cost"][model]
        )
        floats[:, 1] = ints[:, CACHE_READ] * (m["input_cost"][model] - m["cache_read_cost"][model])
        revision = self._revisions.get(raw.day)
        if revision is not None:  # spend scales exactly; counters to the nearest whole number
            floats *= revision
            ints = np.rint(ints * revision).astype(np.int64)
            ints[:, SUCCESSFUL] = ints[:, REQUESTS] - ints[:, FAILED]  # rint is monotonic: never negative
        team = self._key_team[self._s_key[slots]]
        with_team = np.flatnonzero(team >= 0)
        t_hi, t_lo = row_ids(self.config.seed, raw.day.toordinal(), slots[with_team], TEAM_TABLE_SALT)
        team_rows = with_team[np.lexsort((t_lo, t_hi))]
        self._version += 1
        return DayBlock(raw.day, raw.day.isoformat(), self._version, slots, ints, floats, hi, lo, team_rows)

    def _store(self, block: DayBlock) -> None:
        self._blocks[block.day] = block
        spend = np.bincount(self._s_key[block.slot], weights=block.floats[:, 0], minlength=self.dims.n_keys)
        self._key_spend[block.day] = spend.astype(np.float64)

    # ----------------------------------------------------------------- budgets
    def _recent_daily(self, mask: NDArray[np.bool_]) -> float:
        """Average daily spend of the masked keys over the last 7 complete days."""
        days = [self._today - timedelta(days=i) for i in range(1, 8)]
        values = [float(self._key_spend[d][mask].sum()) for d in days if d in self._key_spend]
        return sum(values) / len(values) if values else 0.0

    def _projection(self, mask: NDArray[np.bool_], duration: str) -> tuple[float, float, float]:
        reset = bud.next_reset(duration, self._now)
        start = bud.window_start(duration, reset)
        spend = float(self.key_spend_since(start.date())[mask].sum())
        left_days = (reset - self._now).total_seconds() / 86400.0
        return spend, self._recent_daily(mask), left_days

    def _size_budgets(self) -> None:
        """Size budgets from the traffic so the demo has one team about to breach and one near 95 %."""
        r = self._roster
        rng = np.random.default_rng([self.config.seed, 0xB0D6E7])
        for t, team in enumerate(r.teams):
            duration = _TEAM_DURATIONS[t] if t < len(_TEAM_DURATIONS) else ("30d" if t % 2 == 0 else None)
            if duration is None:
                continue
            spend, rate, left = self._projection(self._key_team == t, duration)
            if t == 0:  # on course to cross its budget a few days before the reset, and within 4 days
                target = spend + rate * min(max(left - 3.0, left / 2.0), 4.0)
                budget = max(_round_sig(target), _round_sig(spend * 1.01 + 0.01, up=True))
            elif t == 1:  # will end the window near 95 %
                budget = _round_sig((spend + rate * left) / 0.95)
            else:
                budget = _nice_up(2.5 * (spend + rate * left))
            soft = _round_sig(budget * 0.8) if t in (0, 2) else None
            r.teams[t] = replace(team, max_budget=max(budget, 1.0), soft_budget=soft, budget_duration=duration)
        for i, user in enumerate(r.users):
            if user.profile == "admin" or rng.random() < 0.15:
                continue
            spend, rate, left = self._projection(self._key_user == i, "30d")
            r.users[i] = replace(user, max_budget=_nice_up(2.0 * (spend + rate * left)), budget_duration="30d")
        for i, key in enumerate(r.keys):
            if i == r.roles.get("runaway_key") or (key.user_id is not None and rng.random() >= 0.4):
                continue
            spend, rate, left = self._projection(np.arange(len(r.keys)) == i, "30d")
            budget = _nice_up(3.0 * (spend + rate * left))
            soft = _round_sig(0.8 * budget) if key.user_id is None or rng.random() < 0.35 else None
            budget_id = _uuid(rng) if soft is not None else None
            r.keys[i] = replace(key, max_budget=budget, soft_budget=soft, budget_duration="30d", budget_id=budget_id)


def _round_sig(value: float, up: bool = False) -> float:
    if value <= 0:
        return 0.0
    scale = 10 ** (int(np.floor(np.log10(value))) - 2)
    return float((np.ceil if up else np.round)(value / scale) * scale)


def _nice_up(value: float) -> float:
    return next((n for n in _NICE if n >= value), _NICE[-1])


def _uuid(rng: np.random.Generator) -> str:
    h = rng.bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def describe(model: TrafficModel) -> dict[str, Any]:
    """Small summary for logs and the CLI banner."""
    snap = model.snapshot()
    rows = sum(b.rows for b in snap.blocks.values())
    return {
        "users": len(model.users) - 1,
        "teams": len(model.teams),
        "keys": len(model.keys),
        "dates": len(snap.blocks),
        "rows": rows,
        "now": snap.now.isoformat(),
        "events": len(model.events),
    }
