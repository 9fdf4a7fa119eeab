"""The web view's pages as values: what each page shows, read from the store as of ``now``.

The store is read at the edge (``web.queries`` for spend, the alerts table, the budget snapshot,
the entity tables); the rest is pure: a series with its baseline band is the digest's
(``digest.build.day_points``: each day fitted on the days before it), a team's, user's, model's or
key's contributors are the model x key grain spread over models, keys, key owners and teams, as
the team digest does, and budgets are the digest's ``BudgetLine`` rows.

Periods are the ``days`` complete UTC days before today (today is still running: it is shown
apart, as spend so far), compared with the as many days before them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from sentinel import privacy
from sentinel.budget import engine as budget_engine
from sentinel.budget import snapshot
from sentinel.budget.model import STATES
from sentinel.budget.specs import Policy
from sentinel.detect.explain import provider_of
from sentinel.digest.build import FIT_DAYS, NO_TEAM, BudgetLine, Compared, DayPoint, budget_lines, day_points
from sentinel.digest.data import key_links, known_teams
from sentinel.models import Grain
from sentinel.rules.loader import RuleSet
from sentinel.store import entities as entity_store
from sentinel.store import read_snapshot
from sentinel.web import queries

PERIODS = (30, 90, 400)
DEFAULT_DAYS = 30
TOP = 10  # rows of each of the overview's tables
ROWS = 50  # rows of a drill-down's contributor table (the rest are counted)
UNASSIGNED = privacy.UNASSIGNED[-1]  # the proxy's name for the user (and team) of keys without one
KINDS = ("team", "user", "model", "key")  # the entities with a page
GRAINS = {"team": Grain.TEAM, "user": Grain.USER, "model": Grain.MODEL, "key": Grain.KEY}


# ----------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Period:
    days: int
    first: date
    last: date  # yesterday: the last complete UTC day
    today: date

    @property
    def previous_first(self) -> date:
        return self.first - timedelta(days=self.days)

    @property
    def previous_last(self) -> date:
        return self.first - timedelta(days=1)


def period_for(days: int, now: datetime) -> Period:
    today = now.astimezone(UTC).date()
    last = today - timedelta(days=1)
    return Period(days, last - timedelta(days=days - 1), last, today)


@dataclass(frozen=True)
class Names:
    """Aliases to show next to ids (users, teams, keys; models and providers are their own names)."""

    aliases: Mapping[str, Mapping[str, str]]

    def of(self, kind: str, ident: str) -> str:
        return self.aliases.get(kind, {}).get(ident, "")


@dataclass(frozen=True)
class Row:
    kind: str  # team | user | model | key | provider, or "" for a bucket without a page
    id: str
    name: str  # the alias ("" when none)
    spend: float
    previous: float | None = None

    @property
    def change(self) -> float | None:
        return None if self.previous is None else self.spend - self.previous


@dataclass(frozen=True)
class Section:
    key: str  # providers | teams | users | models | keys (the element id on the page)
    title: str
    rows: tuple[Row, ...]
    total: float  # what the shares are of
    more: int = 0  # rows not shown

    def share(self, row: Row) -> float | None:
        return row.spend / self.total if self.total > 0 else None


@dataclass(frozen=True)
class Totals(Compared):
    spend: float
    previous: float
    today: float  # today so far
    days_above: int  # days of the period above the usual range
    stored_from: date | None = None  # the store's first day (None: nothing stored)

    def before_stored(self, first: date, last: date) -> str:
        """Whether the store holds the days first..last: "all", "some" (it starts inside), or "none"."""
        if self.stored_from is None or self.stored_from > last:
            return "none"
        return "some" if self.stored_from > first else "all"


@dataclass(frozen=True)
class AnomalyRow:
    fingerprint: str
    status: str  # firing | resolved
    severity: str
    rule: str
    entity_type: str
    entity_id: str
    name: str
    direction: str
    day: str  # the spend day of the record (the episode's last day seen)
    onset: str
    days: int | None
    starts_at: datetime
    ends_at: datetime | None
    impact: float | None  # the episode's impact so far (else the day's), USD
    observed: float | None
    expected: float | None
    summary: str


@dataclass(frozen=True)
class BudgetRows:
    as_of: datetime | None  # when the budgets were evaluated
    basis: str  # "evaluation": by the last alerting cycle (budget.snapshot); "now": for this page
    lines: tuple[BudgetLine, ...]


@dataclass(frozen=True)
class Overview:
    period: Period
    totals: Totals
    points: tuple[DayPoint, ...]
    sections: tuple[Section, ...]  # providers, teams, users, models
    firing: int  # anomaly alerts firing
    budgets: Mapping[str, int]  # budgets per state
    budgets_as_of: datetime | None


@dataclass(frozen=True)
class Fact:
    label: str
    text: str
    kind: str = ""  # a link to this entity's page when set
    id: str = ""


@dataclass(frozen=True)
class EntityPage:
    kind: str
    id: str
    name: str
    period: Period
    totals: Totals
    points: tuple[DayPoint, ...]
    facts: tuple[Fact, ...]
    sections: tuple[Section, ...]
    anomalies: tuple[AnomalyRow, ...]
    budgets: BudgetRows


@dataclass(frozen=True)
class AnomalyList:
    rows: tuple[AnomalyRow, ...]
    state: str  # all | firing | resolved
    counts: Mapping[str, int]  # firing, resolved
    alerting_ran: bool  # False: no alerting cycle has run on this store, so no alert exists yet


@dataclass(frozen=True)
class BudgetList:
    rows: BudgetRows  # those of this page
    state: str  # all, or one of budget.model.STATES
    counts: Mapping[str, int]  # budgets per state
    page: int  # from 1
    pages: int
    first: int  # the position of the page's first row (from 1)
    total: int  # budgets in the chosen state(s)


PAGE_ROWS = 250  # budgets per page of /budgets


class Budgets:
    """Every budget, as the last alerting cycle kept them in the store (read as needed, a page or an
    entity's at a time), or as evaluated for the page when no cycle has kept any."""

    def __init__(
        self,
        as_of: datetime,
        now: datetime,
        *,
        db: sqlite_utils.Database | None = None,
        lines: Sequence[BudgetLine] = (),
    ) -> None:
        self.as_of = as_of
        self.now = now  # the runway of a kept budget is counted from here
        self.db = db  # the store holding the kept evaluation; None: ``lines`` were evaluated for the page
        self.lines = tuple(lines)  # worst first, as digest.build.budget_lines orders them

    @property
    def basis(self) -> str:
        return "evaluation" if self.db is not None else "now"

    def counts(self) -> dict[str, int]:
        if self.db is not None:
            return snapshot.counts(self.db)
        out = dict.fromkeys(STATES, 0)
        for b in self.lines:
            out[b.state] = out.get(b.state, 0) + 1
        return out

    def of(self, entities: Iterable[tuple[str, str]]) -> BudgetRows:
        wanted = set(entities)
        if self.db is not None:
            found = tuple(line_from_json(d, self.now) for d in snapshot.of(self.db, wanted))
        else:
            found = tuple(b for b in self.lines if (b.entity_type, b.entity_id) in wanted)
        return BudgetRows(self.as_of, self.basis, found)

    def page(self, state: str, offset: int, limit: int) -> BudgetRows:
        chosen = None if state == "all" else state
        if self.db is not None:
            docs = snapshot.page(self.db, chosen, offset, limit)
            found = tuple(line_from_json(d, self.now) for d in docs)
        else:
            found = tuple(b for b in self.lines if chosen is None or b.state == chosen)[offset : offset + limit]
        return BudgetRows(self.as_of, self.basis, found)


BudgetSource = Callable[[sqlite_utils.Database, datetime], Budgets]


# ------------------------------------------------------------------------------------- the edge
def names(db: sqlite_utils.Database) -> Names:
    return Names({kind: entity_store.aliases(db, table) for kind, table in (("user", "users"), ("team", "teams"))})


def key_names(db: sqlite_utils.Database, keys: Iterable[str]) -> dict[str, str]:
    wanted = list(dict.fromkeys(keys))
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 400):
        batch = wanted[i : i + 400]
        rows = db.conn.execute(
            f"SELECT token, alias FROM keys WHERE alias IS NOT NULL AND token IN ({','.join('?' * len(batch))})", batch
        )
        out.update({str(t): str(a) for t, a in rows})
    return out


def _series_points(
    db: sqlite_utils.Database, srcs: Sequence[str], grain: Grain, entity: str, p: Period
) -> tuple[tuple[DayPoint, ...], Totals]:
    """The entity's days of the period with their band, and its totals (the period before read too)."""
    start = min(p.first - timedelta(days=FIT_DAYS), p.previous_first)
    values = queries.series(db, srcs, grain, entity, start, p.today)
    points = day_points(values[:-1], start, p.first, p.last)
    before = values[(p.previous_first - start).days : (p.previous_last - start).days + 1]
    totals = Totals(
        spend=sum(pt.spend for pt in points),
        previous=float(before.sum()),
        today=float(values[-1]),
        days_above=sum(1 for pt in points if pt.upper is not None and pt.spend > pt.upper),
        stored_from=queries.first_day(db, srcs),
    )
    return points, totals


def _rows(
    kind: str,
    this: Mapping[str, float],
    previous: Mapping[str, float] | None,
    name: Callable[[str], str],
    link: Callable[[str], str] | None = None,
) -> list[Row]:
    ids = set(this) | set(previous or {})
    rows = [
        Row(link(i) if link else kind, i, name(i), this.get(i, 0.0), None if previous is None else previous.get(i, 0.0))
        for i in ids
    ]
    rows = [r for r in rows if abs(r.spend) >= 0.005 or abs(r.previous or 0.0) >= 0.005]
    rows.sort(key=lambda r: (-r.spend, -(r.previous or 0.0), r.id))
    return rows


def _section(key: str, title: str, rows: Sequence[Row], total: float, limit: int) -> Section:
    return Section(key, title, tuple(rows[:limit]), total, max(len(rows) - limit, 0))


def overview(db: sqlite_utils.Database, now: datetime, days: int, budgets: BudgetSource) -> Overview:
    p = period_for(days, now)
    with read_snapshot(db):
        srcs = queries.sources(db)
        points, totals = _series_points(db, srcs, Grain.TOTAL, "", p)
        aliases = names(db)

        def both(grain: Grain) -> tuple[dict[str, float], dict[str, float]]:
            return (
                queries.spend_by_entity(db, srcs, grain, p.first, p.last),
                queries.spend_by_entity(db, srcs, grain, p.previous_first, p.previous_last),
            )

        providers = _rows("provider", *both(Grain.PROVIDER), lambda _i: "")
        this_teams, prev_teams = both(Grain.TEAM)
        teams = _rows("team", this_teams, prev_teams, lambda t: aliases.of("team", t))
        # Keys without a team are absent from the team grain: show how much that is, so the rows add up.
        rest = (totals.spend - sum(this_teams.values()), totals.previous - sum(prev_teams.values()))
        if abs(rest[0]) >= 0.005 or abs(rest[1]) >= 0.005:
            teams.append(Row("", NO_TEAM, "", rest[0], rest[1]))
            teams.sort(key=lambda r: (-r.spend, -(r.previous or 0.0), r.id))
        users_this = queries.spend_by_entity(db, srcs, Grain.USER, p.first, p.last)
        top_users = sorted(users_this.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        users_prev = queries.user_spend(db, srcs, [u for u, _s in top_users], p.previous_first, p.previous_last)
        users = [Row("user", u, aliases.of("user", u), s, users_prev.get(u, 0.0)) for u, s in top_users if s >= 0.005]
        models = _rows("model", *both(Grain.MODEL), lambda _i: "")
        firing = db.conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE status = 'firing' AND json_extract(labels, '$.kind') = 'anomaly'"
        ).fetchone()[0]
        every_budget = budgets(db, now)
        budget_counts, budgets_as_of = every_budget.counts(), every_budget.as_of
    sections = (
        _section("providers", "Spend by provider", providers, totals.spend, len(providers)),
        _section("teams", "Spend by team", teams, totals.spend, len(teams)),
        Section("users", "Top users", tuple(users), totals.spend, max(len(users_this) - len(users), 0)),
        _section("models", "Top models", models, totals.spend, TOP),
    )
    return Overview(
        p, totals, points, sections_compared(sections, totals, p), int(firing), budget_counts, budgets_as_of
    )


def sections_compared(sections: Iterable[Section], totals: Totals, p: Period) -> tuple[Section, ...]:
    """The sections as shown: without the period before when the store holds none of it (every row
    would read $0 then, and every change +100 %)."""
    if totals.before_stored(p.previous_first, p.previous_last) != "none":
        return tuple(sections)
    return tuple(replace(s, rows=tuple(replace(r, previous=None) for r in s.rows)) for s in sections)


# ------------------------------------------------------------------------------------ drill-downs
@dataclass(frozen=True)
class _Keys:
    """Every key the store knows, with its owner and team (from the key lists and the activity)."""

    owner: Mapping[str, str]
    team: Mapping[str, str]
    all: frozenset[str]

    def of(self, kind: str, ident: str) -> list[str]:
        """The keys of a user or a team ("Unassigned": the keys without one), or the key itself."""
        if kind in ("user", "team"):
            links = self.owner if kind == "user" else self.team
            if ident in privacy.UNASSIGNED:
                return sorted(k for k in self.all if k not in links)
            return sorted(k for k, v in links.items() if v == ident)
        return [ident] if kind == "key" else []


def _keys(db: sqlite_utils.Database) -> _Keys:
    return _Keys(*key_links(db))


def members(db: sqlite_utils.Database, team: str, keys: _Keys) -> frozenset[str]:
    """A team's users, as the digest counts them (``digest.data.ownership``): its listed members,
    the users that name the team, and the owners of its keys."""
    listed = db.conn.execute(
        "SELECT j.value FROM teams t, json_each(t.members) j WHERE t.team_id = ? "
        "UNION SELECT u.user_id FROM users u, json_each(u.teams) j WHERE j.value = ?",
        (team, team),
    )
    out = {str(u) for (u,) in listed}
    out |= {keys.owner[k] for k in keys.of("team", team) if k in keys.owner}
    return frozenset(out)


def teams_of(db: sqlite_utils.Database, user: str, keys: _Keys) -> tuple[str, ...]:
    """The teams a user belongs to, the same way round: named by the user, listing the user, or
    holding one of the user's keys."""
    named = db.conn.execute(
        "SELECT j.value FROM users u, json_each(u.teams) j WHERE u.user_id = ? "
        "UNION SELECT t.team_id FROM teams t, json_each(t.members) j WHERE j.value = ?",
        (user, user),
    )
    out = {str(t) for (t,) in named}
    out |= {keys.team[k] for k in keys.of("user", user) if k in keys.team}
    return tuple(sorted(out))


def spread(
    spend: Mapping[tuple[str, str], float], key_owner: Mapping[str, str], key_team: Mapping[str, str]
) -> dict[str, dict[str, float]]:
    """Spend per (model, key) summed per model, key, provider, key owner and key team."""
    out: dict[str, dict[str, float]] = {k: {} for k in ("model", "key", "provider", "user", "team")}
    for (model, key), amount in spend.items():
        for kind, ident in (
            ("model", model),
            ("key", key),
            ("provider", provider_of(model) or "unknown"),
            ("user", key_owner.get(key, UNASSIGNED)),
            ("team", key_team.get(key, NO_TEAM)),
        ):
            out[kind][ident] = out[kind].get(ident, 0.0) + amount
    return out


def _exists(db: sqlite_utils.Database, srcs: Sequence[str], kind: str, ident: str, keys: _Keys) -> bool:
    if not ident:
        return False
    if kind == "team":
        return ident in known_teams(db) or queries.has_facts(db, srcs, Grain.TEAM, ident)
    if kind == "user":
        listed = db.conn.execute("SELECT 1 FROM users WHERE user_id = ? LIMIT 1", (ident,)).fetchone()
        return listed is not None or ident in keys.owner.values() or queries.has_facts(db, srcs, Grain.USER, ident)
    if kind == "model":
        return queries.has_facts(db, srcs, Grain.MODEL, ident)
    if kind == "key":
        return ident in keys.all
    return False


def entity(
    db: sqlite_utils.Database, now: datetime, kind: str, ident: str, days: int, budgets: BudgetSource
) -> EntityPage | None:
    """A team's, user's, model's or key's page; None if the store knows no such entity."""
    p = period_for(days, now)
    with read_snapshot(db):
        srcs = queries.sources(db)
        keys = _keys(db)
        if not _exists(db, srcs, kind, ident, keys):
            return None
        own_keys = keys.of(kind, ident)
        aliases = names(db)
        points, totals = _series_points(db, srcs, GRAINS[kind], ident, p)
        team_members = members(db, ident, keys) if kind == "team" else frozenset()
        this, before = _model_keys(db, srcs, kind, ident, own_keys, p)
        parts, parts_before = spread(this, keys.owner, keys.team), spread(before, keys.owner, keys.team)
        key_alias = key_names(db, [*parts["key"], *parts_before["key"], *own_keys])
        sections = _sections(kind, parts, parts_before, aliases, key_alias, team_members)
        facts = _facts(db, kind, ident, keys, aliases, len(own_keys), team_members)
        # A team's page also shows its members' and keys' anomalies and budgets; a user's, its keys'.
        related = {(kind, ident), *(("user", u) for u in team_members)}
        if kind in ("team", "user"):
            related |= {("key", k) for k in own_keys}
        anomaly_rows = tuple(a for a in anomalies(db, aliases) if (a.entity_type, a.entity_id) in related)
        mine = budgets(db, now).of(related)
    return EntityPage(
        kind=kind,
        id=ident,
        name=aliases.of(kind, ident) if kind in ("user", "team") else key_alias.get(ident, "") if kind == "key" else "",
        period=p,
        totals=totals,
        points=points,
        facts=facts,
        sections=sections_compared(sections, totals, p),
        anomalies=anomaly_rows,
        budgets=mine,
    )


def _model_keys(
    db: sqlite_utils.Database, srcs: Sequence[str], kind: str, ident: str, own_keys: Sequence[str], p: Period
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Spend per (model, key) of the entity in the period and the period before: a model's over
    every key; a team's, user's or key's over its keys and every model."""
    period = (p.previous_first, p.first, p.last)
    if kind == "model":  # every key of the model, in both periods (a key may have spent in one only)
        return queries.model_key_spend(db, srcs, [ident], period)
    return queries.model_key_spend(db, srcs, queries.models(db, srcs, p.previous_first, p.last), period, own_keys)


_CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    "team": (("user", "Users"), ("key", "Keys"), ("model", "Models"), ("provider", "Providers")),
    "user": (("key", "Keys"), ("model", "Models"), ("team", "Teams (of the keys)")),
    "model": (("user", "Users"), ("key", "Keys"), ("team", "Teams")),
    "key": (("model", "Models"),),
}


def _sections(
    kind: str,
    parts: Mapping[str, Mapping[str, float]],
    parts_before: Mapping[str, Mapping[str, float]],
    aliases: Names,
    key_alias: Mapping[str, str],
    team_members: frozenset[str],
) -> tuple[Section, ...]:
    """The entity's contributors, one section per kind below it (``_CHILDREN``)."""
    names_of: dict[str, Callable[[str], str]] = {
        "user": lambda u: aliases.of("user", u),
        "team": lambda t: aliases.of("team", t),
        "key": lambda k: key_alias.get(k, ""),
        "model": lambda _m: "",
        "provider": lambda _p: "",
    }
    out = []
    for child, title in _CHILDREN[kind]:
        this, before = dict(parts[child]), parts_before[child]
        rows = _rows(child, this, before, names_of[child], _page_kind(child))
        if child == "user" and kind == "team":  # members with no spend through the team's keys are listed too
            listed = {r.id for r in rows}
            rows += [Row("user", u, aliases.of("user", u), 0.0, 0.0) for u in sorted(team_members - listed)]
        if rows or child in ("key", "model"):
            out.append(_section(f"{child}s", title, rows, sum(this.values()), ROWS))
    return tuple(out)


def _page_kind(kind: str) -> Callable[[str], str]:
    """The page a row links to: its kind's, except the "(no team)" bucket, which has none."""
    return lambda ident: "" if ident == NO_TEAM else kind


def _facts(
    db: sqlite_utils.Database,
    kind: str,
    ident: str,
    keys: _Keys,
    aliases: Names,
    n_keys: int,
    team_members: frozenset[str],
) -> tuple[Fact, ...]:
    out: list[Fact] = []
    if kind == "team":
        out.append(Fact("members", str(len(team_members))))
        out.append(Fact("keys", str(n_keys)))
    elif kind == "user":
        row = db.conn.execute("SELECT role FROM users WHERE user_id = ? AND role IS NOT NULL", (ident,)).fetchone()
        if row:
            out.append(Fact("role", str(row[0])))
        for team in teams_of(db, ident, keys):
            out.append(Fact("team", aliases.of("team", team) or team, "team", team))
        out.append(Fact("keys", str(n_keys)))
    elif kind == "model":
        out.append(Fact("provider", provider_of(ident) or "unknown"))
    elif kind == "key":
        for label, of, found in (("owner", "user", keys.owner.get(ident)), ("team", "team", keys.team.get(ident))):
            out.append(Fact(label, aliases.of(of, found) or found, of, found) if found else Fact(label, "none"))
        blocked = db.conn.execute("SELECT MAX(blocked) FROM keys WHERE token = ?", (ident,)).fetchone()[0]
        if blocked:
            out.append(Fact("blocked", "yes"))
    return tuple(out)


# ---------------------------------------------------------------------------------------- anomalies
_ANOMALY_SQL = (
    "SELECT fingerprint, status, severity, rule, summary, starts_at, ends_at, "
    "json_extract(labels, '$.entity_type'), json_extract(labels, '$.entity_id'), "
    "json_extract(labels, '$.entity_name'), json_extract(labels, '$.direction'), "
    "json_extract(record, '$.date'), json_extract(record, '$.episode.onset'), json_extract(record, '$.episode.days'), "
    "json_extract(record, '$.episode.total_impact_usd'), json_extract(record, '$.impact_usd'), "
    "json_extract(record, '$.observed'), json_extract(record, '$.expected') "
    "FROM alerts WHERE json_extract(labels, '$.kind') = 'anomaly'"
)


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:  # a hand-edited or foreign row: shown without the moment, not a broken page
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def anomalies(db: sqlite_utils.Database, aliases: Names) -> list[AnomalyRow]:
    """Every anomaly alert, firing first, then the latest first."""
    rows = db.conn.execute(_ANOMALY_SQL).fetchall()
    key_alias = key_names(db, [str(r[8]) for r in rows if r[7] == "key"])
    out = []
    for row in rows:
        fp, status, severity, rule, summary, starts, ends, etype, eid, ename, direction = row[:11]
        day, onset, days, total, impact, observed, expected = row[11:]
        etype, eid = str(etype or ""), str(eid or "")
        name = key_alias.get(eid, "") if etype == "key" else aliases.of(etype, eid)
        if not name and ename and ename != eid:
            name = str(ename)
        out.append(
            AnomalyRow(
                fingerprint=str(fp),
                status=str(status),
                severity=str(severity),
                rule=str(rule),
                entity_type=etype,
                entity_id=eid,
                name=name,
                direction=str(direction or "up"),
                day=str(day or ""),
                onset=str(onset or day or ""),
                days=int(days) if isinstance(days, int) else None,
                starts_at=_moment(starts) or datetime.min.replace(tzinfo=UTC),
                ends_at=_moment(ends),
                impact=_num(total) if _num(total) is not None else _num(impact),
                observed=_num(observed),
                expected=_num(expected),
                summary=str(summary),
            )
        )
    out.sort(key=lambda a: (a.status != "firing", -a.starts_at.timestamp(), a.entity_type, a.entity_id))
    return out


def anomaly_list(db: sqlite_utils.Database, state: str) -> AnomalyList:
    with read_snapshot(db):
        every = anomalies(db, names(db))
        # A cycle keeps its budget evaluation, and every alert it raised (of any kind) is stored.
        ran = snapshot.evaluated_at(db) is not None or db.conn.execute("SELECT 1 FROM alerts LIMIT 1").fetchone()
    counts = {state: sum(a.status == state for a in every) for state in ("firing", "resolved")}
    shown = tuple(a for a in every if state == "all" or a.status == state)
    return AnomalyList(shown, state, counts, bool(ran))


# ------------------------------------------------------------------------------------------ budgets
def line_from_json(doc: Mapping[str, Any], now: datetime) -> BudgetLine:
    """A ``budget.report.to_json`` document as the digest's budget row."""
    fc = doc.get("forecast") if isinstance(doc.get("forecast"), Mapping) else None
    eta = _moment(fc.get("breach_eta")) if fc else None
    return BudgetLine(
        budget_id=str(doc.get("budget_id", "")),
        entity_type=str(doc.get("entity_type", "")),
        entity_id=str(doc.get("entity_id", "")),
        name=str(doc.get("entity_name") or doc.get("entity_id") or ""),
        origin=str(doc.get("origin", "")),
        rule=str(doc["rule"]) if doc.get("rule") else None,
        period="" if doc.get("period") in (None, "lifetime") else str(doc.get("period")),
        spent=_num(doc.get("spent_usd")) or 0.0,
        limit=_num(doc.get("limit_usd")),
        soft_limit=_num(doc.get("soft_limit_usd")),
        pct_used=_num(doc.get("pct_used")),
        window_end=_moment(doc.get("window_end")),
        forecast=_num(fc.get("at_window_end_usd")) if fc else None,
        forecast_lower=_num(fc.get("lower_usd")) if fc else None,
        forecast_upper=_num(fc.get("upper_usd")) if fc else None,
        p_breach=_num(fc.get("p_breach")) if fc and doc.get("limit_usd") is not None else None,
        eta=eta,
        runway=max(eta - now, timedelta(0)) if eta else None,
        state=str(doc.get("state", "ok")),
        note=str(doc["note"]) if doc.get("note") else None,
    )


def evaluate_budgets(db: sqlite_utils.Database, now: datetime, policy: Policy, rules: RuleSet) -> list[BudgetLine]:
    """Every budget evaluated now (for stores where no alerting cycle has kept an evaluation)."""
    return budget_lines(budget_engine.statuses(db, now, policy, rules), now)


def budget_list(db: sqlite_utils.Database, now: datetime, budgets: BudgetSource, state: str, page: int) -> BudgetList:
    """One page of /budgets: worst first, PAGE_ROWS at a time."""
    with read_snapshot(db):
        every = budgets(db, now)
        counts = every.counts()
        total = sum(counts.values()) if state == "all" else counts.get(state, 0)
        pages = max(1, -(-total // PAGE_ROWS))
        page = min(max(page, 1), pages)
        rows = every.page(state, (page - 1) * PAGE_ROWS, PAGE_ROWS)
    return BudgetList(rows, state, counts, page, pages, (page - 1) * PAGE_ROWS + 1, total)


def store_signature(db: sqlite_utils.Database) -> str:
    """Changes whenever a sync commits (for caches of what is slow to compute)."""
    rows = db.conn.execute("SELECT source, last_success_at, entities_synced_at FROM sync_state ORDER BY source")
    return json.dumps(rows.fetchall(), default=str)
