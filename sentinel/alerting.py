"""One alerting cycle, end to end: evaluate every rule, advance the alerts' lifecycle, route, and
write alert state, budget signals and outbox rows in ONE transaction; then deliver.

This is the I/O edge: it reads the store, calls the pure pieces (``rules.evaluate``,
``notify.lifecycle``, ``notify.plan``, ``route``) and writes the results. The daemon's tick and
`sentinel evaluate` call :func:`run_cycle`; tests call it with an injected ``now``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlite_utils

from sentinel import privacy, quality
from sentinel.budget import engine as budget_engine
from sentinel.budget import snapshot as budget_snapshot
from sentinel.budget.model import BudgetStatus
from sentinel.budget.specs import Catalog, catalog, policy_from
from sentinel.config import Settings
from sentinel.detect.engine import DetectionData, backtest, detect_now, load
from sentinel.notify import lifecycle
from sentinel.notify.model import Alert, Receiver
from sentinel.notify.pipeline import DeliveryReport, deliver
from sentinel.notify.plan import plan
from sentinel.route.inhibit import InhibitRule, build_rules, inhibited_by
from sentinel.route.silences import silenced_by
from sentinel.route.tree import Route, build
from sentinel.rules import evaluate as ev
from sentinel.rules.loader import RuleSet
from sentinel.rules.schema import AbsenceRule, AnomalyRule, ThresholdRule
from sentinel.store import alerts as alert_store
from sentinel.store import outbox, transaction
from sentinel.store import silences as silence_store
from sentinel.store import state as state_store

log = logging.getLogger("sentinel.alerting")


@dataclass
class Evaluation:
    found: list[Alert] = field(default_factory=list)
    budget_due: list[budget_engine.Due] = field(default_factory=list)
    failed_rules: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    quality: quality.Assessment | None = None  # data outages to record, with the cycle
    # Every budget's status, when all sources were evaluated (kept for the web view, budget.snapshot).
    budgets: list[BudgetStatus] | None = None


@dataclass
class CycleReport:
    evaluation: Evaluation
    firing: int = 0
    new: int = 0
    resolved: int = 0
    queued: int = 0
    delivery: DeliveryReport | None = None


@dataclass(frozen=True)
class Routing:
    """Routing, inhibition and the receivers' resolved-notice switches, built once from config."""

    route: Route
    inhibit: tuple[InhibitRule, ...]
    send_resolved: Mapping[str, bool]

    @staticmethod
    def from_settings(settings: Settings) -> Routing:
        return Routing(
            build(settings.route),
            build_rules(settings.inhibit),
            {r.name: r.send_resolved for r in settings.receivers},
        )


def evaluate(
    db: sqlite_utils.Database,
    settings: Settings,
    rules: RuleSet,
    now: datetime,
    *,
    source: str | None = None,
    memo: dict[tuple[object, ...], list[dict[str, object]]] | None = None,
    environ: dict[str, str] | None = None,
) -> Evaluation:
    """Every rule's alerts as of ``now``. A rule that fails is named in ``failed_rules`` (its alerts
    are left as they were) and never stops the others.

    ``memo`` (kept by a long-running caller across ticks): the anomaly episodes of the complete days
    before today, per source and thresholds, reused while those days' stored totals are unchanged;
    only today's run rate is scored again."""
    out = Evaluation()
    rules = privacy.rules_for(rules, privacy.from_settings(settings.privacy, environ))
    ctx = budget_engine.context(db, now)
    catalogs: dict[str | None, Catalog] = {}

    def cat_for(src: str | None) -> Catalog:
        if src not in catalogs:
            catalogs[src] = catalog(db, ctx.data(src).spend, src)
        return catalogs[src]

    def guarded(name: str, work: Callable[[], list[Alert]]) -> None:
        try:
            out.found.extend(work())
        except Exception as exc:  # one broken rule must not silence the rest
            out.failed_rules.add(name)
            out.errors.append(f"rule {name!r}: {type(exc).__name__}: {exc}")
            log.exception("rule %s failed to evaluate", name)

    detections: dict[tuple[str | None, str], list[dict[str, object]]] = {}
    today = now.astimezone(UTC).date()

    def series(src: str | None) -> DetectionData:
        """Every series of a source, loaded once: anomaly rules share its fits, and budgets,
        thresholds and absences read its spend (the context would otherwise load spend again)."""
        key = src or ctx.only_source
        loaded = ctx.loaded.get(key)
        if loaded is None or not loaded.explain.tokens:
            loaded = ctx.loaded[key] = load(db, ctx.start, ctx.end, key)
        return loaded

    for a_rule in rules.anomalies:
        if source and a_rule.source not in (None, source):
            continue

        def anomalies(rule: AnomalyRule = a_rule) -> list[Alert]:
            src = rule.source or source
            thresholds = ev.anomaly_thresholds(rule)
            key = (src, repr(sorted(thresholds.items())))
            if key not in detections:
                data = series(src)
                if memo is None:
                    detections[key] = detect_now(db, now, source=src, thresholds=thresholds, data=data)
                else:
                    past_key = (*key, today, _days_signature(db, src, today - timedelta(days=LOOKBACK_DAYS + 1), today))
                    if past_key not in memo:
                        for stale in [k for k in memo if k[:2] == key]:
                            del memo[stale]
                        since, until = today - timedelta(days=LOOKBACK_DAYS), today - timedelta(days=1)
                        memo[past_key] = backtest(data, since, until, thresholds=thresholds)
                    current = detect_now(db, now, source=src, thresholds=thresholds, data=data, lookback_days=0)
                    detections[key] = [*memo[past_key], *current]
            return ev.anomaly_alerts(rule, detections[key], cat_for(src), now)

        guarded(a_rule.name, anomalies)

    for t_rule in rules.thresholds:
        if source and t_rule.source not in (None, source):
            continue

        def thresholds(rule: ThresholdRule = t_rule) -> list[Alert]:
            data = ctx.data(rule.source or source)
            matrix = data.total if rule.entity == "total" else data.spend[rule.entity]
            return ev.threshold_alerts(rule, matrix, cat_for(rule.source or source), now)

        guarded(t_rule.name, thresholds)

    health = source_health(db)
    for b_rule in rules.absences:
        if source and b_rule.source not in (None, source):
            continue

        def absences(rule: AbsenceRule = b_rule) -> list[Alert]:
            if rule.entity == "source":
                return ev.source_absence_alerts(rule, health, now)
            matrix = ctx.data(rule.source or source).spend[rule.entity]
            return ev.spend_absence_alerts(rule, matrix, cat_for(rule.source or source), now)

        guarded(b_rule.name, absences)

    _check_data(db, settings, now, out)

    try:
        statuses = budget_engine.statuses(db, now, policy_from(settings), rules, source=source, ctx=ctx)
        out.budget_due = budget_engine.due(db, statuses, now, ctx)
        if source is None:
            out.budgets = statuses
        for _status, _signal, record in out.budget_due:
            out.found.append(ev.budget_alert(record, cat_for(_str(record.get("source")))))
    except Exception as exc:
        out.failed_rules.update({r.name for r in rules.budgets} | {ev.PROXY_BUDGET_RULE})
        out.errors.append(f"budgets: {type(exc).__name__}: {exc}")
        log.exception("budget evaluation failed")
    return out


def _check_data(db: sqlite_utils.Database, settings: Settings, now: datetime, out: Evaluation) -> None:
    """Data-quality checks: their operator alerts join the cycle, and the drops a logging outage
    would cause (per-entity anomalies and spend absences) leave it."""
    try:
        found = quality.assess(db, settings.quality, now)
    except Exception as exc:
        out.failed_rules.add(quality.QUALITY_RULE)
        out.errors.append(f"data checks: {type(exc).__name__}: {exc}")
        log.exception("data-quality checks failed")
        return
    today = now.astimezone(UTC).date()
    if found.outages:
        held = [a for a in out.found if quality.suppressed(a, found.outages, today)]
        if held:
            log.info("%d drop alert(s) held back: the source recorded nothing (data outage)", len(held))
        out.found = [a for a in out.found if not quality.suppressed(a, found.outages, today)]
    out.found.extend(found.alerts)
    out.quality = found


LOOKBACK_DAYS = 7  # complete days whose anomaly episodes are reported (as `sentinel detect` does)


def _days_signature(db: sqlite_utils.Database, source: str | None, first: date, end: date) -> tuple[object, ...]:
    """What the stored days before ``end`` say about themselves: a re-read that changed a day changes
    its total (or its final flag), which invalidates the episodes computed from it."""
    where, params = ("AND source = ?", [source]) if source else ("", [])
    rows = db.conn.execute(
        f"SELECT source, date, final, ROUND(spend, 6) FROM days WHERE route = 'user' AND date >= ? AND date < ? "
        f"{where} ORDER BY 1, 2",
        [first.isoformat(), end.isoformat(), *params],
    ).fetchall()
    return tuple(rows)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def source_health(db: sqlite_utils.Database) -> list[ev.SourceHealth]:
    """Each known source's last successful poll, and its error if the last poll failed."""
    out = []
    for name in state_store.known_sources(db):
        st = state_store.get_state(db, name)
        last = datetime.fromisoformat(st.last_success_at) if st.last_success_at else None
        out.append(ev.SourceHealth(name, last, st.last_error if state_store.failing(st) else None))
    return out


def commit(
    db: sqlite_utils.Database,
    evaluation: Evaluation,
    routing: Routing,
    now: datetime,
    *,
    extra: Sequence[Alert] = (),
) -> CycleReport:
    """Advance the lifecycle and queue notices; alert state, budget signals and outbox rows land in
    one transaction, so a crash leaves either all of a cycle or none of it."""
    report = CycleReport(evaluation)
    found = [*evaluation.found, *extra]
    with transaction(db):
        known = alert_store.load(db)
        step = lifecycle.advance(found, known, now, evaluation.failed_rules)
        # Inhibition sources: every alert firing after this cycle (saved now, or known and untouched).
        current = {**known, **{a.fingerprint: a for a in step.save}}
        firing_labels = [dict(a.labels) for a in current.values() if a.status == "firing"]
        silences = silence_store.active(db, now)

        def muted(alert: Alert) -> str | None:
            if silenced_by(alert.labels, silences, now) is not None:
                return "silenced"
            if alert.status == "firing" and inhibited_by(alert.labels, firing_labels, routing.inhibit) is not None:
                return "inhibited"
            return None

        entries = plan(
            step.notify,
            routing.route,
            last=outbox.last_notices(db, [a.fingerprint for a in step.notify]),
            group_sent=outbox.group_sent(db),
            muted=muted,
            send_resolved=lambda name: routing.send_resolved.get(name, True),
            now=now,
        )
        budget_engine.record(db, evaluation.budget_due, now)
        if evaluation.budgets is not None:
            budget_snapshot.save(db, evaluation.budgets, now)
        if evaluation.quality is not None:
            quality.record_outages(db, evaluation.quality, now)
        alert_store.save(db, step.save, now)
        report.queued = outbox.enqueue(db, entries, now)
    report.firing = sum(1 for a in step.save if a.status == "firing")
    report.new = sum(1 for a in step.save if a.status == "firing" and a.fingerprint not in known)
    report.new += sum(
        1
        for a in step.save
        if a.status == "firing" and a.fingerprint in known and known[a.fingerprint].status != "firing"
    )
    report.resolved = sum(1 for a in step.notify if a.status == "resolved")
    return report


def run_cycle(
    db: sqlite_utils.Database,
    settings: Settings,
    rules: RuleSet,
    receivers: Mapping[str, Receiver],
    now: datetime,
    *,
    source: str | None = None,
    extra: Sequence[Alert] = (),
    send: bool = True,
    memo: dict[tuple[object, ...], list[dict[str, object]]] | None = None,
    environ: dict[str, str] | None = None,
) -> CycleReport:
    """Evaluate, queue, and (``send``) deliver what is due. ``environ``: where secrets named by
    the config are read (default: the process environment)."""
    routing = Routing.from_settings(settings)
    found = evaluate(db, settings, rules, now, source=source, memo=memo, environ=environ)
    report = commit(db, found, routing, now, extra=extra)
    if send:
        report.delivery = deliver(db, receivers, settings.delivery, routing.inhibit, now)
    return report
