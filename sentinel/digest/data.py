"""The digest's I/O edge: read from the store everything ``digest.build`` needs for one period.

One read serves every audience of the period (the whole proxy and each team). Spend is summed over
sources, like the rest of Sentinel's reports. Anomalies are detection replayed over the period
with the default sensitivity (``detect.engine.backtest``, each day seeing only the days before
it), plus the anomaly alerts in the alert state; budgets are ``budget.engine.statuses`` as of
``now`` with the given rules (proxy budgets need none).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import sqlite_utils

from sentinel.budget import engine as budget_engine
from sentinel.budget.specs import Policy
from sentinel.detect import engine as detect_engine
from sentinel.detect.series import load_daily, to_matrix
from sentinel.digest.build import Inputs, WeekSums, history_start
from sentinel.digest.schedule import period_of
from sentinel.models import Grain
from sentinel.rules.loader import RuleSet
from sentinel.store import alerts as alert_store
from sentinel.store import entities as entity_store
from sentinel.store import facts as fact_store

_GRAINS = {
    "total": Grain.TOTAL,
    "provider": Grain.PROVIDER,
    "team": Grain.TEAM,
    "user": Grain.USER,
    "model": Grain.MODEL,
    "key": Grain.KEY,
}


def week_sums(db: sqlite_utils.Database, grain: Grain, start: date, end: date) -> dict[str, float]:
    """Spend per entity of ``grain`` over start..end (every source summed)."""
    return dict(fact_store.spend_by_entity(db, grain, start, end))


def model_key_sums(db: sqlite_utils.Database, start: date, end: date) -> dict[str, float]:
    """Spend per model x key ("model\\x1fkey") over start..end: a team's spend by model, key and owner."""
    rows = db.conn.execute(
        "SELECT entity_id || char(31) || detail_id, SUM(spend) FROM daily_facts "
        "WHERE grain = 'model_key' AND date BETWEEN ? AND ? GROUP BY 1",
        (start.isoformat(), end.isoformat()),
    )
    return {str(e): float(s) for e, s in rows}


def known_teams(db: sqlite_utils.Database) -> dict[str, str]:
    """Every team the store knows (listed by the proxy, or named by a key): id -> alias (or the id)."""
    out = {str(t): str(t) for (t,) in db.conn.execute("SELECT DISTINCT team_id FROM keys WHERE team_id IS NOT NULL")}
    for team_id, alias in db.conn.execute("SELECT team_id, alias FROM teams"):
        out[str(team_id)] = str(alias) if alias else str(team_id)
    return out


def key_links(db: sqlite_utils.Database) -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    """(key -> owner user, key -> team, every key): the keys without an owner or a team are only in the last."""
    key_owner: dict[str, str] = {}
    key_team: dict[str, str] = {}
    every = set()
    for token, user_id, team_id in db.conn.execute("SELECT token, user_id, team_id FROM keys"):
        every.add(str(token))
        if user_id:
            key_owner[str(token)] = str(user_id)
        if team_id:
            key_team[str(token)] = str(team_id)
    return key_owner, key_team, frozenset(every)


def ownership(db: sqlite_utils.Database) -> tuple[dict[str, str], dict[str, str], dict[str, frozenset[str]]]:
    """(key -> owner user, key -> team, team -> its users: listed members, users naming the team,
    and owners of its keys)."""
    key_owner, key_team, _every = key_links(db)
    members: dict[str, set[str]] = {}
    for team_id, listed in db.conn.execute("SELECT team_id, members FROM teams"):
        members.setdefault(str(team_id), set()).update(str(u) for u in json.loads(listed or "[]"))
    for user_id, teams in db.conn.execute("SELECT user_id, teams FROM users"):
        for team in json.loads(teams or "[]"):
            members.setdefault(str(team), set()).add(str(user_id))
    for key, team in key_team.items():
        if key in key_owner:
            members.setdefault(team, set()).add(key_owner[key])
    return key_owner, key_team, {t: frozenset(u) for t, u in members.items()}


def read(
    db: sqlite_utils.Database,
    due_at: datetime,
    now: datetime,
    *,
    weeks: int = 8,
    policy: Policy | None = None,
    rules: RuleSet | None = None,
) -> Inputs:
    """What the digest of the period scheduled at ``due_at`` is built from, read at ``now``."""
    start, end = period_of(due_at)
    prev_start, prev_end = start - timedelta(days=7), start - timedelta(days=1)
    first = history_start(end, weeks)
    daily = to_matrix(load_daily(db, Grain.TOTAL, first, end, metrics=("spend",)), "spend", first, end)
    team_daily = to_matrix(load_daily(db, Grain.TEAM, first, end, metrics=("spend",)), "spend", first, end)
    sums = {
        name: WeekSums(week_sums(db, grain, start, end), week_sums(db, grain, prev_start, prev_end))
        for name, grain in _GRAINS.items()
    }
    sums["model_key"] = WeekSums(model_key_sums(db, start, end), model_key_sums(db, prev_start, prev_end))
    key_owner, key_team, members = ownership(db)
    aliases = {kind: entity_store.aliases(db, table) for kind, table in (("user", "users"), ("team", "teams"))}
    aliases["key"] = entity_store.aliases(db, "keys")
    # Episodes that began a few days before the period and went on into it are found at their onset.
    replay_from = start - timedelta(days=detect_engine.EPISODE_GAP_DAYS + 1)
    detection = detect_engine.load(db, replay_from - timedelta(days=detect_engine.HISTORY_DAYS), end)
    anomalies = detect_engine.backtest(detection, replay_from, end)
    alerts = tuple(a for a in alert_store.load(db).values() if a.labels.get("kind") == "anomaly")
    ctx = budget_engine.context(db, now)
    budgets = budget_engine.statuses(db, now, policy or Policy(), rules or RuleSet.empty(), ctx=ctx)
    return Inputs(
        due_at=due_at,
        now=now,
        weeks=weeks,
        daily=daily,
        team_daily=team_daily,
        sums=sums,
        aliases=aliases,
        key_owner=key_owner,
        key_team=key_team,
        team_members=members,
        anomalies=tuple(anomalies),
        alerts=alerts,
        budgets=tuple(budgets),
    )
