"""The weekly digest as a value: pure functions of what ``digest.data`` read from the store and ``now``.

A digest covers the 7 UTC days before its scheduled time (``schedule.period_of``) and compares
them with the 7 days before those. It carries:

- totals and the change from the previous week;
- spend per day over ``weeks`` weeks, each day with the baseline's expectation and band. The
  baseline of a day is fitted on the days before that day only (the same one-day-ahead fit the
  anomaly detector scores a day against, ``detect.anomaly.fit_for``), so the band shows what was
  expected at the time, not what hindsight would say; the band is expected ± ``BAND_Z`` spreads;
- spend by provider and by team (a team's digest: by user, within the team) for the week;
- top movers: the users, models and keys whose spend changed most in dollars from the previous week;
- the week's anomaly episodes (detection replayed over the week, plus anomaly alerts that fired
  in it), each with its state (ongoing or ended, and the alert's firing or resolved) and impact;
- every budget: spent, limit, % used, forecast at the window's end, breach ETA and runway.

A team's digest restricts all of it to the team: its daily spend (the team grain), and its keys'
spend per model, provider, key and key owner (the model × key grain over the team's keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from sentinel.budget.model import STATE_RANK, STATES, BudgetStatus
from sentinel.detect.baseline import WEEKS, fit
from sentinel.detect.explain import provider_of
from sentinel.detect.score import score
from sentinel.detect.series import SeriesMatrix
from sentinel.digest.schedule import period_of
from sentinel.notify.model import Alert

BAND_Z = 3.0  # the band around the expectation: expected ± 3 spreads (a normal day falls inside it)
TOP_MOVERS = 5
TOP_SHARES = 8  # providers / teams shown by name; the rest are summed as "other"
FIT_DAYS = WEEKS * 7  # history a day's baseline is fitted on (8 weeks)
MOVER_KINDS = ("user", "model", "key")
NO_TEAM = "(no team)"
NO_USER = "(no user)"


# ----------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class WeekSums:
    """Spend per entity of one grain: the digest's week and the week before."""

    this: Mapping[str, float]
    previous: Mapping[str, float]


@dataclass(frozen=True)
class Inputs:
    """Everything a digest is built from, as read by ``digest.data.read`` (one read serves every audience)."""

    due_at: datetime  # the scheduled time (UTC) whose period this is
    now: datetime  # when it is built; budgets are as of this moment
    weeks: int
    daily: SeriesMatrix  # the total grain (one row), from history_start(...) to the period's last day
    team_daily: SeriesMatrix  # the team grain, same days
    sums: Mapping[str, WeekSums]  # total, provider, team, user, model, key, model_key ("model\x1fkey")
    aliases: Mapping[str, Mapping[str, str]]  # user / team / key -> id -> alias
    key_owner: Mapping[str, str]
    key_team: Mapping[str, str]
    team_members: Mapping[str, frozenset[str]]  # team id -> user ids (members, and owners of its keys)
    anomalies: tuple[Mapping[str, object], ...]  # detect.engine.backtest records (with "episode")
    alerts: tuple[Alert, ...]  # anomaly alerts from the alert state
    budgets: tuple[BudgetStatus, ...]

    @property
    def period(self) -> tuple[date, date]:
        return period_of(self.due_at)

    def team_name(self, team_id: str) -> str:
        return self.aliases.get("team", {}).get(team_id, team_id)

    def teams(self) -> dict[str, str]:
        """Every known team id -> its display name."""
        ids = set(self.aliases.get("team", {})) | set(self.team_members) | set(self.key_team.values())
        ids |= set(self.team_daily.entities)
        return {t: self.team_name(t) for t in sorted(ids)}


def history_start(period_end: date, weeks: int) -> date:
    """The first day read for the daily chart: its first day, less the history its baseline is fitted on."""
    return period_end - timedelta(days=weeks * 7 - 1 + FIT_DAYS)


# ---------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class DayPoint:
    day: date
    spend: float
    expected: float | None  # None: too little history for a baseline that day
    lower: float | None
    upper: float | None


class Compared:
    """Spend against the period before (the ``spend`` and ``previous`` of the dataclass it is mixed into)."""

    spend: float
    previous: float

    @property
    def change(self) -> float:
        return self.spend - self.previous

    @property
    def change_pct(self) -> float | None:
        return None if self.previous <= 0 else 100.0 * self.change / self.previous


@dataclass(frozen=True)
class Share(Compared):
    """One provider, team or user: spend this week and the week before."""

    id: str
    name: str
    spend: float
    previous: float


@dataclass(frozen=True)
class Mover(Share):
    """A user, model or key that moved most this week."""

    kind: str = field(kw_only=True)  # user | model | key


@dataclass(frozen=True)
class AnomalyLine:
    entity_type: str
    entity_id: str
    name: str
    direction: str  # up | down
    onset: date
    last_seen: date
    days: int
    state: str  # ongoing | ended (the episode, as of the period's end)
    impact_usd: float  # observed minus expected over the episode
    observed: float  # on the last day seen
    expected: float
    alert: str | None  # firing | resolved: the anomaly alert sent for it, if any
    found_by: str  # detection | alert


@dataclass(frozen=True)
class BudgetLine:
    budget_id: str
    entity_type: str
    entity_id: str
    name: str
    origin: str  # proxy | rule
    rule: str | None
    period: str  # "30d", "month", "" (lifetime)
    spent: float
    limit: float | None
    soft_limit: float | None
    pct_used: float | None
    window_end: datetime | None
    forecast: float | None  # expected spend when the window ends
    forecast_lower: float | None
    forecast_upper: float | None
    p_breach: float | None
    eta: datetime | None  # when the expected path reaches the limit
    runway: timedelta | None  # eta - now
    state: str  # exceeded | at_risk | soft_exceeded | ok
    note: str | None


@dataclass(frozen=True)
class Digest:
    audience: str  # "all" or "team:<id>"
    title: str
    team_id: str | None
    due_at: datetime
    generated_at: datetime
    period_start: date
    period_end: date
    total: float
    previous_total: float
    days: tuple[DayPoint, ...]
    by_provider: tuple[Share, ...]
    by_group: tuple[Share, ...]
    group_kind: str  # team (the whole proxy) | user (a team's digest)
    movers: tuple[tuple[str, tuple[Mover, ...]], ...]  # (kind, movers) for user, model, key
    anomalies: tuple[AnomalyLine, ...]
    budgets: tuple[BudgetLine, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def change(self) -> float:
        return self.total - self.previous_total

    @property
    def change_pct(self) -> float | None:
        return None if self.previous_total <= 0 else 100.0 * self.change / self.previous_total

    @property
    def week(self) -> tuple[DayPoint, ...]:
        return tuple(p for p in self.days if p.day >= self.period_start)

    @property
    def days_above_band(self) -> int:
        return sum(1 for p in self.week if p.upper is not None and p.spend > p.upper)

    @property
    def anomaly_impact(self) -> float:
        return sum(a.impact_usd for a in self.anomalies)

    def budget_counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for b in self.budgets:
            out[b.state] += 1
        return out


# ------------------------------------------------------------------------------------------ build
def build(inputs: Inputs, team: str | None = None) -> Digest:
    """The digest of the whole proxy, or (``team``: a team id) of one team."""
    start, end = inputs.period
    if team is None:
        return _build_all(inputs, start, end)
    return _build_team(inputs, team, start, end)


def _build_all(inputs: Inputs, start: date, end: date) -> Digest:
    total = inputs.sums["total"]
    this_total, prev_total = sum(total.this.values()), sum(total.previous.values())
    teams = inputs.sums["team"]
    groups = _shares(teams, lambda t: inputs.team_name(t))
    # Keys without a team are absent from the team grain: say how much that is, so the rows add up.
    rest_this = this_total - sum(teams.this.values())
    rest_prev = prev_total - sum(teams.previous.values())
    if abs(rest_this) >= 0.005 or abs(rest_prev) >= 0.005:
        groups = _top([*groups, Share(NO_TEAM, NO_TEAM, rest_this, rest_prev)])
    movers = tuple((kind, _movers(kind, inputs.sums[kind], inputs)) for kind in MOVER_KINDS)
    notes = _notes(inputs, inputs.daily, "")
    return Digest(
        audience="all",
        title="LiteLLM spend",
        team_id=None,
        due_at=inputs.due_at,
        generated_at=inputs.now,
        period_start=start,
        period_end=end,
        total=this_total,
        previous_total=prev_total,
        days=daily_points(inputs.daily, "", end, inputs.weeks),
        by_provider=_shares(inputs.sums["provider"], lambda p: p),
        by_group=groups,
        group_kind="team",
        movers=movers,
        anomalies=_anomalies(inputs, start, end, None),
        budgets=tuple(budget_lines(inputs.budgets, inputs.now)),
        notes=notes,
    )


def _build_team(inputs: Inputs, team: str, start: date, end: date) -> Digest:
    name = inputs.team_name(team)
    keys = frozenset(k for k, t in inputs.key_team.items() if t == team)
    members = inputs.team_members.get(team, frozenset())
    this: dict[str, dict[str, float]] = {k: {} for k in ("provider", "model", "key", "user")}
    prev: dict[str, dict[str, float]] = {k: {} for k in ("provider", "model", "key", "user")}
    mk = inputs.sums["model_key"]
    for target, sums in ((this, mk.this), (prev, mk.previous)):
        for entity, spend in sums.items():
            model, _, key = entity.partition("\x1f")
            if key not in keys:
                continue
            owner = inputs.key_owner.get(key, NO_USER)
            for kind, ident in (("provider", provider_of(model)), ("model", model), ("key", key), ("user", owner)):
                target[kind][ident] = target[kind].get(ident, 0.0) + spend
    per_kind = {k: WeekSums(this[k], prev[k]) for k in this}
    team_sums = inputs.sums["team"]
    movers = tuple((kind, _movers(kind, per_kind[kind], inputs)) for kind in MOVER_KINDS)
    users = members | {u for u in this["user"]} | {u for u in prev["user"]}
    budgets = [
        s
        for s in inputs.budgets
        if (s.spec.entity_type == "team" and s.spec.entity_id == team)
        or (s.spec.entity_type == "user" and s.spec.entity_id in members)
        or (s.spec.entity_type == "key" and s.spec.entity_id in keys)
    ]
    scope = {"team": frozenset({team}), "user": users, "key": keys}
    return Digest(
        audience=f"team:{team}",
        title=f"Team {name}",
        team_id=team,
        due_at=inputs.due_at,
        generated_at=inputs.now,
        period_start=start,
        period_end=end,
        total=team_sums.this.get(team, 0.0),
        previous_total=team_sums.previous.get(team, 0.0),
        days=daily_points(inputs.team_daily, team, end, inputs.weeks),
        by_provider=_shares(per_kind["provider"], lambda p: p),
        by_group=_shares(per_kind["user"], lambda u: _name(inputs, "user", u)),
        group_kind="user",
        movers=movers,
        anomalies=_anomalies(inputs, start, end, scope),
        budgets=tuple(budget_lines(budgets, inputs.now)),
        notes=_notes(inputs, inputs.team_daily, team),
    )


def _notes(inputs: Inputs, matrix: SeriesMatrix, entity: str) -> tuple[str, ...]:
    end = inputs.period[1]
    out = []
    if entity not in matrix.entities:
        out.append("no spend stored for this period")
    elif matrix.days and matrix.index_of(end) >= matrix.days:
        out.append("the store has no data for the end of this period yet")
    if end >= inputs.now.astimezone(UTC).date():
        out.append("the period is not over yet: its last days are still running")
    return tuple(out)


# ------------------------------------------------------------------------------------ daily chart
def daily_points(matrix: SeriesMatrix, entity: str, end: date, weeks: int) -> tuple[DayPoint, ...]:
    """Spend per day for ``weeks`` weeks ending ``end``; each day with its baseline fitted on the
    days before it (expected and the band expected ± BAND_Z spreads)."""
    first = end - timedelta(days=weeks * 7 - 1)
    if entity not in matrix.entities:
        return tuple(DayPoint(first + timedelta(days=i), 0.0, None, None, None) for i in range(weeks * 7))
    row = matrix.values[matrix.entities.index(entity)]
    return day_points(row, matrix.start, first, end)


def day_points(series: NDArray[np.float64], start: date, first: date, end: date) -> tuple[DayPoint, ...]:
    """One series (daily values from ``start``) as points ``first``..``end``: each day's spend (0
    outside the series) and the baseline fitted on the days before it, as ``detect.anomaly.fit_for``
    would fit it alone. The fits are batched: the days that fall on one weekday share an alignment,
    so each weekday's days are fitted together (``fit(independent=True)``: no row lends to another),
    seven fits instead of one per day."""
    n_days = (end - first).days + 1
    length = int(series.shape[0])
    offset = (first - start).days
    spend = [float(series[offset + i]) if 0 <= offset + i < length else 0.0 for i in range(n_days)]
    bands: dict[int, tuple[float | None, float | None, float | None]] = {}
    fitted = [i for i in range(n_days) if 1 <= offset + i < length]  # a day needs a day of history
    for weekday in range(7):
        group = [i for i in fitted if (first + timedelta(days=i)).weekday() == weekday]
        if not group:
            continue
        as_of = first + timedelta(days=group[0])
        # Each row: the FIT_DAYS before its day, zero-padded on the left (a fit reads no further back,
        # and leading zeros are days before the series began, as they are to a fit of the shorter history).
        history = np.zeros((len(group), FIT_DAYS))
        for r, i in enumerate(group):
            idx = offset + i
            window = series[max(0, idx - FIT_DAYS) : idx]
            history[r, FIT_DAYS - window.shape[0] :] = window
        baseline = fit(history, as_of - timedelta(days=FIT_DAYS), as_of, independent=True)
        observed = np.array([series[offset + i] for i in group], dtype=np.float64)
        s = score(baseline, observed, as_of, z_limit=BAND_Z)
        for r, i in enumerate(group):
            bands[i] = (_finite(float(s.expected[r])), _finite(float(s.lower[r])), _finite(float(s.upper[r])))
    out = []
    for i in range(n_days):
        expected, lower, upper = bands.get(i, (None, None, None))
        out.append(DayPoint(first + timedelta(days=i), spend[i], expected, lower, upper))
    return tuple(out)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------- shares and movers
def _name(inputs: Inputs, kind: str, ident: str) -> str:
    alias = inputs.aliases.get(kind, {}).get(ident)
    if alias:
        return alias
    if kind == "key" and len(ident) > 16:
        return ident[:10] + "…"
    return ident or "(none)"


def _shares(sums: WeekSums, name: Callable[[str], str]) -> tuple[Share, ...]:
    ids = set(sums.this) | set(sums.previous)
    rows = [Share(i, name(i), sums.this.get(i, 0.0), sums.previous.get(i, 0.0)) for i in ids]
    return _top(rows)


def _top(rows: Iterable[Share]) -> tuple[Share, ...]:
    """Largest first (this week, then last week); past TOP_SHARES, the rest summed as "other"."""
    ranked = sorted(rows, key=lambda r: (-r.spend, -r.previous, r.name))
    ranked = [r for r in ranked if abs(r.spend) >= 0.005 or abs(r.previous) >= 0.005]
    if len(ranked) <= TOP_SHARES:
        return tuple(ranked)
    head, rest = ranked[: TOP_SHARES - 1], ranked[TOP_SHARES - 1 :]
    other = Share("", f"{len(rest)} others", sum(r.spend for r in rest), sum(r.previous for r in rest))
    return (*head, other)


def _movers(kind: str, sums: WeekSums, inputs: Inputs) -> tuple[Mover, ...]:
    ids = set(sums.this) | set(sums.previous)
    rows = [Mover(i, _name(inputs, kind, i), sums.this.get(i, 0.0), sums.previous.get(i, 0.0), kind=kind) for i in ids]
    rows = [r for r in rows if abs(r.change) >= 0.005]
    rows.sort(key=lambda r: (-abs(r.change), r.name))
    return tuple(rows[:TOP_MOVERS])


# ---------------------------------------------------------------------------------------- anomalies
def _as_float(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _anomalies(
    inputs: Inputs, start: date, end: date, scope: Mapping[str, frozenset[str]] | None
) -> tuple[AnomalyLine, ...]:
    """Episodes that overlap the period (those seen within it), and anomaly alerts that fired in it
    for something detection with the default sensitivity did not flag (a rule tuned more sensitive)."""

    def wanted(etype: str, eid: str) -> bool:
        return scope is None or eid in scope.get(etype, frozenset())

    alerts = _alerts_by_entity(inputs.alerts, start, end)
    out: list[AnomalyLine] = []
    covered: set[tuple[str, str, str]] = set()
    for rec in inputs.anomalies:
        ep = rec.get("episode")
        if not isinstance(ep, Mapping):
            continue
        onset, last = date.fromisoformat(str(ep["onset"])), date.fromisoformat(str(ep["last_seen"]))
        etype, eid, direction = str(rec["entity_type"]), str(rec["entity_id"]), str(rec["direction"])
        if last < start or onset > end or not wanted(etype, eid):
            continue
        alert = alerts.get((etype, eid, direction))
        covered.add((etype, eid, direction))
        out.append(
            AnomalyLine(
                entity_type=etype,
                entity_id=eid,
                name=_name(inputs, etype, eid),
                direction=direction,
                onset=onset,
                last_seen=last,
                days=int(_as_float(ep.get("days"))),
                state=str(ep.get("state", "ended")),
                impact_usd=_as_float(ep.get("total_impact_usd")),
                observed=_as_float(ep.get("last_observed")),
                expected=_as_float(ep.get("last_expected")),
                alert=alert.status if alert else None,
                found_by="detection",
            )
        )
    for key, alert in sorted(alerts.items()):
        etype, eid, direction = key
        if key in covered or not wanted(etype, eid):
            continue
        rec = alert.record
        day = _record_day(rec, alert.starts_at)
        out.append(
            AnomalyLine(
                entity_type=etype,
                entity_id=eid,
                name=_name(inputs, etype, eid),
                direction=direction,
                onset=day,
                last_seen=day,
                days=1,
                state="ended" if alert.status == "resolved" else "ongoing",
                impact_usd=_as_float(rec.get("impact_usd")),
                observed=_as_float(rec.get("observed")),
                expected=_as_float(rec.get("expected")),
                alert=alert.status,
                found_by="alert",
            )
        )
    out.sort(key=lambda a: (-abs(a.impact_usd), a.onset, a.entity_type, a.entity_id))
    return tuple(out)


def _record_day(record: Mapping[str, object], fallback: datetime) -> date:
    try:
        return date.fromisoformat(str(record.get("date")))
    except ValueError:
        return fallback.astimezone(UTC).date()


def _alerts_by_entity(alerts: Iterable[Alert], start: date, end: date) -> dict[tuple[str, str, str], Alert]:
    """Anomaly alerts active at some point of the period, by (entity type, id, direction); the latest wins."""
    out: dict[tuple[str, str, str], Alert] = {}
    for a in sorted(alerts, key=lambda a: a.starts_at):
        began = a.starts_at.astimezone(UTC).date()
        ended = a.ends_at.astimezone(UTC).date() if a.ends_at else None
        if began > end or (ended is not None and ended < start):
            continue
        labels = a.labels
        key = (labels.get("entity_type", ""), labels.get("entity_id", ""), labels.get("direction", "up"))
        if key[0] and key[1]:
            out[key] = a
    return out


# ------------------------------------------------------------------------------------------ budgets
def budget_lines(statuses: Iterable[BudgetStatus], now: datetime) -> list[BudgetLine]:
    """Every budget, worst first: exceeded, at risk, soft exceeded, ok; then by % used."""
    out = []
    for s in statuses:
        spec, fc = s.spec, s.forecast
        eta = fc.eta if fc else None
        out.append(
            BudgetLine(
                budget_id=spec.budget_id,
                entity_type=spec.entity_type,
                entity_id=spec.entity_id,
                name=spec.display,
                origin=spec.origin,
                rule=spec.rule,
                period=spec.period,
                spent=spec.spent,
                limit=spec.limit,
                soft_limit=spec.soft_limit,
                pct_used=spec.pct_used,
                window_end=spec.window_end,
                forecast=fc.at_end if fc else None,
                forecast_lower=fc.lower if fc else None,
                forecast_upper=fc.upper if fc else None,
                p_breach=fc.p_breach if fc and spec.limit is not None else None,
                eta=eta,
                runway=max(eta - now, timedelta(0)) if eta else None,
                state=s.state,
                note=s.note,
            )
        )
    out.sort(key=lambda b: (STATE_RANK.get(b.state, 9), -(b.pct_used or 0.0), b.entity_type, b.name))
    return out
