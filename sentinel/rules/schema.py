"""The rule-file contract (``rules/*.toml``): typed, versioned, unknown keys rejected.

A file holds ``schema_version = 1`` and any number of ``[[anomaly]]``, ``[[budget]]``,
``[[threshold]]`` and ``[[absence]]`` tables. Every rule has a unique name, a severity and labels;
routing matches on those labels (and on the labels each alert carries: kind, entity_type, team ...).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.budget.validate import check_thresholds, check_timezone
from sentinel.budget.windows import Period, parse_period

SCHEMA_VERSION = 1
BUDGET_ENTITIES = ("provider", "model", "team", "user", "key", "total")
SPEND_ENTITIES = ("provider", "model", "team", "user", "key")
Severity = Literal["info", "warning", "critical"]


def _rule_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,80}", value):
        raise ValueError("use letters, digits and _ . : - only, at most 80 characters")
    return value


RuleName = Annotated[str, AfterValidator(_rule_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Which entities a rule applies to; every given condition must hold. Empty: all of the kind."""

    ids: tuple[str, ...] = ()  # ids or aliases (a team "team-search", a user's email, a key alias)
    regex: str | None = None  # matched against the id and the alias
    team: str | None = None  # users and keys of this team (id or alias)
    # What Sentinel knows about an entity: team (of a user or key; a team's own id), provider (of a
    # model or provider), user (a key's owner). {provider = "anthropic"} selects every Anthropic model.
    labels: dict[str, str] = {}

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - {"team", "provider", "user"})
        if unknown:
            raise ValueError(f"unknown entity label(s) {', '.join(unknown)}; known: provider, team, user")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class BudgetRule(_Strict):
    """A spending limit per period on each selected entity (or the whole proxy)."""

    name: RuleName
    description: str = ""
    entity: Literal["provider", "model", "team", "user", "key", "total"]
    select: Selector = Selector()
    amount_usd: float = Field(gt=0)
    soft_amount_usd: float | None = Field(default=None, gt=0)
    period: str = "month"  # day | week | month | <N>d
    anchor: date | None = None  # first day of an N-day period [default 2024-01-01]
    timezone: str = "UTC"
    thresholds: tuple[float, ...] | None = None  # percent; default from config [budgets]
    forecast_probability: float | None = Field(default=None, gt=0, lt=1)
    source: str | None = None  # only this source's activity [default: every source summed]
    # Unset: warning, and critical once the budget is spent. Set: that severity for every alert.
    severity: Severity | None = None
    labels: dict[str, str] = {}

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        parse_period(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return None if value is None else check_thresholds(value)

    @model_validator(mode="after")
    def _consistent(self) -> BudgetRule:
        if self.soft_amount_usd is not None and self.soft_amount_usd >= self.amount_usd:
            raise ValueError("soft_amount_usd must be below amount_usd")
        if self.entity == "total" and self.select != Selector():
            raise ValueError("a budget on the whole proxy (entity = 'total') takes no select")
        if self.select.team and self.entity not in ("user", "key"):
            raise ValueError("select.team applies to user and key budgets only")
        return self

    @property
    def parsed_period(self) -> Period:
        return parse_period(self.period, self.anchor)


class AnomalyRule(_Strict):
    """Spend far from its seasonal baseline, on the selected entities of the given kinds."""

    name: RuleName
    description: str = ""
    entities: tuple[Literal["provider", "model", "team", "user", "key"], ...]
    select: Selector = Selector()
    # How surprising a day must be: high sensitivity alerts on smaller surprises (more alerts).
    sensitivity: Literal["low", "medium", "high"] = "medium"
    min_usd: float | None = Field(default=None, ge=0)  # at least this many dollars from expected
    min_pct: float | None = Field(default=None, ge=0)  # ... and this many percent [default: per kind]
    direction: Literal["up", "down", "both"] = "up"
    for_days: int = Field(default=1, ge=1, le=30)  # flagged on this many days (today so far counts)
    source: str | None = None
    severity: Severity = "warning"
    labels: dict[str, str] = {}

    @field_validator("entities")
    @classmethod
    def _some(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one of provider, model, team, user, key")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyRule:
        if self.select.team and not set(self.entities) <= {"user", "key"}:
            raise ValueError("select.team applies to user and key entities only")
        return self


class ThresholdRule(_Strict):
    """A plain limit: spend of each selected entity in the current day, week or month above amount_usd."""

    name: RuleName
    description: str = ""
    entity: Literal["provider", "model", "team", "user", "key", "total"]
    select: Selector = Selector()
    amount_usd: float = Field(gt=0)
    period: Literal["day", "week", "month"] = "day"
    timezone: str = "UTC"
    source: str | None = None
    severity: Severity = "warning"
    labels: dict[str, str] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdRule:
        if self.entity == "total" and self.select != Selector():
            raise ValueError("a threshold on the whole proxy (entity = 'total') takes no select")
        if self.select.team and self.entity not in ("user", "key"):
            raise ValueError("select.team applies to user and key entities only")
        return self


class AbsenceRule(_Strict):
    """Something that should be there is not: a source that stopped answering (entity = "source"),
    or the spend of a steady provider, model, team, user or key that stopped."""

    name: RuleName
    description: str = ""
    entity: Literal["source", "provider", "model", "team", "user", "key"]
    select: Selector = Selector()
    # entity = "source": no successful poll for this long.
    for_: str = Field(default="1h", alias="for")
    # Spend entities: no spend on this many complete UTC days, after a usual day of at least
    # min_daily_usd (the mean of the 28 days before) on most days.
    for_days: int = Field(default=1, ge=1, le=30)
    min_daily_usd: float = Field(default=1.0, gt=0)
    source: str | None = None
    severity: Severity = "warning"
    labels: dict[str, str] = {}

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("for_")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(s|m|h|d)", value):
            raise ValueError(f"{value!r} is not a duration like 30m, 6h or 2d")
        return value


RULE_KINDS = ("anomaly", "budget", "threshold", "absence")
AnyRule = AnomalyRule | BudgetRule | ThresholdRule | AbsenceRule


class RuleFile(_Strict):
    schema_version: Literal[1]
    anomaly: tuple[AnomalyRule, ...] = ()
    budget: tuple[BudgetRule, ...] = ()
    threshold: tuple[ThresholdRule, ...] = ()
    absence: tuple[AbsenceRule, ...] = ()
