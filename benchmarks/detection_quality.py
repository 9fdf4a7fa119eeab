"""Detection quality: Sentinel's anomaly detector against labelled simulator traffic and two naive rules.

Per seed: simulate an 80-user, 8-team proxy over 150 days (``now`` fixed at 2026-11-26 12:00 UTC),
sync it over HTTP into a fresh SQLite store once, load every series from the start of the history,
and replay the last 90 complete days. Three detectors see the same matrices and days:

- sentinel: ``sentinel.detect.engine.backtest`` with DEFAULT_THRESHOLDS; one alert per episode, at onset.
- litellm-3x7d: LiteLLM's own user-spend rule (API.md §8): today > 3 x (sum of the previous 7 days / 7)
  and today >= a minimum spend. LiteLLM's minimum is $10; simulator spend is small, so the minimum is
  Sentinel's per-kind ``min_usd`` instead, for a fair fight. Up only, applied to every kind, once per
  entity per day (consecutive alert days are separate alerts).
- zscore-28d: z = (x - mean of the prior 28 days) / their sample std; alert at z >= 3 (and z <= -3 for
  kinds Sentinel watches downwards: provider and model), when |x - mean| >= the kind's ``min_usd``.
  A flat prior (std 0) makes any material change an alert. One alert per entity per day.

Scoring (the matching rule is in ``_labels.py``, in full): an alert matches an injected anomaly when it
falls in [start, end + 2 days] on the event's entity or a directly related one (key <-> owner, team;
user <-> keys, teams; team <-> members, keys; provider <-> its models, and during an outage an "up" on
any other provider or model, because traffic fails over). Precision = matched alerts / alerts;
recall = anomalies with a matched alert / anomalies, also shown per kind with how many were caught on
the event's own entity (the team for a level shift, the key for a runaway); false alerts = unmatched
alerts, also per entity-month (every series the detector watches across kinds x 90/30 months), broken
down by the hard negative they fall on, or as a spill-over (a model/provider echo of an injected
key/user/team anomaly), or other. Delay = first matched alert's date - event start, in days. Totals
pool all seeds (micro-averages).

Two yardsticks besides the asked-for metrics: rec(mat) is recall over the *material* anomalies only,
those whose own entity moved on some day by at least its kind's ``min_usd`` (against the same weekday
in the four weeks before), since the simulator may hand a spike to a user spending cents; incid counts
false alerts as incidents, a user and its key (or a model and its provider) on the same day being one.

    .venv/bin/python benchmarks/detection_quality.py [--seeds 5] [--quick] [--verbose] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from _labels import HARD_NEGATIVE_ORDER, Alert, KeyModelSpend, Labeller, Org, incident_root, peak_excess
from _simsync import sync_simulator

from sentinel.detect import engine
from sentinel.detect.anomaly import DEFAULT_THRESHOLDS
from sentinel.detect.engine import DetectionData
from sentinel.simulator import TrafficConfig, TrafficModel

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
USERS, TEAMS, HISTORY_DAYS, BACKTEST_DAYS = 80, 8, 150, 90
KEY_ENV, KEY = "SENTINEL_BENCH_KEY", "sk-bench-detection-quality"
ANOMALY_KINDS = ("spike", "runaway", "model_switch", "provider_outage", "level_shift")
FALSE_KINDS = (*HARD_NEGATIVE_ORDER, "spill_over", "other")
LITELLM_MULTIPLIER, LITELLM_DAYS = 3.0, 7
Z_LIMIT, Z_DAYS = 3.0, 28


# ----------------------------------------------------------------------------- detectors
def sentinel_alerts(data: DetectionData, since: date, until: date) -> list[Alert]:
    return [
        Alert(
            str(r["entity_type"]),
            str(r["entity_id"]),
            date.fromisoformat(str(r["date"])),
            str(r["direction"]),
            float(r["impact_usd"]),  # type: ignore[arg-type]
        )
        for r in engine.backtest(data, since, until)
    ]


def litellm_alerts(data: DetectionData, since: date, until: date) -> list[Alert]:
    out: list[Alert] = []
    for kind, m in data.spend.items():
        floor = DEFAULT_THRESHOLDS[kind].min_usd
        for idx in range(m.index_of(since), m.index_of(until) + 1):
            x = m.values[:, idx]
            # Always divided by the full 7 days, as LiteLLM does (a new series looks anomalous).
            mean = m.values[:, max(0, idx - LITELLM_DAYS) : idx].sum(axis=1) / LITELLM_DAYS
            for i in np.flatnonzero((x > LITELLM_MULTIPLIER * mean) & (x >= floor)):
                out.append(Alert(kind, m.entities[i], m.day(idx), "up", float(x[i] - mean[i])))
    return out


def zscore_alerts(data: DetectionData, since: date, until: date) -> list[Alert]:
    out: list[Alert] = []
    for kind, m in data.spend.items():
        limits = DEFAULT_THRESHOLDS[kind]
        for idx in range(m.index_of(since), m.index_of(until) + 1):
            prior = m.values[:, max(0, idx - Z_DAYS) : idx]
            mean, std = prior.mean(axis=1), prior.std(axis=1, ddof=1)
            diff = m.values[:, idx] - mean
            with np.errstate(all="ignore"):
                z = np.where(std > 0, diff / std, np.sign(diff) * np.inf)
            material = np.abs(diff) >= limits.min_usd
            up = material & (z >= Z_LIMIT) & ("up" in limits.directions)
            down = material & (z <= -Z_LIMIT) & ("down" in limits.directions)
            for i in np.flatnonzero(up | down):
                out.append(Alert(kind, m.entities[i], m.day(idx), "up" if diff[i] > 0 else "down", float(diff[i])))
    return out


DETECTORS: dict[str, Callable[[DetectionData, date, date], list[Alert]]] = {
    "sentinel": sentinel_alerts,
    "litellm-3x7d": litellm_alerts,
    "zscore-28d": zscore_alerts,
}


# ----------------------------------------------------------------------------- scoring
Namer = Callable[[str], str]


@dataclass
class Score:
    alerts: int = 0
    matched: int = 0
    false_incidents: int = 0  # false alerts with a user and its key, or a model and its provider, merged per day
    material: int = 0  # anomalies whose own entity moved by at least its kind's min_usd on some day
    material_detected: int = 0
    entity_months: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    detected: dict[str, int] = field(default_factory=dict)
    own: dict[str, int] = field(default_factory=dict)  # detected by an alert on the event's own entity
    delays: dict[str, list[int]] = field(default_factory=dict)
    false: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # every alert and missed event, for --verbose

    def add(self, other: Score) -> None:
        self.alerts += other.alerts
        self.matched += other.matched
        self.false_incidents += other.false_incidents
        self.material += other.material
        self.material_detected += other.material_detected
        self.entity_months += other.entity_months
        for mine, theirs in (
            (self.events, other.events),
            (self.detected, other.detected),
            (self.own, other.own),
            (self.false, other.false),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for k, ds in other.delays.items():
            self.delays.setdefault(k, []).extend(ds)
        self.lines.extend(other.lines)

    @property
    def precision(self) -> float:
        return self.matched / self.alerts if self.alerts else float("nan")

    @property
    def recall(self) -> float:
        n = sum(self.events.values())
        return sum(self.detected.values()) / n if n else float("nan")

    @property
    def material_recall(self) -> float:
        return self.material_detected / self.material if self.material else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score(
    alerts: list[Alert], labels: Labeller, excess: list[float | None], entity_months: float, name: Namer
) -> Score:
    """``excess``: per anomaly (as in ``labels.anomalies``), its entity's peak daily move in dollars."""
    s = Score(alerts=len(alerts), entity_months=entity_months)
    first_hit: dict[int, date] = {}
    own_hit: set[int] = set()
    incidents: set[tuple[date, str, str]] = set()
    for a in sorted(alerts, key=lambda a: (a.day, a.entity_type, a.entity_id, a.direction)):
        hits = labels.matches(a)
        for i in hits:
            first_hit.setdefault(i, a.day)
            e = labels.anomalies[i]
            if (a.entity_type, a.entity_id) == (e.entity_type, e.entity_id):
                own_hit.add(i)
        if hits:
            s.matched += 1
            kinds = ", ".join(sorted({labels.anomalies[i].kind for i in hits}))
            s.lines.append(
                f"  match   {a.day} {a.entity_type:<8} {name(a.entity_id):<36} {a.direction:<4} "
                f"{a.impact_usd:+8.2f}  [{kinds}]"
            )
            continue
        cause = labels.cause(a)
        s.false[cause] = s.false.get(cause, 0) + 1
        incidents.add(incident_root(labels.org, a))
        s.lines.append(
            f"  false   {a.day} {a.entity_type:<8} {name(a.entity_id):<36} {a.direction:<4} "
            f"{a.impact_usd:+8.2f}  [{cause}]"
        )
    s.false_incidents = len(incidents)
    for i, e in enumerate(labels.anomalies):
        s.events[e.kind] = s.events.get(e.kind, 0) + 1
        peak = excess[i]
        material = peak is not None and abs(peak) >= DEFAULT_THRESHOLDS[e.entity_type].min_usd
        s.material += material
        if i in first_hit:
            s.detected[e.kind] = s.detected.get(e.kind, 0) + 1
            s.own[e.kind] = s.own.get(e.kind, 0) + (i in own_hit)
            s.material_detected += material
            s.delays.setdefault(e.kind, []).append((first_hit[i] - e.start).days)
        else:
            moved = "no series" if peak is None else f"peak daily move {peak:+.2f} USD"
            s.lines.append(f"  missed  {e.start}..{e.end} {e.kind} on {name(e.entity_id)} ({moved})")
    return s


# ----------------------------------------------------------------------------- one seed
@dataclass
class SeedResult:
    seed: int
    series: int
    scores: dict[str, Score]


def sync_store(model: TrafficModel, path: Path) -> DetectionData:
    """Sync the simulated proxy over HTTP once and load every series from the start of the history."""
    today = NOW.date()
    first = today - timedelta(days=HISTORY_DAYS - 1)
    db = sync_simulator(model, path, first, NOW)
    # Up to yesterday: today is partial and no replayed day may see it anyway.
    return engine.load(db, first, today - timedelta(days=1))


def run_seed(seed: int) -> SeedResult:
    model = TrafficModel(TrafficConfig(seed=seed, users=USERS, teams=TEAMS, days=HISTORY_DAYS, now=NOW))
    with tempfile.TemporaryDirectory(prefix="sentinel-dq-") as tmp:
        data = sync_store(model, Path(tmp) / "sentinel.db")
    today = NOW.date()
    since, until = today - timedelta(days=BACKTEST_DAYS), today - timedelta(days=1)
    # Only events the replayed days can see; new users from before the window cannot be alerted on.
    events = [e for e in model.events if e.start <= until and e.end >= since]
    labels = Labeller(Org.of(model), events, KeyModelSpend(data.explain.model_key))
    excess = [peak_excess(data.spend[e.entity_type], e, until) for e in labels.anomalies]
    series = sum(len(m.entities) for m in data.spend.values())
    entity_months = series * BACKTEST_DAYS / 30
    aliases = {k.token: k.key_alias for k in model.keys} | {t.team_id: t.team_alias for t in model.teams}

    def name(entity_id: str) -> str:
        return aliases.get(entity_id, entity_id) or "(unassigned)"

    scores = {det: score(fn(data, since, until), labels, excess, entity_months, name) for det, fn in DETECTORS.items()}
    return SeedResult(seed, series, scores)


# ----------------------------------------------------------------------------- report
def _pct(x: float) -> str:
    return "  -  " if x != x else f"{x:5.1%}"


def _median(xs: list[int]) -> str:
    return "-" if not xs else f"{statistics.median(xs):g}d"


def print_table(title: str, scores: dict[str, Score]) -> None:
    print(f"\n{title}")
    print(
        f"  {'detector':<13} {'alerts':>6} {'match':>5} {'prec':>6} {'recall':>6} {'F1':>6} {'rec(mat)':>8} "
        f"{'false':>5} {'incid':>5} {'false/ent-mo':>12} {'delay':>5}"
    )
    for det, s in scores.items():
        fa = s.alerts - s.matched
        per = fa / s.entity_months if s.entity_months else float("nan")
        delay = _median([d for ds in s.delays.values() for d in ds])
        print(
            f"  {det:<13} {s.alerts:>6} {s.matched:>5} {_pct(s.precision):>6} {_pct(s.recall):>6} {s.f1:6.3f} "
            f"{_pct(s.material_recall):>8} {fa:>5} {s.false_incidents:>5} {per:12.4f} {delay:>5}"
        )
    print(
        "  (rec(mat): recall on anomalies that moved their entity by >= min_usd; incid: false alerts merged "
        "per day by user/key and provider/model)"
    )
    print("  recall by event kind: detected/injected (of which on the event's own entity) median delay:")
    print("  " + " " * 13 + "".join(f" {k:>17}" for k in ANOMALY_KINDS))
    for det, s in scores.items():
        cells = []
        for k in ANOMALY_KINDS:
            n = s.events.get(k, 0)
            delay = _median(s.delays.get(k, []))
            cells.append(f"{s.detected.get(k, 0)}/{n} ({s.own.get(k, 0)}) {delay:>4}" if n else "-")
        print(f"  {det:<13}" + "".join(f" {c:>17}" for c in cells))
    print("  false alerts by what they fall on:")
    print("  " + " " * 13 + "".join(f" {k:>14}" for k in FALSE_KINDS))
    for det, s in scores.items():
        print(f"  {det:<13}" + "".join(f" {s.false.get(k, 0):>14}" for k in FALSE_KINDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="two seeds, for a ~1 minute check")
    parser.add_argument("--verbose", action="store_true", help="per-seed tables, Sentinel's alerts and misses")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="seeds run in parallel")
    args = parser.parse_args()
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    seeds = list(range(1, n_seeds + 1))

    began = time.monotonic()
    if args.jobs > 1 and len(seeds) > 1:
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(seeds))) as pool:
            results = list(pool.map(run_seed, seeds))  # map keeps seed order: the output stays deterministic
    else:
        results = [run_seed(s) for s in seeds]

    today = NOW.date()
    print(
        f"Detection quality: seeds {seeds[0]}..{seeds[-1]}, {USERS} users, {TEAMS} teams, {HISTORY_DAYS} days "
        f"to {today}; replayed {today - timedelta(days=BACKTEST_DAYS)}..{today - timedelta(days=1)}."
    )
    print(
        "Matching: alert date in [event start, end + 2d], on the event's entity or a directly related one; "
        "during a provider outage an 'up' on another provider/model counts (traffic fails over)."
    )
    print(
        "Baselines use Sentinel's per-kind min_usd ("
        + ", ".join(f"{k} ${t.min_usd:g}" for k, t in DEFAULT_THRESHOLDS.items())
        + ") instead of LiteLLM's $10: simulator spend is small."
    )
    total = {det: Score() for det in DETECTORS}
    for r in results:
        for det, s in r.scores.items():
            total[det].add(s)
        if args.verbose:
            print_table(f"seed {r.seed} ({r.series} series watched)", r.scores)
            print("  sentinel, every alert and missed event:")
            print("\n".join(r.scores["sentinel"].lines) or "  (none)")
    series = sum(r.series for r in results)
    print_table(f"All {len(seeds)} seeds ({series} series watched, {BACKTEST_DAYS} days each)", total)
    print(f"\nRun time: {time.monotonic() - began:.1f}s")


if __name__ == "__main__":
    main()
