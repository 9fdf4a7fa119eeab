"""Injected anomalies and labelled hard negatives, placed relative to the end of the range.

Each event is reported as ground truth (`InjectedEvent`) and turned into effects the generator applies:
actor effects scale whoever drives traffic, slot effects scale or switch on individual (key, model) slots.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from sentinel.simulator.catalog import OUTAGE_PROVIDER
from sentinel.simulator.entities import Roster

EventKind = Literal[
    "spike",
    "runaway",
    "model_switch",
    "provider_outage",
    "level_shift",
    "holiday",
    "month_end_peak",
    "volatile",
    "new_user",
]
# "total" (entity_id "") is used for the org-wide holiday, which belongs to no single entity.
EntityType = Literal["user", "key", "team", "provider", "model", "total"]
MONTH_END_FACTOR = 6.0


@dataclass(frozen=True)
class InjectedEvent:
    kind: EventKind
    is_anomaly: bool
    entity_type: EntityType
    entity_id: str
    start: date
    end: date  # inclusive
    description: str


@dataclass(frozen=True)
class ActorEffect:
    start: date
    end: date
    actors: tuple[int, ...] | None  # None: everybody
    factor: float
    force_active: bool = False  # a spike happens even on a day the user would have been idle


@dataclass(frozen=True)
class SlotEffect:
    start: date
    end: date
    slots: tuple[int, ...]
    factor: float
    mode: Literal["mul", "on", "rate"]  # rate: absolute requests/day, independent of the owner's activity
    fail_all: bool = False  # requests still arrive but every one fails (spend 0)


@dataclass
class Plan:
    events: list[InjectedEvent]
    actor_effects: list[ActorEffect]
    slot_effects: list[SlotEffect]


def _weekday_on_or_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def plan_events(roster: Roster, first: date, today: date, inject_anomalies: bool) -> Plan:
    plan = Plan([], [], [])
    users = roster.users  # users[0] is the admin; role positions are offset by one
    roles = roster.roles

    def user_id(role: str) -> str:
        return users[roles[role] + 1].user_id

    def add(event: InjectedEvent) -> bool:
        if event.start < first or event.start > today:
            return False  # a 10-day demo simply has fewer events
        plan.events.append(event)
        return True

    if inject_anomalies:
        _anomalies(plan, roster, today, add, user_id)
    holiday = _weekday_on_or_before(today - timedelta(days=40))
    if add(
        InjectedEvent(
            "holiday",
            False,
            "total",
            "",
            holiday,
            holiday,
            "Org-wide public holiday: everybody at ~20% of a normal weekday",
        )
    ):
        plan.actor_effects.append(ActorEffect(holiday, holiday, None, 0.2))
    if "batch" in roles:
        _month_ends(plan, first, today, user_id("batch"))
    if "volatile" in roles:
        add(
            InjectedEvent(
                "volatile",
                False,
                "user",
                user_id("volatile"),
                first,
                today,
                "Volatile user: heavy day-to-day swings are this user's normal",
            )
        )
    for position, actor_first in enumerate(roster.actors.first_day[: len(users) - 1]):
        if actor_first > first:
            end = min(actor_first + timedelta(days=2), today)
            add(
                InjectedEvent(
                    "new_user",
                    False,
                    "user",
                    users[position + 1].user_id,
                    actor_first,
                    end,
                    "New user's first days: no history to compare with",
                )
            )
    plan.events.sort(key=lambda e: (e.start, e.kind, e.entity_id))
    return plan


def _anomalies(
    plan: Plan, roster: Roster, today: date, add: Callable[[InjectedEvent], bool], user_id: Callable[[str], str]
) -> None:
    roles = roster.roles
    if "spike" in roles:
        day = _weekday_on_or_before(today - timedelta(days=5))
        if add(
            InjectedEvent(
                "spike", True, "user", user_id("spike"), day, day, "One-day spike: the user's traffic is ~8x normal"
            )
        ):
            # actors are created in user order (admin excluded), so a user's position is its actor index
            plan.actor_effects.append(ActorEffect(day, day, (roles["spike"],), 8.0, True))
    if "runaway_slot" in roles:
        start = today - timedelta(days=4)
        token = roster.keys[roles["runaway_key"]].token
        if add(
            InjectedEvent(
                "runaway",
                True,
                "key",
                token,
                start,
                today - timedelta(days=1),
                "Runaway key: an agent loop ramps its requests up over four days",
            )
        ):
            for step, rate in enumerate((60.0, 160.0, 420.0, 1000.0)):
                day = start + timedelta(days=step)
                plan.slot_effects.append(SlotEffect(day, day, (roles["runaway_slot"],), rate, "rate"))
    if roster.switch_slots is not None:
        start = today - timedelta(days=12)
        cheap, pricey = roster.switch_slots
        if add(
            InjectedEvent(
                "model_switch",
                True,
                "user",
                user_id("switch"),
                start,
                today,
                "Model switch: same token volume moved from gpt-4o-mini to gpt-4o (~16x price)",
            )
        ):
            plan.slot_effects.append(SlotEffect(start, date.max, (cheap,), 0.0, "mul"))
            plan.slot_effects.append(SlotEffect(start, date.max, (pricey,), 1.0, "on"))
    if roster.outage_slots:
        start = today - timedelta(days=20)
        end = start + timedelta(days=1)
        if add(
            InjectedEvent(
                "provider_outage",
                True,
                "provider",
                OUTAGE_PROVIDER,
                start,
                end,
                "Provider outage: azure fails for two days; 90% of its traffic falls back to openai/gpt-4o",
            )
        ):
            azure = tuple(a for a, _ in roster.outage_slots)
            fallback = tuple(b for _, b in roster.outage_slots)
            plan.slot_effects.append(SlotEffect(start, end, azure, 0.1, "mul", fail_all=True))
            plan.slot_effects.append(SlotEffect(start, end, fallback, 0.9, "on"))
    start = today - timedelta(days=25)
    team = roster.teams[0]
    if add(
        InjectedEvent(
            "level_shift",
            True,
            "team",
            team.team_id,
            start,
            today,
            f"Level shift: {team.team_alias} spends ~60% more from this day on",
        )
    ):
        slots = tuple(s for s, k in enumerate(roster.slots.key) if roster.key_team[k] == 0)
        plan.slot_effects.append(SlotEffect(start, date.max, slots, 1.6, "mul"))


def _month_ends(plan: Plan, first: date, today: date, user: str) -> None:
    year, month = first.year, first.month
    while date(year, month, 1) <= today:
        last = date(year, month, calendar.monthrange(year, month)[1])
        start, end = max(last - timedelta(days=1), first), min(last, today)
        if start <= end:
            plan.events.append(
                InjectedEvent(
                    "month_end_peak",
                    False,
                    "user",
                    user,
                    start,
                    end,
                    "Batch user: month-end reporting run, expected every month",
                )
            )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def is_month_end(day: date) -> bool:
    return day.day >= calendar.monthrange(day.year, day.month)[1] - 1
