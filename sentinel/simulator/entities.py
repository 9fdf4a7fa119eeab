"""Who uses the simulated proxy: users, teams, virtual keys, and which key calls which model how often.

Everything is drawn from one seeded RNG so the same seed gives the same organisation. Budgets are filled in
later by the traffic model, because they are sized from the traffic itself.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray

from sentinel.simulator.catalog import CHEAP_MODEL, MODEL_INDEX, MODELS, OUTAGE_PROVIDER, PRICEY_MODEL

ADMIN_USER_ID = "default_user_id"  # the user LiteLLM attributes master-key actions to; owns no traffic here
_READABLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_SURNAMES = ("Nguyen", "Okafor", "Silva", "Kowalski", "Haddad", "Tanaka", "Moreau", "Schmidt")
_TEAM_ALIASES = (
    "team-search",
    "team-platform",
    "team-data",
    "team-support",
    "team-research",
    "team-mobile",
    "team-growth",
    "team-infra",
    "team-billing",
    "team-security",
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_AZURE_MODEL = MODEL_INDEX["azure/gpt-4o"]
_SONNET = MODEL_INDEX["anthropic/claude-3-5-sonnet-20240620"]
_EMBED = MODEL_INDEX["openai/text-embedding-3-small"]
_HAIKU = MODEL_INDEX["anthropic/claude-3-5-haiku-20241022"]
_SMALL = (CHEAP_MODEL, MODEL_INDEX["groq/llama-3.1-8b-instant"], _EMBED, _HAIKU)


@dataclass(frozen=True)
class SimUser:
    user_id: str
    user_email: str | None
    user_alias: str | None
    user_role: str
    teams: tuple[str, ...]
    created_at: datetime
    profile: str  # admin | regular | sparse | new | batch | volatile
    max_budget: float | None = None
    budget_duration: str | None = None


@dataclass(frozen=True)
class SimTeam:
    team_id: str
    team_alias: str
    members: tuple[str, ...]  # role "user"; ADMIN_USER_ID is the team admin, as when an admin creates teams
    created_at: datetime
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None


@dataclass(frozen=True)
class SimKey:
    token: str  # sha256 hex of raw_key: the id used everywhere in the API
    raw_key: str
    key_name: str  # "sk-...abcd" as LiteLLM abbreviates it
    key_alias: str
    user_id: str | None  # None: service key; its traffic lands under user "" (shown as "Unassigned")
    team_id: str | None
    created_at: datetime
    max_budget: float | None = None
    soft_budget: float | None = None  # lives in litellm_budget_table, never on the key row
    budget_duration: str | None = None
    budget_id: str | None = None


@dataclass
class Actors:
    """Whoever drives traffic: one per non-admin user plus one per service key (parallel arrays)."""

    base_rate: list[float] = field(default_factory=list)  # requests/day on an active weekday
    p_weekday: list[float] = field(default_factory=list)
    p_weekend: list[float] = field(default_factory=list)
    weekend_rate: list[float] = field(default_factory=list)
    sigma: list[float] = field(default_factory=list)
    first_day: list[date] = field(default_factory=list)
    month_end: list[bool] = field(default_factory=list)


@dataclass
class Slots:
    """A slot is one (key, model) pair that may produce a daily row; shadows are off until an event turns
    them on (the model a user switches to, the fallback deployment during an outage)."""

    key: list[int] = field(default_factory=list)
    model: list[int] = field(default_factory=list)
    actor: list[int] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    prompt_mean: list[float] = field(default_factory=list)
    completion_mean: list[float] = field(default_factory=list)
    on: list[bool] = field(default_factory=list)

    def add(self, key: int, model: int, actor: int, rate: float, *, like: int | None = None, on: bool = True) -> int:
        template = MODELS[model if like is None else like]  # `like`: keep another model's request sizes
        self.key.append(key)
        self.model.append(model)
        self.actor.append(actor)
        self.rate.append(rate)
        self.prompt_mean.append(template.prompt_mean)
        self.completion_mean.append(template.completion_mean)
        self.on.append(on)
        return len(self.key) - 1

    def arrays(self) -> dict[str, NDArray[np.generic]]:
        return {
            "key": np.array(self.key, dtype=np.int32),
            "model": np.array(self.model, dtype=np.int32),
            "actor": np.array(self.actor, dtype=np.int32),
            "rate": np.array(self.rate, dtype=np.float64),
            "prompt_mean": np.array(self.prompt_mean, dtype=np.float64),
            "completion_mean": np.array(self.completion_mean, dtype=np.float64),
            "on": np.array(self.on, dtype=np.bool_),
        }


@dataclass
class Roster:
    users: list[SimUser]
    teams: list[SimTeam]
    keys: list[SimKey]
    key_user: list[int]  # index into users, -1 for service keys
    key_team: list[int]  # index into teams, -1 for none
    actors: Actors
    slots: Slots
    roles: dict[str, int]  # spike/switch/runaway/volatile/batch/new -> user position (users[pos + 1]);
    # runaway_key / runaway_slot -> the looping key and its slot
    outage_slots: list[tuple[int, int]]  # (azure slot, fallback shadow slot)
    switch_slots: tuple[int, int] | None  # (cheap slot, pricey shadow slot)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _stamp(rng: np.random.Generator, day: date) -> datetime:
    seconds = float(rng.uniform(7 * 3600, 19 * 3600))
    return datetime.combine(day, time(), UTC) + timedelta(seconds=round(seconds, 3))


class _Builder:
    def __init__(self, users: int, teams: int, first_day: date, today: date, rng: np.random.Generator) -> None:
        self.n_users, self.n_teams = max(users, 1), max(teams, 1)
        self.first_day, self.today, self.rng = first_day, today, rng
        self.span = (today - first_day).days + 1
        self.users: list[SimUser] = []
        self.teams: list[SimTeam] = []
        self.keys: list[SimKey] = []
        self.key_user: list[int] = []
        self.key_team: list[int] = []
        self.actors = Actors()
        self.slots = Slots()
        self.roles: dict[str, int] = {}

    def build(self) -> Roster:
        self._teams()
        profiles, memberships = self._plan_users()
        outage: list[tuple[int, int]] = []
        switch: tuple[int, int] | None = None
        for i in range(self.n_users):
            user_index, actor = self._user(i, profiles[i], memberships[i])
            switch = self._user_keys(user_index, actor, memberships[i], outage) or switch
        self._service_keys()
        self._finish_teams(memberships)
        return Roster(
            self.users,
            self.teams,
            self.keys,
            self.key_user,
            self.key_team,
            self.actors,
            self.slots,
            self.roles,
            outage,
            switch,
        )

    def _teams(self) -> None:
        created = datetime.combine(self.first_day - timedelta(days=420), time(9), UTC)
        for t in range(self.n_teams):
            alias = _TEAM_ALIASES[t] if t < len(_TEAM_ALIASES) else f"team-{t + 1:02d}"
            self.teams.append(SimTeam(_uuid(self.rng), alias, (), created + timedelta(hours=t, minutes=7 * t)))
        self.users.append(
            SimUser(
                ADMIN_USER_ID,
                None,
                None,
                "internal_user",  # sic: a real 1.108.7 proxy stores the master key's user with this role (ROLES.md)
                tuple(t.team_id for t in self.teams),
                created - timedelta(days=1),
                "admin",
            )
        )

    def _plan_users(self) -> tuple[list[str], list[list[int]]]:
        rng, n = self.rng, self.n_users
        profiles = ["regular"] * n
        order = [int(i) for i in rng.permutation(n)]
        # Special behaviours go to distinct users; small rosters simply get fewer of them.
        for role, index in zip(("spike", "switch", "runaway", "volatile", "batch", "new"), order, strict=False):
            self.roles[role] = index
            profiles[index] = {"volatile": "volatile", "batch": "batch", "new": "new"}.get(role, "regular")
        for index in order[6:]:
            draw = rng.random()
            profiles[index] = "sparse" if draw < 0.10 else "new" if draw < 0.18 else "regular"
        weights = 1.0 / np.sqrt(np.arange(1, self.n_teams + 1))
        weights /= weights.sum()
        memberships: list[list[int]] = []
        for _ in range(n):
            first = int(rng.choice(self.n_teams, p=weights))
            teams = [first]
            if self.n_teams > 1 and rng.random() < 0.15:
                teams.append(int((first + 1 + rng.integers(self.n_teams - 1)) % self.n_teams))
            memberships.append(teams)
        return profiles, memberships

    def _user(self, i: int, profile: str, teams: list[int]) -> tuple[int, int]:
        rng = self.rng
        if i < len(_READABLE):
            user_id = _READABLE[i]
            alias: str | None = f"{user_id.capitalize()} {_SURNAMES[i]}" if i % 3 != 2 else None
        else:
            user_id = f"u{i + 1:04d}"
            alias = f"Dev {i + 1:04d}" if rng.random() < 0.25 else None
        first = self.first_day
        if i == self.roles.get("new"):
            first = self.today - timedelta(days=min(10, self.span - 1))
        elif profile == "new":
            lo = max(int(self.span * 0.15), 1)
            hi = max(self.span - 3, lo + 1)
            first = self.first_day + timedelta(days=int(rng.integers(lo, hi)))
        created = _stamp(
            rng, first - timedelta(days=int(rng.integers(0, 3) if profile == "new" else rng.integers(30, 400)))
        )
        self.users.append(
            SimUser(
                user_id,
                f"{user_id}@example.com",
                alias,
                "internal_user",
                tuple(self.teams[t].team_id for t in teams),
                created,
                profile,
            )
        )
        a = self.actors
        base = float(np.exp(rng.normal(np.log(60.0), 0.9)))
        # The injected spike and model switch go to users busy enough for them to cost real money:
        # an 8x day of a user who spends cents is not an anomaly anyone should be paged for.
        if i == self.roles.get("spike"):
            base = max(base, 150.0)
        elif i == self.roles.get("switch"):
            base = max(base, 600.0)
        sparse = profile == "sparse"
        a.base_rate.append(base * (0.5 if sparse else 0.25 if profile == "batch" else 1.0))
        a.p_weekday.append(0.18 if sparse else 0.97 if profile == "batch" else 0.93)
        a.p_weekend.append(0.06 if sparse else 0.5)
        a.weekend_rate.append(0.6)
        a.sigma.append(0.9 if profile == "volatile" else 0.3)
        a.first_day.append(first)
        a.month_end.append(profile == "batch")
        return len(self.users) - 1, len(a.base_rate) - 1

    def _key(self, alias: str, user: int, team: int, created: datetime) -> int:
        raw = "sk-" + "".join(_BASE62[int(c)] for c in self.rng.integers(0, 62, 22))
        token = hashlib.sha256(raw.encode()).hexdigest()
        user_id = self.users[user].user_id if user >= 0 else None
        team_id = self.teams[team].team_id if team >= 0 else None
        self.keys.append(SimKey(token, raw, f"sk-...{raw[-4:]}", alias, user_id, team_id, created))
        self.key_user.append(user)
        self.key_team.append(team)
        return len(self.keys) - 1

    def _portfolio(self, forced: int | None) -> list[tuple[int, float]]:
        rng = self.rng
        popularity = np.array([m.popularity for m in MODELS])
        count = int(rng.choice([1, 2, 3], p=[0.55, 0.35, 0.10]))
        models = [int(m) for m in rng.choice(len(MODELS), size=count, replace=False, p=popularity / popularity.sum())]
        if forced is not None and forced not in models:
            models[0] = forced
        # Shadow slots (the switch target, the outage fallback) are (key, openai/gpt-4o); keep that pair free
        # so a shadow is always a fresh row, never a duplicate of an existing one.
        if forced == CHEAP_MODEL:
            models = [m for m in models if m not in (PRICEY_MODEL, _AZURE_MODEL)]
        elif _AZURE_MODEL in models:
            models = [m for m in models if m != PRICEY_MODEL]
        if len(models) == 1:
            return [(models[0], 1.0)]
        weights = rng.dirichlet(np.full(len(models), 2.0))
        if forced is not None:
            weights = np.array([0.85 if m == forced else 0.15 / (len(models) - 1) for m in models])
        return list(zip(models, (float(w) for w in weights), strict=True))

    def _user_keys(
        self, user: int, actor: int, teams: list[int], outage: list[tuple[int, int]]
    ) -> tuple[int, int] | None:
        rng, u = self.rng, self.users[user]
        base = self.actors.base_rate[actor]
        created = u.created_at + timedelta(hours=2)
        key = self._key(f"{u.user_id}-{self.teams[teams[0]].team_alias}", user, teams[0], created)
        index = user - 1  # users[0] is the admin
        forced = CHEAP_MODEL if index == self.roles.get("switch") else None
        if index == self.roles.get("spike"):
            forced = _SONNET  # the spike user works on a priced model, so an 8x day costs real money
        if forced is None and len(outage) < 2:
            forced = _AZURE_MODEL  # guarantee some azure traffic for the outage to remove
        switch: tuple[int, int] | None = None
        for model, weight in self._portfolio(forced):
            slot = self.slots.add(key, model, actor, base * weight)
            if model == _AZURE_MODEL:
                outage.append((slot, self.slots.add(key, PRICEY_MODEL, actor, base * weight, like=model, on=False)))
            if model == CHEAP_MODEL and forced == CHEAP_MODEL:
                switch = (slot, self.slots.add(key, PRICEY_MODEL, actor, base * weight, like=model, on=False))
        if rng.random() < 0.15 or len(teams) > 1:
            team = teams[1] if len(teams) > 1 else teams[0]
            alias = f"{u.user_id}-{self.teams[team].team_alias}" if len(teams) > 1 else f"{u.user_id}-ci"
            second = self._key(alias, user, team, created + timedelta(days=int(rng.integers(1, 60))))
            self.slots.add(second, _SMALL[int(rng.integers(len(_SMALL)))], actor, base * 0.3)
        if index == 0:
            # exactly one key without a team: its rows are in the user table but never in the team table
            personal = self._key(f"{u.user_id}-personal", user, -1, created + timedelta(days=3))
            self.slots.add(personal, _HAIKU, actor, base * 0.2)
        if index == self.roles.get("runaway"):
            agent = self._key(f"{u.user_id}-agent", user, teams[0], created + timedelta(days=5))
            self.roles["runaway_slot"] = self.slots.add(agent, _SONNET, actor, 12.0)
            self.roles["runaway_key"] = agent
        return switch

    def _service_keys(self) -> None:
        a = self.actors
        for t in range(min(3, self.n_teams)):
            a.base_rate.append(float(self.rng.uniform(150, 450)))
            a.p_weekday.append(1.0)
            a.p_weekend.append(1.0)
            a.weekend_rate.append(0.9)
            a.sigma.append(0.15)
            a.first_day.append(self.first_day)
            a.month_end.append(False)
            actor = len(a.base_rate) - 1
            created = self.teams[t].created_at + timedelta(days=2)
            key = self._key(f"svc-{self.teams[t].team_alias.removeprefix('team-')}-pipeline", -1, t, created)
            self.slots.add(key, _EMBED, actor, a.base_rate[actor])
            self.slots.add(key, CHEAP_MODEL, actor, a.base_rate[actor] * 0.3)

    def _finish_teams(self, memberships: list[list[int]]) -> None:
        for t, team in enumerate(self.teams):
            members = tuple(self.users[i + 1].user_id for i, m in enumerate(memberships) if t in m)
            self.teams[t] = SimTeam(team.team_id, team.team_alias, members, team.created_at)


def build_roster(users: int, teams: int, first_day: date, today: date, rng: np.random.Generator) -> Roster:
    roster = _Builder(users, teams, first_day, today, rng).build()
    pairs = set(zip(roster.slots.key, roster.slots.model, strict=True))
    assert len(pairs) == len(roster.slots.key), "a (key, model) pair must map to exactly one slot"
    assert any(MODELS[m].provider == OUTAGE_PROVIDER for m in roster.slots.model) or users < 2
    return roster
