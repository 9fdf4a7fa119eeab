"""Budget watch over the store: statuses as of now, alerts that fire once per window, and replay.

I/O lives here (reading the store, recording fired signals); windows, forecasts and signal
selection are pure functions in the sibling modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlite_utils

from sentinel.budget import specs as budget_specs
from sentinel.budget.evaluate import Signal, due_signals, to_alert
from sentinel.budget.forecast import DayMoments, ShareOfDay, day_moments, project, uniform_share
from sentinel.budget.model import BudgetSpec, BudgetStatus
from sentinel.budget.specs import Catalog, Policy, ProxyLimit
from sentinel.detect.engine import DetectionData, load
from sentinel.detect.explain import child_series
from sentinel.detect.series import SeriesMatrix
from sentinel.rules.loader import RuleSet
from sentinel.store import budget_signals, transaction
from sentinel.store import state as state_store

WINDOW_HISTORY_DAYS = 130  # fit window (8 weeks) + the longest usual budget window, with room
STALE_COUNTER = timedelta(hours=3)
TOP_DRIVERS = 3


def _matrix(data: DetectionData, kind: str) -> SeriesMatrix:
    return data.total if kind == "total" else data.spend[kind]


@dataclass
class Context:
    """What one evaluation reads, loaded once and shared by ``statuses``, ``with_drivers`` and ``check``:
    spend series per source (None: all sources summed) and fitted moments per (source, kind, day)."""

    db: sqlite_utils.Database
    start: date
    end: date
    loaded: dict[str | None, DetectionData] = field(default_factory=dict)
    moments: dict[tuple[str | None, str, date], DayMoments] = field(default_factory=dict)
    positions: dict[tuple[str | None, str], dict[str, int]] = field(default_factory=dict)
    only_source: str | None = None  # with a single source, "all sources" is that source: load it once

    def data(self, source: str | None) -> DetectionData:
        key = source or self.only_source
        if key not in self.loaded:
            self.loaded[key] = load(self.db, self.start, self.end, key, spend_only=True)
        return self.loaded[key]

    def position(self, source: str | None, kind: str, entity: str) -> int | None:
        """Row of an entity in its kind's matrix (None: no activity stored for it)."""
        key = (source or self.only_source, kind)
        if key not in self.positions:
            self.positions[key] = {e: i for i, e in enumerate(_matrix(self.data(source), kind).entities)}
        return self.positions[key].get(entity)

    def moments_for(self, source: str | None, kind: str, as_of: date, horizon: int) -> DayMoments:
        """Baseline moments fitted on the days before ``as_of``, for ``horizon`` days from it."""
        key = (source or self.only_source, kind, as_of)
        cached = self.moments.get(key)
        if cached is None or cached.mean.shape[1] < horizon:
            matrix = _matrix(self.data(source), kind)
            history = matrix.values[:, : max(matrix.index_of(as_of), 0)]
            cached = self.moments[key] = day_moments(history, as_of, max(horizon, 40))
        return cached


def context(db: sqlite_utils.Database, now: datetime, *, history_days: int = WINDOW_HISTORY_DAYS) -> Context:
    """A fresh evaluation context for ``now`` (history for fits and windows up to ``now``'s day)."""
    today = now.astimezone(UTC).date()
    sources = state_store.known_sources(db)
    return Context(
        db, today - timedelta(days=history_days), today, only_source=sources[0] if len(sources) == 1 else None
    )


def _forecast_status(
    spec: BudgetSpec, data: Context, policy: Policy, share: ShareOfDay, note: str | None = None
) -> BudgetStatus:
    """Attach the forecast to a spec (or say why there is none)."""
    if spec.window_end is None:
        return BudgetStatus(spec, None, note=note or "no budget_duration: the counter never resets")
    if spec.window_end <= spec.spent_as_of:
        return BudgetStatus(spec, None, note=note or "the window has ended; the proxy resets the counter shortly")
    as_of_day = spec.spent_as_of.astimezone(UTC).date()
    horizon = (spec.window_end.astimezone(UTC).date() - as_of_day).days + 2
    moments = data.moments_for(spec.source, spec.entity_type, as_of_day, horizon)
    position = data.position(spec.source, spec.entity_type, spec.entity_id)
    row = moments.row(position) if position is not None else None
    if row is None:
        return BudgetStatus(spec, None, note=note or "too little spend history for a forecast")
    fc = project(spec.spent, spec.limit, spec.spent_as_of, spec.window_end, row, share=share, interval=policy.interval)
    return BudgetStatus(spec, fc, note=note)


def drivers(data: DetectionData, spec: BudgetSpec, top: int = TOP_DRIVERS) -> tuple[dict[str, object], ...]:
    """What the window's spend went to: the entity's top users, models, keys (or providers, teams)."""
    if spec.window_start is None:
        return ()
    matrix = data.explain.model_key
    lo = max(matrix.index_of(spec.window_start.astimezone(UTC).date()), 0)
    hi = min(matrix.index_of(spec.spent_as_of.astimezone(UTC).date()), matrix.days - 1)
    if hi < lo:
        return ()
    found: dict[str, list[tuple[str, float]]] = {}
    for child, ident, series in child_series(data.explain, spec.entity_type, spec.entity_id):
        spend = float(np.sum(series[lo : hi + 1]))
        if spend > 0:
            found.setdefault(child, []).append((ident, spend))
    out: list[dict[str, object]] = []
    for child in ("user", "model", "key", "provider", "team"):
        ranked = sorted(found.get(child, []), key=lambda x: -x[1])[:top]
        child_total = sum(s for _i, s in found.get(child, []))
        for ident, spend in ranked:
            out.append(
                {
                    "type": child,
                    "id": ident,
                    "spend_usd": round(spend, 6),
                    "share": round(spend / child_total, 4) if child_total else None,
                }
            )
    return tuple(out)


# ---------------------------------------------------------------------------------------------- now
def _share_of_day(db: sqlite_utils.Database, today: date) -> ShareOfDay:
    from sentinel.detect.intraday import learn_profile, share_at
    from sentinel.store.facts import intraday_snapshots

    snaps, finals = intraday_snapshots(db, today - timedelta(days=28), today - timedelta(days=1))
    profile = learn_profile(snaps, finals)
    if profile is None:
        return uniform_share
    return lambda moment: share_at(profile, moment.astimezone(UTC))


def _polled_at(db: sqlite_utils.Database, source: str | None, now: datetime) -> datetime:
    """When the activity a rule budget sums was last read (now, if never or unknown)."""
    sources = [source] if source else state_store.known_sources(db)
    stamps = [state_store.get_state(db, s).last_success_at for s in sources]
    known = [datetime.fromisoformat(s) for s in stamps if s]
    return min(max(known), now) if known else now


def statuses(
    db: sqlite_utils.Database,
    now: datetime,
    policy: Policy,
    rules: RuleSet,
    *,
    source: str | None = None,
    ctx: Context | None = None,
) -> list[BudgetStatus]:
    """Every budget as of ``now``: proxy budgets from the stored counters, rule budgets from activity."""
    today = now.astimezone(UTC).date()
    data = ctx or context(db, now)
    share = _share_of_day(db, today)
    out: list[BudgetStatus] = []
    if policy.proxy_budgets:
        for limit in budget_specs.proxy_limits(db):
            if source and limit.source != source:
                continue
            out.append(_proxy_status(limit, data, policy, share, now))
    catalogs: dict[str | None, Catalog] = {}
    for spec in _rule_budgets(data, rules, policy, source, lambda s: _polled_at(db, s, now), catalogs):
        out.append(_forecast_status(spec, data, policy, share))
    return out


def _rule_budgets(
    data: Context,
    rules: RuleSet,
    policy: Policy,
    source: str | None,
    at: Callable[[str | None], datetime],
    catalogs: dict[str | None, Catalog],
) -> Iterator[BudgetSpec]:
    """Every rule budget (rule x selected entity) as of ``at(source)``; catalogs are cached by source."""
    for rule in rules.budgets:
        if source and rule.source not in (None, source):
            continue
        rule_source = rule.source or source
        loaded = data.data(rule_source)
        if rule_source not in catalogs:
            catalogs[rule_source] = budget_specs.catalog(data.db, loaded.spend, rule_source)
        cat = catalogs[rule_source]
        matrix = _matrix(loaded, rule.entity)
        chosen = budget_specs.select(rule, cat)
        for spec in budget_specs.rule_specs(rule, chosen, cat, matrix, at(rule_source), policy):
            yield replace(spec, source=rule_source)


def _proxy_status(limit: ProxyLimit, data: Context, policy: Policy, share: ShareOfDay, now: datetime) -> BudgetStatus:
    at = limit.seen_at
    spent = limit.spend
    zone = policy.zone(limit.source)
    if limit.suffix:  # an extra budget_limits window: the proxy gives no counter, so sum the activity
        start, _end, _note = budget_specs.proxy_window(limit, at, zone)
        matrix = _matrix(data.data(limit.source), limit.entity_type)
        spent = budget_specs.window_spend(matrix, limit.entity_id, start, at.date()) if start else 0.0
    basis = "daily activity" if limit.suffix else "proxy counter"
    spec, note = budget_specs.proxy_spec(limit, policy, spent, at, basis)
    if note is None and now - at > STALE_COUNTER:
        note = f"budget counter read {(now - at).total_seconds() / 3600:.0f} h ago (entity sync stale)"
    return _forecast_status(spec, data, policy, share, note)


def with_drivers(
    db: sqlite_utils.Database, statuses_: Iterable[BudgetStatus], now: datetime, ctx: Context | None = None
) -> list[BudgetStatus]:
    """The same statuses with drivers filled in (only worth the cost for budgets people will read)."""
    data = ctx or context(db, now)
    return [replace(s, drivers=drivers(data.data(s.spec.source), s.spec)) for s in statuses_]


Due = tuple[BudgetStatus, Signal, dict[str, object]]


def due(
    db: sqlite_utils.Database, statuses_: list[BudgetStatus], now: datetime, ctx: Context | None = None
) -> list[Due]:
    """Signals due now (not yet fired in their window), each with its alert record; writes nothing."""
    fired = budget_signals.fired(db, [(s.spec.budget_id, s.spec.period_key) for s in statuses_])
    pending = [
        (status, signal)
        for status in statuses_
        for signal in due_signals(status, fired.get((status.spec.budget_id, status.spec.period_key), frozenset()))
    ]
    if not pending:
        return []
    explained = dict(zip((id(s) for s, _ in pending), with_drivers(db, (s for s, _ in pending), now, ctx), strict=True))
    return [(status, signal, to_alert(explained[id(status)], signal, now)) for status, signal in pending]


def record(db: sqlite_utils.Database, fired: list[Due], now: datetime) -> None:
    """Mark signals fired, inside the caller's transaction (the one that queues their alerts)."""
    for status, signal, alert in fired:
        budget_signals.record(
            db, status.spec.budget_id, status.spec.period_key, signal.covers, now, status.spec.spent, alert
        )


def check(
    db: sqlite_utils.Database, statuses_: list[BudgetStatus], now: datetime, ctx: Context | None = None
) -> list[dict[str, object]]:
    """Alerts due now; each (budget, window, signal) is recorded so it never fires twice, even across
    restarts. Recording and the returned alerts come from one transaction."""
    fired = due(db, statuses_, now, ctx)
    if fired:
        with transaction(db):
            record(db, fired, now)
    return [alert for _s, _sig, alert in fired]


# ---------------------------------------------------------------------------------------------- replay
def _always(moment: datetime) -> Callable[[str | None], datetime]:
    return lambda _source: moment


def backtest(
    db: sqlite_utils.Database,
    since: date,
    until: date,
    policy: Policy,
    rules: RuleSet,
    *,
    source: str | None = None,
) -> list[dict[str, object]]:
    """Replay budget alerts day by day, each day seeing only activity up to its end.

    Rule budgets replay exactly. Proxy budgets replay with today's limits and durations and with
    spend summed from daily activity (the proxy keeps no history of its counters).
    """
    last = datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
    data = context(db, last, history_days=(until - since).days + 1 + WINDOW_HISTORY_DAYS)
    fired: dict[tuple[str, str], frozenset[str]] = {}
    limits = [lim for lim in budget_specs.proxy_limits(db) if not lim.suffix] if policy.proxy_budgets else []
    limits = [lim for lim in limits if not source or lim.source == source]
    catalogs: dict[str | None, Catalog] = {}
    alerts: list[dict[str, object]] = []
    day = since
    while day <= until:
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) - timedelta(microseconds=1)
        day_statuses: list[BudgetStatus] = []
        for limit in limits:
            start, _end, _note = budget_specs.proxy_window(replace(limit, reset_at=None), at, policy.zone(limit.source))
            matrix = _matrix(data.data(limit.source), limit.entity_type)
            spent = budget_specs.window_spend(matrix, limit.entity_id, start, day) if start else float("nan")
            if start is None:
                continue  # a lifetime budget has no history to replay
            spec, note = budget_specs.proxy_spec(replace(limit, reset_at=None), policy, spent, at, "daily activity")
            day_statuses.append(_forecast_status(spec, data, policy, uniform_share, note))
        for spec in _rule_budgets(data, rules, policy, source, _always(at), catalogs):
            day_statuses.append(_forecast_status(spec, data, policy, uniform_share))
        for status in day_statuses:
            key = (status.spec.budget_id, status.spec.period_key)
            for signal in due_signals(status, fired.get(key, frozenset())):
                fired[key] = fired.get(key, frozenset()) | set(signal.covers)
                explained = replace(status, drivers=drivers(data.data(status.spec.source), status.spec))
                alerts.append(to_alert(explained, signal, at))
        day += timedelta(days=1)
    return alerts
