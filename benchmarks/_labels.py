"""Matching alerts to the simulator's injected events (used by ``detection_quality.py``).

The rule, applied identically to Sentinel and to the baselines:

- An alert *matches* an injected anomaly when its date lies in [event.start, event.end + 2 days]
  and its entity is the event's own or directly related to it:
  key event    -> the key, the key's owner, the key's team;
  user event   -> the user, the user's keys, the user's teams (memberships and the teams of its keys);
  team event   -> the team, its members (and owners of its keys), its keys;
  provider outage -> the provider and its models ("azure/gpt-4o" belongs to "azure"), plus, because
  traffic fails over, an "up" alert on any *other* provider or model in the same window.
  Nothing else counts: a model or provider alert caused by a runaway key is *not* a match.
- An unmatched alert is a false alert. It is said to fall on a hard negative when the same rule
  would tie it to one (the holiday relates to every entity; the volatile user only to the user and
  its keys, because its window is the whole range and would otherwise swallow every team alert), or
  when it is an *echo* of one: an "up" on a model or provider of which the hard negative's keys
  explain at least half (their spend on it that day minus their median over the 28 days before).
- Otherwise, an unmatched alert is a *spill-over* when it is an echo of an injected key/user/team
  anomaly (the baseline being the 28 days before the event), else "other". Spill-overs stay false
  alerts in precision; they are only counted apart, to tell echoes from noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from sentinel.detect.series import SeriesMatrix
from sentinel.simulator import InjectedEvent, TrafficModel

SLACK_DAYS = 2  # an alert up to two days after an event's last day still belongs to it
SPILL_SHARE = 0.5  # the event's keys must explain at least this share of a spill-over's impact
SPILL_BASE_DAYS = 28
# Entity-specific first: the holiday relates to everything, so it only takes what nothing else explains.
HARD_NEGATIVE_ORDER = ("month_end_peak", "volatile", "new_user", "holiday")


@dataclass(frozen=True)
class Alert:
    """One alert of any detector: a Sentinel episode at its onset, or one alert day of a baseline."""

    entity_type: str
    entity_id: str
    day: date
    direction: str
    impact_usd: float


@dataclass(frozen=True)
class Org:
    """Who owns what, from the simulator's roster (the ground truth, not the store)."""

    key_owner: dict[str, str]
    key_team: dict[str, str]
    user_keys: dict[str, frozenset[str]]
    user_teams: dict[str, frozenset[str]]
    team_users: dict[str, frozenset[str]]
    team_keys: dict[str, frozenset[str]]

    @classmethod
    def of(cls, model: TrafficModel) -> Org:
        owner = {k.token: k.user_id for k in model.keys if k.user_id}
        team = {k.token: k.team_id for k in model.keys if k.team_id}
        user_keys: dict[str, set[str]] = {}
        team_keys: dict[str, set[str]] = {}
        for k, u in owner.items():
            user_keys.setdefault(u, set()).add(k)
        for k, t in team.items():
            team_keys.setdefault(t, set()).add(k)
        user_teams: dict[str, set[str]] = {u.user_id: set(u.teams) for u in model.users}
        team_users: dict[str, set[str]] = {t.team_id: set(t.members) for t in model.teams}
        for k, t in team.items():  # a key's team relates its owner too, member or not
            if k in owner:
                user_teams.setdefault(owner[k], set()).add(t)
                team_users.setdefault(t, set()).add(owner[k])
        return cls(
            owner,
            team,
            _freeze(user_keys),
            _freeze(user_teams),
            _freeze(team_users),
            _freeze(team_keys),
        )

    def keys_of(self, event: InjectedEvent) -> frozenset[str]:
        """The keys whose traffic an event is about (empty for provider and org-wide events)."""
        if event.entity_type == "key":
            return frozenset({event.entity_id})
        if event.entity_type == "user":
            return self.user_keys.get(event.entity_id, frozenset())
        if event.entity_type == "team":
            return self.team_keys.get(event.entity_id, frozenset())
        return frozenset()


def _freeze(d: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    return {k: frozenset(v) for k, v in d.items()}


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def in_window(event: InjectedEvent, day: date) -> bool:
    return event.start <= day <= event.end + timedelta(days=SLACK_DAYS)


def related(org: Org, event: InjectedEvent, alert: Alert, *, with_team: bool = True) -> bool:
    """Is the alert's entity the event's entity or directly related to it?"""
    et, eid, at, aid = event.entity_type, event.entity_id, alert.entity_type, alert.entity_id
    if et == "total":
        return True
    if at == et and aid == eid:
        return True
    if et == "key":
        return (at == "user" and org.key_owner.get(eid) == aid) or (
            with_team and at == "team" and org.key_team.get(eid) == aid
        )
    if et == "user":
        return (at == "key" and aid in org.user_keys.get(eid, ())) or (
            with_team and at == "team" and aid in org.user_teams.get(eid, ())
        )
    if et == "team":
        return (at == "user" and aid in org.team_users.get(eid, ())) or (
            at == "key" and aid in org.team_keys.get(eid, ())
        )
    if et == "provider":
        return at == "model" and provider_of(aid) == eid
    return False


def failover(event: InjectedEvent, alert: Alert) -> bool:
    """During an outage the traffic moves: a rise on another provider or model is the same event."""
    if event.kind != "provider_outage" or alert.direction != "up":
        return False
    if alert.entity_type == "provider":
        return alert.entity_id != event.entity_id
    return alert.entity_type == "model" and provider_of(alert.entity_id) != event.entity_id


def matches(org: Org, event: InjectedEvent, alert: Alert) -> bool:
    return in_window(event, alert.day) and (related(org, event, alert) or failover(event, alert))


def incident_root(org: Org, alert: Alert) -> tuple[date, str, str]:
    """Alerts with the same root on the same day are one incident (a user and its key, a model and its provider)."""
    if alert.entity_type == "key" and alert.entity_id in org.key_owner:
        return alert.day, "user", org.key_owner[alert.entity_id]
    if alert.entity_type == "model":
        return alert.day, "provider", provider_of(alert.entity_id) or alert.entity_id
    return alert.day, alert.entity_type, alert.entity_id


def peak_excess(m: SeriesMatrix, event: InjectedEvent, until: date) -> float | None:
    """The event entity's largest daily move in the event window (replayed part), against the median of
    the same weekday over the four weeks before the event. None when the entity has no series."""
    if event.entity_id not in m.entities:
        return None
    row = m.values[m.entities.index(event.entity_id)]
    first = m.index_of(event.start)
    best = 0.0
    for idx in range(first, min(m.index_of(min(event.end, until)), m.days - 1) + 1):
        # the same weekday in the four weeks before the event, so a Friday spike is not measured against Sundays
        back = [j for j in range(idx - 7, idx - 7 * 12, -7) if 0 <= j < first][:4]
        base = float(np.median(row[back])) if back else 0.0
        if abs(row[idx] - base) > abs(best):
            best = float(row[idx] - base)
    return best


class KeyModelSpend:
    """Per (key, model) daily spend from the store's model_key grain, to attribute echoes."""

    def __init__(self, model_key: SeriesMatrix) -> None:
        self.start = model_key.start
        self.rows: dict[str, list[tuple[str, np.ndarray]]] = {}
        for i, entity in enumerate(model_key.entities):
            model, key = entity.split("\x1f", 1)
            self.rows.setdefault(key, []).append((model, model_key.values[i]))

    def delta(self, keys: Iterable[str], alert: Alert, base_end: date) -> float:
        """The keys' spend on the alert's model (or provider) that day, minus their median over the
        SPILL_BASE_DAYS before ``base_end``."""
        day = (alert.day - self.start).days
        hi = max(0, (base_end - self.start).days)
        lo = max(0, hi - SPILL_BASE_DAYS)
        total = 0.0
        for key in keys:
            for model, row in self.rows.get(key, ()):
                target = model if alert.entity_type == "model" else provider_of(model)
                if target == alert.entity_id:
                    base = float(np.median(row[lo:hi])) if hi > lo else 0.0
                    total += float(row[day]) - base
        return total


class Labeller:
    """Ties alerts to injected events: matches (anomalies) and causes of false alerts."""

    def __init__(self, org: Org, events: Iterable[InjectedEvent], spend: KeyModelSpend) -> None:
        self.org, self.spend = org, spend
        events = list(events)
        self.anomalies = [e for e in events if e.is_anomaly]
        self.negatives = [e for e in events if not e.is_anomaly]

    def matches(self, alert: Alert) -> list[int]:
        """Indexes into ``anomalies`` of every anomaly the alert matches."""
        return [i for i, e in enumerate(self.anomalies) if matches(self.org, e, alert)]

    def cause(self, alert: Alert) -> str:
        """Why an unmatched alert fired: a hard negative (in HARD_NEGATIVE_ORDER), a spill-over, or other."""
        hits = {e.kind for e in self.negatives if in_window(e, alert.day) and self._on_negative(e, alert)}
        hit = next((k for k in HARD_NEGATIVE_ORDER if k in hits), None)
        if hit:
            return hit
        # An anomaly's own keys explain the move of a model or provider: measured against the days before it.
        if any(self._echo(e, alert, e.start) for e in self.anomalies if in_window(e, alert.day)):
            return "spill_over"
        return "other"

    def _on_negative(self, e: InjectedEvent, alert: Alert) -> bool:
        # The volatile user's window is the whole range: its team would swallow every team alert.
        if related(self.org, e, alert, with_team=e.kind != "volatile"):
            return True
        # A user's month-end run or first days also show on the models they use: against the days before.
        return self._echo(e, alert, alert.day)

    def _echo(self, e: InjectedEvent, alert: Alert, base_end: date) -> bool:
        if alert.entity_type not in ("model", "provider") or alert.direction != "up" or alert.impact_usd <= 0:
            return False
        keys = self.org.keys_of(e)
        return bool(keys) and self.spend.delta(keys, alert, base_end) >= SPILL_SHARE * alert.impact_usd
