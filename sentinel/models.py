"""Frozen value types that cross module boundaries.

Money is ``Money`` (float US dollars) everywhere: the proxy stores spend as a double, and
comparisons with it are made to $0.000001, well inside a double's precision for sums of
realistic spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

Money = float

# The counters every daily-activity metrics object carries (API.md §1.3, present since 1.72).
# total_tokens is derived (prompt + completion) and newer fields (savings, PTU) are not tracked.
METRIC_FIELDS: tuple[str, ...] = (
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
)
N_METRICS = len(METRIC_FIELDS)


class Grain(StrEnum):
    """The grains the proxy really serves; there is no joint user x model grain."""

    TOTAL = "total"  # the whole proxy, per day (entity_id "")
    USER = "user"  # breakdown.entities of the user route ("Unassigned" = keys without a user)
    MODEL = "model"  # breakdown.models (model as logged, e.g. "openai/gpt-4o-mini")
    MODEL_GROUP = "model_group"  # breakdown.model_groups (the public model name)
    PROVIDER = "provider"  # breakdown.providers
    ENDPOINT = "endpoint"  # breakdown.endpoints ("/chat/completions", ...)
    KEY = "key"  # breakdown.api_keys (hashed token)
    MODEL_KEY = "model_key"  # breakdown.models[m].api_key_breakdown (entity=model, detail=key)
    TEAM = "team"  # breakdown.entities of the team route ("Unassigned": keys without a team, if recorded)


USER_ROUTE_GRAINS: tuple[Grain, ...] = (
    Grain.TOTAL,
    Grain.USER,
    Grain.MODEL,
    Grain.MODEL_GROUP,
    Grain.PROVIDER,
    Grain.ENDPOINT,
    Grain.KEY,
    Grain.MODEL_KEY,
)
TEAM_ROUTE_GRAINS: tuple[Grain, ...] = (Grain.TEAM,)


@dataclass(frozen=True, slots=True)
class KeyRef:
    """What a daily-activity answer says about a hashed key (KeyMetadata)."""

    token: str
    alias: str | None
    user_id: str | None
    team_id: str | None


@dataclass(frozen=True, slots=True)
class FactRow:
    """One stored counter set: a source's spend at one grain, entity and UTC day."""

    date: date
    grain: Grain
    entity_id: str
    detail_id: str  # the key of a model x key fact; "" elsewhere
    metrics: tuple[float, ...]  # in METRIC_FIELDS order

    @property
    def spend(self) -> Money:
        return self.metrics[0]


@dataclass(frozen=True, slots=True)
class DailyActivity:
    """Everything one route said about a set of UTC days, already merged across pages."""

    dates: tuple[date, ...]  # every date asked for, including those with no rows
    facts: tuple[FactRow, ...]
    keys: tuple[KeyRef, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # entity id -> alias (users, teams)
    bytes_read: int = 0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class Budget:
    max_budget: Money | None
    soft_budget: Money | None
    spend: Money | None  # current-window counter, reset by the proxy each window
    budget_duration: str | None
    budget_reset_at: datetime | None  # the NEXT reset


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    alias: str | None
    role: str | None
    teams: tuple[str, ...]
    budget: Budget


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team_id: str
    alias: str | None
    members: tuple[str, ...]
    admins: tuple[str, ...]
    budget: Budget
    budget_limits: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    token: str
    alias: str | None
    user_id: str | None
    team_id: str | None
    blocked: bool
    budget: Budget
