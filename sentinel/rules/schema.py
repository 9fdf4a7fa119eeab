"""The rule-file contract (``rules/*.toml``): typed, versioned, unknown keys rejected.

A file holds ``schema_version = 1`` and any number of ``[[budget]]`` tables.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel.budget.validate import check_thresholds, check_timezone
from sentinel.budget.windows import Period, parse_period

SCHEMA_VERSION = 1
BUDGET_ENTITIES = ("provider", "model", "team", "user", "key", "total")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Which entities a rule applies to; every given condition must hold. Empty: all of the kind."""

    ids: tuple[str, ...] = ()  # ids or aliases (a team "team-search", a user's email, a key alias)
    regex: str | None = None  # matched against the id and the alias
    team: str | None = None  # users and keys of this team (id or alias)

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

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")
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
    severity: Literal["info", "warning", "critical"] = "warning"
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


class RuleFile(_Strict):
    schema_version: Literal[1]
    budget: tuple[BudgetRule, ...] = ()
