"""Rules over what detection, budgets and the store found: the alerts that fire now. Pure.

Each function takes one kind of rule and the data it reads, and returns ``Alert`` objects whose
``fingerprint`` names the condition (rule + entity + direction or window), so the lifecycle
(``notify.lifecycle``) can tell a new alert from one still firing and from one that ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from sentinel.budget.specs import Catalog, select_ids
from sentinel.budget.windows import accounting_days, parse_period, period_window
from sentinel.config import parse_duration
from sentinel.detect.anomaly import DEFAULT_THRESHOLDS, Thresholds
from sentinel.detect.series import SeriesMatrix
from sentinel.notify.model import Alert
from sentinel.rules.schema import AbsenceRule, AnomalyRule, ThresholdRule

PROXY_BUDGET_RULE = "proxy-budget"  # the rule label of budgets the proxy holds (no rule file)
ZERO_USD = 0.005  # below half a cent a day is no spend
STEADY_DAYS = 28  # an absence is judged against this many days before it
STEADY_SHARE = 0.7  # ... on at least this share of which the entity spent


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def entity_labels(cat: Catalog, kind: str, ident: str) -> dict[str, str]:
    names = cat.aliases.get(kind, {})
    team = cat.labels(kind, ident)["team"] if kind != "total" else ""
    return {
        "entity_type": kind,
        "entity_id": ident,
        "entity_name": names.get(ident, ident) or ("whole proxy" if kind == "total" else ident),
        "team": team,
        "team_name": cat.aliases.get("team", {}).get(team, team),
    }


def _labels(
    rule: str, severity: str, kind: str, entity: Mapping[str, str], source: str | None, extra: Mapping[str, str]
) -> dict[str, str]:
    # Rule labels come first so the labels Sentinel sets cannot be overridden by a rule file.
    return {**extra, **entity, "rule": rule, "severity": severity, "kind": kind, "source": source or ""}


# ---------------------------------------------------------------------------------------------- anomalies
def ongoing_episodes(records: Sequence[Mapping[str, object]], today: date) -> list[dict[str, object]]:
    """One record per (entity, direction) still going: flagged today or yesterday. Detection reports
    complete days and today's run rate separately; an episode that reaches into today is one
    episode (its onset, its days summed), shown with today's numbers."""
    merged: dict[tuple[str, str, str], dict[str, object]] = {}
    for rec in sorted(records, key=lambda r: str(r["date"])):
        episode = rec.get("episode")
        if not isinstance(episode, Mapping) or episode.get("state") != "ongoing":
            continue
        key = (str(rec["entity_type"]), str(rec["entity_id"]), str(rec["direction"]))
        before = merged.get(key)
        if before is None:
            merged[key] = {**rec, "episode": dict(episode)}
            continue
        first = before["episode"]
        assert isinstance(first, dict)
        combined = {
            **dict(episode),
            "onset": min(str(first["onset"]), str(episode["onset"])),
            "days": int(str(first["days"])) + int(str(episode["days"])),
            "total_impact_usd": round(
                float(str(first["total_impact_usd"])) + float(str(episode["total_impact_usd"])), 6
            ),
        }
        merged[key] = {**rec, "episode": combined}
    out = []
    for rec in merged.values():
        episode = rec["episode"]
        assert isinstance(episode, dict)
        if (today - date.fromisoformat(str(episode["last_seen"]))).days <= 1:
            out.append(rec)
    return out


def anomaly_alerts(
    rule: AnomalyRule, records: Sequence[Mapping[str, object]], cat: Catalog, now: datetime
) -> list[Alert]:
    """Anomaly records (``detect.engine.detect_now``, run with this rule's sensitivity) that this
    rule selects and that are still going: flagged today or yesterday, on ``for_days`` days or more."""
    today = now.astimezone(UTC).date()
    chosen: dict[str, set[str]] = {kind: set(select_ids(kind, rule.select, cat)) for kind in rule.entities}
    out = []
    for rec in ongoing_episodes(records, today):
        kind, ident = str(rec["entity_type"]), str(rec["entity_id"])
        if ident not in chosen.get(kind, set()):
            continue
        if rule.direction != "both" and rec["direction"] != rule.direction:
            continue
        episode = rec["episode"]
        assert isinstance(episode, dict)
        if int(str(episode["days"])) < rule.for_days:
            continue
        entity = entity_labels(cat, kind, ident)
        labels = _labels(rule.name, rule.severity, "anomaly", entity, rule.source, rule.labels)
        labels["direction"] = str(rec["direction"])
        onset = date.fromisoformat(str(episode["onset"]))
        out.append(
            Alert(
                fingerprint=fingerprint("anomaly", rule.name, kind, ident, str(rec["direction"])),
                status="firing",
                rule=rule.name,
                severity=rule.severity,
                summary=anomaly_summary(rec, entity["entity_name"]),
                labels=labels,
                starts_at=datetime(onset.year, onset.month, onset.day, tzinfo=UTC),
                record=dict(rec),
            )
        )
    return out


def anomaly_summary(rec: Mapping[str, object], name: str) -> str:
    """The latest day of the episode first (what is happening now), then how long and how much."""
    episode = rec.get("episode")
    ep = episode if isinstance(episode, Mapping) else {}
    observed = float(str(ep.get("last_observed", rec["observed"])))
    expected = float(str(ep.get("last_expected", rec["expected"])))
    day = str(ep.get("last_seen", rec["date"]))
    change = f" ({(observed - expected) / expected:+.0%})" if expected > 0 else ""
    when = "today so far" if rec.get("partial_day") and day == str(rec["date"]) else f"on {day}"
    head = f"{rec['entity_type']} {name} spent ${observed:,.2f} {when} vs ${expected:,.2f} expected{change}"
    days = int(str(ep.get("days", 1)))
    if days > 1:
        total = float(str(ep.get("total_impact_usd", 0.0)))
        head += f"; flagged on {days} days since {ep.get('onset')}, {total:+,.2f} $ in all"
    movers = rec.get("contributors")
    if isinstance(movers, list) and movers:
        top = movers[0]
        head += f"; mostly {top['type']} {top['id']} ({float(top['delta_usd']):+,.2f} $ on {rec['date']})"
    return head


# ---------------------------------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    first: date  # first and last UTC day counted
    last: date


def threshold_window(rule: ThresholdRule, now: datetime) -> Window:
    start, end = period_window(parse_period(rule.period), now, ZoneInfo(rule.timezone))
    first, last = accounting_days(start, end)
    return Window(start, end, first, last)


def window_sum(matrix: SeriesMatrix, row: int | None, first: date, last: date) -> float:
    if row is None:
        return 0.0
    lo, hi = max(matrix.index_of(first), 0), min(matrix.index_of(last), matrix.days - 1)
    return float(np.sum(matrix.values[row, lo : hi + 1])) if hi >= lo else 0.0


def threshold_alerts(rule: ThresholdRule, matrix: SeriesMatrix, cat: Catalog, now: datetime) -> list[Alert]:
    """Each selected entity whose spend in the current period (UTC days up to today) reached the limit."""
    win = threshold_window(rule, now)
    today = now.astimezone(UTC).date()
    rows = {e: i for i, e in enumerate(matrix.entities)}
    ids = [""] if rule.entity == "total" else select_ids(rule.entity, rule.select, cat)
    out = []
    for ident in ids:
        spent = window_sum(matrix, rows.get(ident), win.first, min(win.last, today))
        if spent < rule.amount_usd:
            continue
        entity = entity_labels(cat, rule.entity, ident)
        labels = _labels(rule.name, rule.severity, "threshold", entity, rule.source, rule.labels)
        record = {
            "kind": "threshold",
            "entity_type": rule.entity,
            "entity_id": ident,
            "entity_name": entity["entity_name"],
            "date": today.isoformat(),
            "detected_at": now.isoformat(),
            "period": rule.period,
            "timezone": rule.timezone,
            "window_start": win.start.isoformat(),
            "window_end": win.end.isoformat(),
            "limit_usd": rule.amount_usd,
            "spent_usd": round(spent, 6),
            "over_usd": round(spent - rule.amount_usd, 6),
        }
        out.append(
            Alert(
                fingerprint=fingerprint("threshold", rule.name, rule.entity, ident, win.start.isoformat()),
                status="firing",
                rule=rule.name,
                severity=rule.severity,
                summary=(
                    f"{rule.entity} {entity['entity_name']} spent ${spent:,.2f} this {rule.period}, "
                    f"over its ${rule.amount_usd:,.2f} limit"
                ),
                labels=labels,
                starts_at=now,
                record=record,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- absence
@dataclass(frozen=True)
class SourceHealth:
    source: str
    last_success_at: datetime | None
    last_error: str | None


def source_absence_alerts(rule: AbsenceRule, sources: Sequence[SourceHealth], now: datetime) -> list[Alert]:
    """Sources (selected by name) with no successful poll for longer than ``for``."""
    limit = parse_duration(rule.for_)
    out = []
    for src in sources:
        if rule.select.ids and src.source not in rule.select.ids:
            continue
        if rule.source and src.source != rule.source:
            continue
        if src.last_success_at is not None and now - src.last_success_at <= limit:
            continue
        since = src.last_success_at.isoformat() if src.last_success_at else None
        entity = {"entity_type": "source", "entity_id": src.source, "entity_name": src.source, "team": ""}
        labels = _labels(rule.name, rule.severity, "absence", entity, src.source, rule.labels)
        silent = "never polled successfully" if since is None else f"no successful poll since {since[:16]} UTC"
        out.append(
            Alert(
                fingerprint=fingerprint("absence", rule.name, "source", src.source),
                status="firing",
                rule=rule.name,
                severity=rule.severity,
                summary=f"source {src.source}: {silent}"
                + (f" (last error: {src.last_error})" if src.last_error else ""),
                labels=labels,
                starts_at=src.last_success_at or now,
                record={
                    "kind": "absence",
                    "entity_type": "source",
                    "entity_id": src.source,
                    "entity_name": src.source,
                    "date": now.astimezone(UTC).date().isoformat(),
                    "detected_at": now.isoformat(),
                    "last_success_at": since,
                    "last_error": src.last_error,
                    "for": rule.for_,
                },
            )
        )
    return out


def spend_absence_alerts(rule: AbsenceRule, matrix: SeriesMatrix, cat: Catalog, now: datetime) -> list[Alert]:
    """Steady spenders (spend on most of the 28 days before, averaging ``min_daily_usd``) with no
    spend on the last ``for_days`` complete UTC days."""
    today = now.astimezone(UTC).date()
    quiet_from = today - timedelta(days=rule.for_days)
    hi = matrix.index_of(quiet_from)
    lo = hi - STEADY_DAYS
    if lo < 0 or matrix.index_of(today) > matrix.days:
        return []
    rows = {e: i for i, e in enumerate(matrix.entities)}
    out = []
    for ident in select_ids(rule.entity, rule.select, cat):
        row = rows.get(ident)
        if row is None:
            continue
        quiet = matrix.values[row, hi : hi + rule.for_days]
        before = matrix.values[row, lo:hi]
        if np.nansum(quiet) >= ZERO_USD * rule.for_days:
            continue
        usual = float(np.nanmean(before))
        if usual < rule.min_daily_usd or np.mean(before > ZERO_USD) < STEADY_SHARE:
            continue
        entity = entity_labels(cat, rule.entity, ident)
        labels = _labels(rule.name, rule.severity, "absence", entity, rule.source, rule.labels)
        days = "a day" if rule.for_days == 1 else f"{rule.for_days} days"
        out.append(
            Alert(
                fingerprint=fingerprint("absence", rule.name, rule.entity, ident),
                status="firing",
                rule=rule.name,
                severity=rule.severity,
                summary=(
                    f"{rule.entity} {entity['entity_name']} has had no spend for {days} (usually ${usual:,.2f} a day)"
                ),
                labels=labels,
                starts_at=datetime(quiet_from.year, quiet_from.month, quiet_from.day, tzinfo=UTC),
                record={
                    "kind": "absence",
                    "entity_type": rule.entity,
                    "entity_id": ident,
                    "entity_name": entity["entity_name"],
                    "date": (today - timedelta(days=1)).isoformat(),
                    "detected_at": now.isoformat(),
                    "quiet_since": quiet_from.isoformat(),
                    "usual_daily_usd": round(usual, 6),
                    "for_days": rule.for_days,
                },
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- operator
def operator_alert(
    rule: str, subject: str, summary: str, starts_at: datetime, now: datetime, record: Mapping[str, object]
) -> Alert:
    """A critical alert about Sentinel itself (``kind="operator"``): rule files or a config that do
    not load. ``subject`` (the file) tells one such condition from another."""
    return Alert(
        fingerprint=fingerprint("operator", rule, subject),
        status="firing",
        rule=rule,
        severity="critical",
        summary=summary,
        labels={"kind": "operator", "rule": rule, "severity": "critical", "entity_type": "sentinel"},
        starts_at=starts_at,
        record={"kind": "operator", **record, "detected_at": now.isoformat()},
    )


# ---------------------------------------------------------------------------------------------- budgets
def budget_alert(record: Mapping[str, object], cat: Catalog | None) -> Alert:
    """A budget signal (``budget.evaluate.to_alert``) as a one-shot alert, active until its window ends."""
    from sentinel.budget.evaluate import describe

    budget = record["budget"]
    assert isinstance(budget, Mapping)
    kind, ident = str(record["entity_type"]), str(record["entity_id"])
    entity = entity_labels(cat, kind, ident) if cat else {"entity_type": kind, "entity_id": ident, "team": ""}
    entity["entity_name"] = str(record["entity_name"])
    rule = str(budget.get("rule") or PROXY_BUDGET_RULE)
    severity = str(record["severity"])
    extra = record.get("labels")
    labels = _labels(
        rule, severity, "budget", entity, _str(record.get("source")), extra if isinstance(extra, dict) else {}
    )
    pct = record.get("pct_used")
    labels["signal"] = str(record["signal"])
    labels["exhausted"] = "true" if pct is not None and float(str(pct)) >= 100 else "false"
    labels["budget_origin"] = str(budget.get("origin", ""))
    window_end = budget.get("window_end")
    name = str(record.get("threshold_pct") or record["signal"])
    return Alert(
        fingerprint=fingerprint("budget", str(budget["id"]), str(window_end), name),
        status="firing",
        rule=rule,
        severity=severity,
        summary=describe(dict(record)),
        labels=labels,
        starts_at=datetime.fromisoformat(str(record["detected_at"])),
        record=dict(record),
        one_shot=True,
        expires_at=datetime.fromisoformat(str(window_end)) if window_end else None,
    )


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------- sensitivity
# How much surprise each sensitivity needs, as a multiple of detection's tuned defaults.
SENSITIVITY = {"low": 1.3, "medium": 1.0, "high": 0.8}


def anomaly_thresholds(rule: AnomalyRule) -> dict[str, Thresholds]:
    """Detection thresholds per entity kind for one rule (kinds it does not watch keep the defaults)."""
    scale = SENSITIVITY[rule.sensitivity]
    directions = frozenset({"up", "down"}) if rule.direction == "both" else frozenset({rule.direction})
    out = dict(DEFAULT_THRESHOLDS)
    for kind in rule.entities:
        base = DEFAULT_THRESHOLDS[kind]
        out[kind] = Thresholds(
            z=base.z * scale,
            sustained_z=base.sustained_z * scale,
            sustained_min_z=base.sustained_min_z,
            min_usd=base.min_usd if rule.min_usd is None else rule.min_usd,
            min_pct=base.min_pct if rule.min_pct is None else rule.min_pct / 100.0,
            directions=directions,
        )
    return out
