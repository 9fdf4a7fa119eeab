"""Every budget Sentinel watches, as of one moment: the proxies' own and those in rule files.

Proxy budgets (teams, users, keys) are read from the store, where the last entity sync left the
proxy's counters; their spend is the entity's own ``spend`` counter, which the proxy resets each
window. Rule budgets apply a rule to each selected entity; their spend is summed from the stored
daily activity over the rule's window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlite_utils

from sentinel.budget.model import DEFAULT_THRESHOLDS, BudgetSpec
from sentinel.budget.windows import (
    accounting_days,
    midnight_utc,
    nearest_utc_day,
    next_reset,
    parse_duration,
    period_window,
    proxy_window_start,
)
from sentinel.config import Settings
from sentinel.detect.explain import provider_of
from sentinel.detect.series import SeriesMatrix
from sentinel.rules.schema import BudgetRule, Selector

_PROXY_TABLES = {"team": ("teams", "team_id"), "user": ("users", "user_id"), "key": ("keys", "token")}


@dataclass(frozen=True)
class Policy:
    """Budget settings that apply where a rule does not say otherwise."""

    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    forecast_probability: float = 0.8
    interval: float = 0.9
    proxy_budgets: bool = True
    timezones: Mapping[str, str] = field(default_factory=dict)  # source -> proxy budget timezone

    def zone(self, source: str | None) -> ZoneInfo:
        return ZoneInfo(self.timezones.get(source or "", "UTC"))


def _dt(value: object) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ProxyLimit:
    """A proxy budget as stored: what the entity's row says, independent of the moment."""

    source: str
    entity_type: str
    entity_id: str
    display: str
    max_budget: float | None
    soft_budget: float | None
    spend: float
    duration: str | None
    reset_at: datetime | None
    seen_at: datetime
    suffix: str = ""  # "" for the main budget; "limits/<i>" for a team's extra budget_limits window


def proxy_limits(db: sqlite_utils.Database) -> list[ProxyLimit]:
    """Every stored team, user and key with a max or soft budget (the rest have nothing to watch)."""
    out: list[ProxyLimit] = []
    for kind, (table, id_col) in _PROXY_TABLES.items():
        soft = "soft_budget" if kind != "user" else "NULL"  # users have no soft budget (API.md §2.1)
        extra = ", budget_limits" if kind == "team" else ", NULL"
        rows = db.conn.execute(
            f"SELECT source, {id_col}, alias, max_budget, {soft}, spend, budget_duration, budget_reset_at, seen_at"
            f"{extra} FROM {table} WHERE max_budget IS NOT NULL OR {soft} IS NOT NULL ORDER BY source, {id_col}"
        ).fetchall()
        for source, ident, alias, max_b, soft_b, spend, duration, reset, seen, limits in rows:
            seen_at = _dt(seen) or datetime.now(UTC)
            base = ProxyLimit(
                source, kind, ident, alias or ident, max_b, soft_b, spend or 0.0, duration, _dt(reset), seen_at
            )
            out.append(base)
            for i, window in enumerate(json.loads(limits or "[]")):
                if isinstance(window, dict) and window.get("max_budget") is not None:
                    out.append(
                        ProxyLimit(
                            source,
                            kind,
                            ident,
                            alias or ident,
                            float(window["max_budget"]),
                            None,
                            float("nan"),
                            window.get("budget_duration"),
                            _dt(window.get("reset_at")),
                            seen_at,
                            f"limits/{i}",
                        )
                    )
    return out


def proxy_window(
    limit: ProxyLimit, at: datetime, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None, str | None]:
    """(window start, window end, note) of a proxy budget at ``at``."""
    if not limit.duration:
        return None, None, None
    try:
        duration = parse_duration(limit.duration)
    except ValueError as exc:
        return None, None, str(exc)
    # A reset already due is kept: the proxy's reset job (every ~10 minutes) has not zeroed the counter
    # yet, so the spend still belongs to the window that ended, and so do its fired thresholds.
    reset = limit.reset_at if limit.reset_at is not None else next_reset(duration, at, zone)
    return proxy_window_start(duration, reset, zone), reset, None


def proxy_spec(
    limit: ProxyLimit, policy: Policy, spent: float, at: datetime, basis: str = "proxy counter"
) -> tuple[BudgetSpec, str | None]:
    zone = policy.zone(limit.source)
    start, end, note = proxy_window(limit, at, zone)
    suffix = f"/{limit.suffix}" if limit.suffix else ""
    spec = BudgetSpec(
        budget_id=f"proxy/{limit.source}/{limit.entity_type}/{limit.entity_id}{suffix}",
        origin="proxy",
        source=limit.source,
        entity_type=limit.entity_type,
        entity_id=limit.entity_id,
        display=limit.display,
        limit=limit.max_budget,
        soft_limit=limit.soft_budget,
        period=limit.duration or "",
        timezone=str(zone),
        window_start=start,
        window_end=end,
        spent=spent,
        spent_as_of=at,
        spend_basis=basis,
        thresholds=policy.thresholds,
        forecast_probability=policy.forecast_probability,
    )
    return spec, note


# ---------------------------------------------------------------------------------------------- rule budgets
@dataclass(frozen=True)
class Catalog:
    """Who exists, for selectors: ids per kind with aliases, and team membership."""

    ids: Mapping[str, tuple[str, ...]]  # kind -> entity ids
    aliases: Mapping[str, Mapping[str, str]]  # kind -> id -> alias
    teams_of: Mapping[str, Mapping[str, tuple[str, ...]]]  # "user"/"key" -> id -> team ids
    owner_of: Mapping[str, str] = field(default_factory=dict)  # key -> user id

    def labels(self, kind: str, ident: str) -> dict[str, str]:
        """What selectors' ``labels`` match: team, provider and (for keys) user; "" when unknown."""
        teams = (ident,) if kind == "team" else self.teams_of.get(kind, {}).get(ident, ())
        provider = ident if kind == "provider" else provider_of(ident) if kind == "model" else ""
        return {"team": teams[0] if teams else "", "provider": provider, "user": self.owner_of.get(ident, "")}


def catalog(db: sqlite_utils.Database, spend: Mapping[str, SeriesMatrix], source: str | None) -> Catalog:
    where, params = (" WHERE source = ?", [source]) if source else ("", [])
    ids: dict[str, set[str]] = {kind: set(m.entities) for kind, m in spend.items()}
    aliases: dict[str, dict[str, str]] = {"team": {}, "user": {}, "key": {}}
    teams_of: dict[str, dict[str, tuple[str, ...]]] = {"user": {}, "key": {}}
    for ident, alias, teams in db.conn.execute(f"SELECT user_id, alias, teams FROM users{where}", params):
        ids.setdefault("user", set()).add(ident)
        if alias:
            aliases["user"][ident] = alias
        teams_of["user"][ident] = tuple(json.loads(teams or "[]"))
    for ident, alias in db.conn.execute(f"SELECT team_id, alias FROM teams{where}", params):
        ids.setdefault("team", set()).add(ident)
        if alias:
            aliases["team"][ident] = alias
    owner_of: dict[str, str] = {}
    for ident, alias, team, user in db.conn.execute(f"SELECT token, alias, team_id, user_id FROM keys{where}", params):
        ids.setdefault("key", set()).add(ident)
        if alias:
            aliases["key"][ident] = alias
        if team:
            teams_of["key"][ident] = (team,)
        if user:
            owner_of[ident] = user
    for user, teams in list(teams_of["user"].items()):
        if not teams:  # a user's team may only be known through their keys
            del teams_of["user"][user]
    ids["total"] = {""}
    return Catalog({k: tuple(sorted(v)) for k, v in ids.items()}, aliases, teams_of, owner_of)


def select(rule: BudgetRule, cat: Catalog) -> list[str]:
    """The entity ids a budget rule applies to."""
    return select_ids(rule.entity, rule.select, cat)


def select_ids(kind: str, selector: Selector, cat: Catalog) -> list[str]:
    """The entity ids of ``kind`` a selector matches (ids or aliases, regex on either, team
    membership, entity labels); every condition given must hold."""
    names = cat.aliases.get(kind, {})
    chosen = []
    pattern = re.compile(selector.regex) if selector.regex else None
    team_aliases = cat.aliases.get("team", {})

    def team_ids(name: str) -> set[str]:
        return {t for t in cat.ids.get("team", ()) if name in (t, team_aliases.get(t))} | {name}

    wanted_team = team_ids(selector.team) if selector.team else set()
    for ident in cat.ids.get(kind, ()):
        alias = names.get(ident, "")
        if selector.ids and ident not in selector.ids and alias not in selector.ids:
            continue
        if pattern and not (pattern.search(ident) or (alias and pattern.search(alias))):
            continue
        if selector.team and not wanted_team.intersection(cat.teams_of.get(kind, {}).get(ident, ())):
            continue
        if selector.labels:
            have = cat.labels(kind, ident)
            if any(have.get(k, "") not in (team_ids(v) if k == "team" else {v}) for k, v in selector.labels.items()):
                continue
        chosen.append(ident)
    return chosen


def rule_window(rule: BudgetRule, at: datetime) -> tuple[datetime, datetime, date, date]:
    """(window start, window end, first and last UTC day counted) of a rule budget at ``at``."""
    start, end = period_window(rule.parsed_period, at, ZoneInfo(rule.timezone))
    first, last = accounting_days(start, end)
    return start, end, first, last


def rule_specs(
    rule: BudgetRule,
    entities: list[str],
    cat: Catalog,
    matrix: SeriesMatrix,
    at: datetime,
    policy: Policy,
) -> Iterator[BudgetSpec]:
    """One spec per selected entity; spend = stored daily activity over the window's UTC days up to ``at``."""
    start, _end, first, last = rule_window(rule, at)
    today = at.astimezone(UTC).date()
    lo, hi = matrix.index_of(first), matrix.index_of(min(last, today))
    index = {e: i for i, e in enumerate(matrix.entities)}
    names = cat.aliases.get(rule.entity, {})
    for ident in entities:
        row = index.get(ident)
        spent = float(np.sum(matrix.values[row, max(lo, 0) : hi + 1])) if row is not None and hi >= 0 else 0.0
        yield BudgetSpec(
            budget_id=f"rule/{rule.name}/{rule.entity}/{ident}",
            origin="rule",
            source=rule.source,
            entity_type=rule.entity,
            entity_id=ident,
            display=names.get(ident, ident) or "whole proxy",
            limit=rule.amount_usd,
            soft_limit=rule.soft_amount_usd,
            period=rule.parsed_period.label,
            timezone=rule.timezone,
            window_start=start,
            # Spend is counted in whole UTC days, so the forecast runs to the end of the last one counted.
            window_end=midnight_utc(last + timedelta(days=1)),
            spent=spent,
            spent_as_of=at,
            spend_basis="daily activity",
            thresholds=rule.thresholds or policy.thresholds,
            forecast_probability=rule.forecast_probability or policy.forecast_probability,
            rule=rule.name,
            severity=rule.severity or "warning",
            severity_set=rule.severity is not None,
            labels=dict(rule.labels),
        )


def window_spend(matrix: SeriesMatrix, entity: str, start: datetime, until: date) -> float:
    """Daily activity of one series from the UTC day nearest ``start`` through ``until``."""
    first = nearest_utc_day(start)
    try:
        row = matrix.entities.index(entity)
    except ValueError:
        return 0.0
    lo, hi = max(matrix.index_of(first), 0), matrix.index_of(until)
    return float(np.sum(matrix.values[row, lo : hi + 1])) if hi >= lo else 0.0


def policy_from(settings: Settings) -> Policy:
    b = settings.budgets
    return Policy(
        thresholds=b.thresholds,
        forecast_probability=b.forecast_probability,
        interval=b.forecast_interval,
        proxy_budgets=b.proxy_budgets,
        timezones={s.name: s.budget_timezone for s in settings.sources},
    )
