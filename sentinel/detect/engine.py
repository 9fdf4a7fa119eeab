"""Detection over the store: load series, find anomalies for a day, replay days as episodes.

I/O is only in ``load``; ``detect_day`` and ``backtest`` are pure over the loaded matrices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import sqlite_utils

from sentinel.detect.anomaly import (
    DEFAULT_THRESHOLDS,
    Finding,
    Thresholds,
    find,
    find_unit_cost,
    fit_for,
    org_ratio,
)
from sentinel.detect.baseline import Baselines
from sentinel.detect.explain import ExplainContext, contributors, price_volume, provider_of
from sentinel.detect.series import ENTITY_GRAINS, SeriesMatrix, load_daily, to_matrix
from sentinel.models import METRIC_FIELDS, Grain

TOKEN_TYPES = ("prompt_tokens", "completion_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
EPISODE_GAP_DAYS = 4  # quiet days inside an episode (a weekend, a dip) do not end it
HISTORY_DAYS = 120  # history loaded before the first day scored (the fit itself uses the last 8 weeks)


@dataclass(frozen=True)
class DetectionData:
    start: date
    end: date
    spend: dict[str, SeriesMatrix]  # kind -> matrix
    total: SeriesMatrix
    cohorts: dict[str, np.ndarray]  # kind -> cohort index per series (-1: none)
    explain: ExplainContext
    _token_totals: dict[str, SeriesMatrix] = field(default_factory=dict, repr=False, compare=False)
    _fits: dict[str, dict[int, Baselines]] = field(default_factory=dict, repr=False, compare=False)

    def fit_cache(self, kind: str) -> dict[int, Baselines]:
        """Fits of one kind's spend matrix by day index: a day replayed with other thresholds (another
        rule's sensitivity) reuses them instead of fitting again."""
        return self._fits.setdefault(kind, {})

    def total_tokens(self, kind: str) -> SeriesMatrix:
        """All token types summed (the denominator of spend per token), derived once per load
        rather than on every day a backtest replays."""
        cached = self._token_totals.get(kind)
        if cached is None:
            parts = self.explain.tokens[kind]
            first = parts[TOKEN_TYPES[0]]
            total = np.sum(np.stack([parts[t].values for t in TOKEN_TYPES]), axis=0)
            cached = self._token_totals[kind] = SeriesMatrix(first.entities, first.start, total)
        return cached


def load(
    db: sqlite_utils.Database, start: date, end: date, source: str | None = None, *, spend_only: bool = False
) -> DetectionData:
    """Every series from ``start`` to ``end``; ``spend_only`` skips the token matrices (budgets need
    none of them, and reading one counter instead of eight is several times faster)."""
    spend: dict[str, SeriesMatrix] = {}
    tokens: dict[str, dict[str, SeriesMatrix]] = {}
    metrics = ("spend",) if spend_only else METRIC_FIELDS
    for kind, grain in ENTITY_GRAINS.items():
        frame = load_daily(db, grain, start, end, source, metrics)
        spend[kind] = to_matrix(frame, "spend", start, end)
        if not spend_only:
            tokens[kind] = {t: to_matrix(frame, t, start, end) for t in TOKEN_TYPES}
    total = to_matrix(load_daily(db, Grain.TOTAL, start, end, source, ("spend",)), "spend", start, end)
    model_key = _model_key_matrix(db, start, end, source)
    key_owner: dict[str, str] = {}
    key_team: dict[str, str] = {}
    for token, user_id, team_id in db.conn.execute("SELECT token, user_id, team_id FROM keys"):
        if user_id:
            key_owner[token] = user_id
        if team_id:
            key_team[token] = team_id
    user_teams: dict[str, tuple[str, ...]] = {}
    for user_id, teams in db.conn.execute("SELECT user_id, teams FROM users"):
        user_teams[user_id] = tuple(json.loads(teams or "[]"))
    # A user's cohort is their team (first one, else the team of their keys): its members lend a prior.
    team_ids = sorted({t for ts in user_teams.values() for t in ts} | set(key_team.values()))
    team_index = {t: i for i, t in enumerate(team_ids)}
    user_team = {u: ts[0] for u, ts in user_teams.items() if ts}
    for k, u in key_owner.items():
        if u not in user_team and k in key_team:
            user_team[u] = key_team[k]
    cohorts = {
        "user": np.array([team_index.get(user_team.get(u, ""), -1) for u in spend["user"].entities], dtype=np.int64),
        "key": np.array([team_index.get(key_team.get(k, ""), -1) for k in spend["key"].entities], dtype=np.int64),
    }
    ctx = ExplainContext(spend, model_key, tokens, key_owner, key_team, user_teams)
    return DetectionData(start, end, spend, total, cohorts, ctx)


def _model_key_matrix(db: sqlite_utils.Database, start: date, end: date, source: str | None) -> SeriesMatrix:
    """Spend per model x key ("model\x1fkey" rows): the join that gives users and teams their models."""
    where = "grain = 'model_key' AND date BETWEEN ? AND ?" + (" AND source = ?" if source else "")
    params = [start.isoformat(), end.isoformat(), *([source] if source else [])]
    rows = db.conn.execute(
        f"SELECT date, entity_id || char(31) || detail_id, SUM(spend) FROM daily_facts WHERE {where} GROUP BY 1, 2",
        params,
    ).fetchall()
    frame = pl.DataFrame(rows, schema={"date": pl.Utf8, "entity_id": pl.Utf8, "spend": pl.Float64}, orient="row")
    return to_matrix(frame.with_columns(pl.col("date").str.to_date()), "spend", start, end)


def detect_day(
    data: DetectionData,
    day: date,
    *,
    share: float = 1.0,
    thresholds: dict[str, Thresholds] | None = None,
    fitted: dict[str, Baselines] | None = None,
) -> list[Finding]:
    """Every anomaly on ``day`` across entity kinds (``share`` < 1 when the day is still running)."""
    limits = thresholds or DEFAULT_THRESHOLDS
    ratio = org_ratio(data.total, day) if share >= 1.0 else None
    out: list[Finding] = []
    scheduled: dict[str, float] = {}  # users whose peak is a monthly schedule -> dollars it adds
    for kind, matrix in data.spend.items():
        found = find(
            kind,
            matrix,
            day,
            thresholds=limits[kind],
            cohort=data.cohorts.get(kind),
            share=share,
            org_ratio=ratio,
            fitted=(fitted or {}).get(kind),
            excused=scheduled if kind == "user" else None,
            cache=data.fit_cache(kind),
        )
        out.extend(found)
        if kind in UNIT_COST_KINDS and share >= 1.0:
            # Spend per token per model and per user; only where the spend test did not already fire.
            flagged = {f.entity_id for f in found}
            tokens = data.total_tokens(kind)
            out.extend(
                f
                for f in find_unit_cost(kind, matrix, tokens, day, thresholds=limits[kind])
                if f.entity_id not in flagged
            )
    if scheduled:
        out = [f for f in out if not _lifted_by_schedule(f, scheduled, data.explain, limits[f.entity_type])]
    return consolidate(out, data.explain)


def _lifted_by_schedule(f: Finding, scheduled: dict[str, float], ctx: ExplainContext, limits: Thresholds) -> bool:
    """A team, provider or model whose excess is mostly a user's monthly scheduled peak."""
    if f.entity_type not in ("team", "provider", "model") or f.direction != "up":
        return False
    movers = contributors(ctx, f.entity_type, f.entity_id, f.date, "up", top=10)
    lifted = sum(scheduled.get(str(c["id"]), 0.0) for c in movers if c["type"] == "user")
    return f.impact_usd - lifted < max(limits.min_usd, limits.min_pct * max(f.expected, 0.0))


UNIT_COST_KINDS = ("user", "model")
EXPLAINED = 0.8  # a finding whose impact is mostly one child's is reported once, on the child or parent


def consolidate(findings: list[Finding], ctx: ExplainContext) -> list[Finding]:
    """One incident, one finding: a key that is its owner's whole anomaly, a model that is its
    provider's, and a team that one member explains are folded into the finding that names them."""
    index = {(f.entity_type, f.entity_id, f.direction): f for f in findings}
    folded: dict[tuple[str, str, str], list[str]] = {}
    drop: set[tuple[str, str, str]] = set()

    def fold(child: Finding, parent_key: tuple[str, str, str], keep_parent: bool) -> None:
        parent = index.get(parent_key)
        if parent is None or abs(child.impact_usd) < EXPLAINED * abs(parent.impact_usd):
            return
        kept, gone = (parent, child) if keep_parent else (child, parent)
        drop.add((gone.entity_type, gone.entity_id, gone.direction))
        folded.setdefault((kept.entity_type, kept.entity_id, kept.direction), []).append(
            f"also the {gone.entity_type} {gone.entity_id}'s anomaly"
        )

    for f in findings:
        if f.entity_type == "key" and f.entity_id in ctx.key_owner:
            fold(f, ("user", ctx.key_owner[f.entity_id], f.direction), keep_parent=True)
        elif f.entity_type == "model" and provider_of(f.entity_id):
            fold(f, ("provider", provider_of(f.entity_id), f.direction), keep_parent=True)
        elif f.entity_type == "user":
            for team in ctx.user_teams.get(f.entity_id, ()):
                fold(f, ("team", team, f.direction), keep_parent=False)
    # A model or provider moved by one user's (or key's) anomaly is that anomaly, seen from above.
    for f in findings:
        if f.entity_type not in ("model", "provider") or (f.entity_type, f.entity_id, f.direction) in drop:
            continue
        for c in contributors(ctx, f.entity_type, f.entity_id, f.date, f.direction, top=3):
            owner = str(c["id"]) if c["type"] == "user" else ctx.key_owner.get(str(c["id"]), "")
            user_key = ("user", owner, f.direction)
            explains = abs(float(c["delta_usd"])) >= EXPLAINED * abs(f.impact_usd)  # type: ignore[arg-type]
            if c["type"] in ("user", "key") and user_key in index and explains and user_key not in drop:
                drop.add((f.entity_type, f.entity_id, f.direction))
                folded.setdefault(user_key, []).append(f"also the {f.entity_type} {f.entity_id}'s anomaly")
                break
    out = []
    for f in findings:
        key = (f.entity_type, f.entity_id, f.direction)
        if key in drop:
            continue
        extra = folded.get(key)
        out.append(replace(f, notes=(*f.notes, *extra)) if extra else f)
    return out


def to_record(data: DetectionData, f: Finding, detected_at: datetime) -> dict[str, object]:
    """The documented JSON shape of an anomaly (see README, "Anomaly records")."""
    return {
        "kind": "anomaly",
        "entity_type": f.entity_type,
        "entity_id": f.entity_id,
        "date": f.date.isoformat(),
        "detected_at": detected_at.isoformat(),
        "observed": round(f.observed, 6),
        "expected": round(f.expected, 6),
        "lower": round(f.lower, 6),
        "upper": round(f.upper, 6),
        "impact_usd": round(f.impact_usd, 6),
        "pct_change": None if f.pct_change is None else round(f.pct_change, 4),
        "direction": f.direction,
        "z": round(f.z, 3),
        "p_value": float(f"{f.p_value:.3g}"),
        "method": f.method,
        "history_days": f.history_days,
        "partial_day": f.partial,
        "notes": list(f.notes),
        "contributors": contributors(data.explain, f.entity_type, f.entity_id, f.date, f.direction),
        "price_volume": price_volume(data.explain, f.entity_type, f.entity_id, f.date),
    }


@dataclass
class _Episode:
    first: Finding
    last: Finding
    days: int
    impact: float


def backtest(
    data: DetectionData, since: date, until: date, *, thresholds: dict[str, Thresholds] | None = None
) -> list[dict[str, object]]:
    """Replay detection day by day, each day seeing only data up to itself; one record per episode.

    A run of flagged days for the same entity and direction (gaps of one day allowed) is one
    episode, reported at its onset with ``episode`` saying how long it lasted and what it cost.
    """
    open_eps: dict[tuple[str, str, str], _Episode] = {}
    closed: list[_Episode] = []
    day = since
    while day <= until:
        seen: set[tuple[str, str, str]] = set()
        for f in detect_day(data, day, thresholds=thresholds):
            key = (f.entity_type, f.entity_id, f.direction)
            seen.add(key)
            ep = open_eps.get(key)
            if ep is None:
                open_eps[key] = _Episode(f, f, 1, f.impact_usd)
            else:
                ep.last, ep.days, ep.impact = f, ep.days + 1, ep.impact + f.impact_usd
        for key, ep in list(open_eps.items()):
            if key not in seen and (day - ep.last.date).days > EPISODE_GAP_DAYS:
                closed.append(open_eps.pop(key))
        day += timedelta(days=1)
    records = []
    for ep, state in [(e, "ended") for e in closed] + [(e, "ongoing") for e in open_eps.values()]:
        onset = ep.first.date
        rec = to_record(data, ep.first, datetime(onset.year, onset.month, onset.day, tzinfo=UTC) + timedelta(days=1))
        rec["episode"] = {
            "onset": onset.isoformat(),
            "last_seen": ep.last.date.isoformat(),
            "days": ep.days,
            "state": state,
            "total_impact_usd": round(ep.impact, 6),
            "last_observed": round(ep.last.observed, 6),
            "last_expected": round(ep.last.expected, 6),
        }
        records.append(rec)
    records.sort(key=lambda r: (str(r["date"]), str(r["entity_type"]), str(r["entity_id"])))
    return records


MIN_SHARE = 0.1  # before a tenth of a normal day has happened, a partial day says too little


def today_fits(
    db: sqlite_utils.Database, data: DetectionData, today: date, now: datetime, source_label: str
) -> dict[str, Baselines]:
    """Baselines for today, fitted once a day and reused by every tick (stored as JSON)."""
    from sentinel.store import baselines as baseline_store
    from sentinel.store import transaction

    fits: dict[str, Baselines] = {}
    for kind, matrix in data.spend.items():
        stored = baseline_store.load(db, source_label, kind, today)
        if stored is not None and stored[0] == matrix.entities:
            fits[kind] = stored[1]
            continue
        fitted = fit_for(matrix, today, data.cohorts.get(kind))
        with transaction(db):
            baseline_store.save(db, source_label, kind, matrix.entities, fitted, now)
        fits[kind] = fitted
    return fits


def detect_now(
    db: sqlite_utils.Database,
    now: datetime,
    *,
    source: str | None = None,
    history_days: int = HISTORY_DAYS,
    lookback_days: int = 7,
    thresholds: dict[str, Thresholds] | None = None,
    data: DetectionData | None = None,
) -> list[dict[str, object]]:
    """Anomalies as of ``now``: episodes of the last complete days, and today's run rate so far.

    ``data``: series already loaded for ``source`` from ``history_days`` before today (several
    rules' thresholds scored on one load share its fits).

    Today's partial spend is compared with the share of a normal day that should have been spent
    by now (the intraday profile learnt from stored polls), so a job that starts burning at 14:00
    is flagged by the next poll, not tomorrow.
    """
    from sentinel.detect.intraday import learn_profile, share_at
    from sentinel.store.facts import intraday_snapshots

    today = now.astimezone(UTC).date()
    start = today - timedelta(days=history_days)
    data = data or load(db, start, today, source)
    records = backtest(data, today - timedelta(days=lookback_days), today - timedelta(days=1), thresholds=thresholds)
    snaps, finals = intraday_snapshots(db, today - timedelta(days=28), today - timedelta(days=1), source)
    share = share_at(learn_profile(snaps, finals), now)
    if share >= MIN_SHARE:
        fits = today_fits(db, data, today, now, source or "*")
        for f in detect_day(data, today, share=share, thresholds=thresholds, fitted=fits):
            rec = to_record(data, f, now)
            rec["share_of_day"] = round(share, 3)
            rec["episode"] = {
                "onset": today.isoformat(),
                "last_seen": today.isoformat(),
                "days": 1,
                "state": "ongoing",
                "total_impact_usd": round(f.impact_usd, 6),
                "last_observed": round(f.observed, 6),
                "last_expected": round(f.expected, 6),
            }
            records.append(rec)
    return records
