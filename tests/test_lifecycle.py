"""Firing → resolved (``notify.lifecycle.advance``): what one evaluation's findings do to the known
alerts. Pure; every case names the known state, what was found, ``now`` and the unevaluated rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from sentinel.notify.lifecycle import Transition, advance, human_duration
from sentinel.notify.model import Alert

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
H = timedelta(hours=1)


def anomaly(name: str, starts_at: datetime, *, last_seen: str = "2026-03-09", total: float = 180.0) -> Alert:
    return Alert(
        fingerprint=f"fp-{name}",
        status="firing",
        rule="user-spend-spike",
        severity="warning",
        summary=f"user {name} spent $95.00 on 2026-03-09 vs $12.00 expected",
        labels={"rule": "user-spend-spike", "kind": "anomaly", "entity_id": name},
        starts_at=starts_at,
        record={
            "kind": "anomaly",
            "impact_usd": 83.0,
            "episode": {"onset": "2026-03-08", "last_seen": last_seen, "total_impact_usd": total},
        },
    )


def threshold(name: str, starts_at: datetime, over: float = 40.0) -> Alert:
    return Alert(
        fingerprint=f"fp-{name}",
        status="firing",
        rule="team-monthly-cap",
        severity="critical",
        summary=f"team {name} spent $1,040.00 this month, over its $1,000.00 limit",
        labels={"rule": "team-monthly-cap", "kind": "threshold", "entity_id": name},
        starts_at=starts_at,
        record={"kind": "threshold", "limit_usd": 1000.0, "spent_usd": 1000.0 + over, "over_usd": over},
    )


def budget(name: str, starts_at: datetime, expires_at: datetime) -> Alert:
    return Alert(
        fingerprint=f"fp-{name}",
        status="firing",
        rule="user-budget",
        severity="warning",
        summary=f"user {name} used 80% of the monthly budget",
        labels={"rule": "user-budget", "kind": "budget", "entity_id": name},
        starts_at=starts_at,
        record={"kind": "budget", "pct_used": 80.0},
        one_shot=True,
        expires_at=expires_at,
    )


def resolved_copy(alert: Alert, ends_at: datetime) -> Alert:
    return replace(alert, status="resolved", ends_at=ends_at)


Row = tuple[str, str, datetime, datetime | None]  # fingerprint, status, starts_at, ends_at


def rows(alerts: list[Alert]) -> list[Row]:
    return [(a.fingerprint, a.status, a.starts_at, a.ends_at) for a in alerts]


@dataclass(frozen=True)
class Case:
    known: list[Alert]
    found: list[Alert]
    now: datetime
    unevaluated: tuple[str, ...]
    save: list[Row]
    notify: list[tuple[str, str]]  # fingerprint, status


SPIKE_ONSET = datetime(2026, 3, 8, tzinfo=UTC)
CAP_START = NOW - 2 * H
MONTH_END = datetime(2026, 4, 1, tzinfo=UTC)

CASES = {
    "a new alert fires and keeps its own starts_at": Case(
        known=[],
        found=[anomaly("alice", SPIKE_ONSET)],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "firing", SPIKE_ONSET, None)],
        notify=[("fp-alice", "firing")],
    ),
    "a new alert whose onset lies ahead of now starts now": Case(
        known=[],
        found=[threshold("search", NOW + H)],
        now=NOW,
        unevaluated=(),
        save=[("fp-search", "firing", NOW, None)],
        notify=[("fp-search", "firing")],
    ),
    "a still-firing alert keeps the stored starts_at when the finding's onset moved": Case(
        known=[anomaly("alice", SPIKE_ONSET)],
        found=[anomaly("alice", SPIKE_ONSET + DAY)],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "firing", SPIKE_ONSET, None)],
        notify=[("fp-alice", "firing")],
    ),
    "an anomaly no longer found resolves the day after it was last flagged": Case(
        known=[anomaly("alice", SPIKE_ONSET, last_seen="2026-03-09")],
        found=[],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "resolved", SPIKE_ONSET, datetime(2026, 3, 10, tzinfo=UTC))],
        notify=[("fp-alice", "resolved")],
    ),
    "an anomaly flagged today and gone already ends now, not tomorrow": Case(
        known=[anomaly("alice", SPIKE_ONSET, last_seen="2026-03-10")],
        found=[],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "resolved", SPIKE_ONSET, NOW)],
        notify=[("fp-alice", "resolved")],
    ),
    "a threshold alert no longer found ends now": Case(
        known=[threshold("search", CAP_START)],
        found=[],
        now=NOW,
        unevaluated=(),
        save=[("fp-search", "resolved", CAP_START, NOW)],
        notify=[("fp-search", "resolved")],
    ),
    "an alert of a rule that failed to evaluate is left alone": Case(
        known=[anomaly("alice", SPIKE_ONSET), threshold("search", CAP_START)],
        found=[],
        now=NOW,
        unevaluated=("user-spend-spike",),
        save=[("fp-search", "resolved", CAP_START, NOW)],
        notify=[("fp-search", "resolved")],
    ),
    "an alert already resolved and not found stays as it is": Case(
        known=[resolved_copy(anomaly("alice", SPIKE_ONSET), NOW - DAY)],
        found=[],
        now=NOW,
        unevaluated=(),
        save=[],
        notify=[],
    ),
    "a resolved alert found again starts a new episode at its new onset": Case(
        known=[resolved_copy(threshold("search", NOW - 10 * DAY), NOW - 9 * DAY)],
        found=[threshold("search", NOW - H)],
        now=NOW,
        unevaluated=(),
        save=[("fp-search", "firing", NOW - H, None)],
        notify=[("fp-search", "firing")],
    ),
    # Late data re-flags the day after the episode ended: detection reports the old onset again.
    "a resolved alert found again with its old onset starts a new episode where the old one ended": Case(
        known=[resolved_copy(anomaly("alice", SPIKE_ONSET), datetime(2026, 3, 10, tzinfo=UTC))],
        found=[anomaly("alice", SPIKE_ONSET, last_seen="2026-03-10")],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "firing", datetime(2026, 3, 10, tzinfo=UTC), None)],
        notify=[("fp-alice", "firing")],
    ),
    "duplicates in one evaluation collapse to the first": Case(
        known=[],
        found=[anomaly("alice", SPIKE_ONSET), anomaly("alice", SPIKE_ONSET + DAY), threshold("search", CAP_START)],
        now=NOW,
        unevaluated=(),
        save=[("fp-alice", "firing", SPIKE_ONSET, None), ("fp-search", "firing", CAP_START, None)],
        notify=[("fp-alice", "firing"), ("fp-search", "firing")],
    ),
    "a new one-shot alert is notified once": Case(
        known=[],
        found=[budget("bob", NOW - H, MONTH_END)],
        now=NOW,
        unevaluated=(),
        save=[("fp-bob", "firing", NOW - H, None)],
        notify=[("fp-bob", "firing")],
    ),
    "a one-shot alert found again is not saved again; still active, it goes to planning": Case(
        known=[budget("bob", NOW - DAY, MONTH_END)],
        found=[budget("bob", NOW - H, MONTH_END)],
        now=NOW,
        unevaluated=(),
        save=[],
        notify=[("fp-bob", "firing")],
    ),
    "a one-shot alert not found stays active (and planned) until its window ends": Case(
        known=[budget("bob", NOW - DAY, MONTH_END)],
        found=[],
        now=MONTH_END - timedelta(seconds=1),
        unevaluated=(),
        save=[],
        notify=[("fp-bob", "firing")],
    ),
    "a one-shot alert ends quietly at expires_at": Case(
        known=[budget("bob", NOW - DAY, MONTH_END)],
        found=[],
        now=MONTH_END,
        unevaluated=(),
        save=[("fp-bob", "resolved", NOW - DAY, MONTH_END)],
        notify=[],
    ),
    "a one-shot alert checked late still ends at expires_at, quietly": Case(
        known=[budget("bob", NOW - DAY, MONTH_END)],
        found=[],
        now=MONTH_END + 3 * DAY,
        unevaluated=(),
        save=[("fp-bob", "resolved", NOW - DAY, MONTH_END)],
        notify=[],
    ),
    "a one-shot alert of an unevaluated budget rule does not expire this cycle": Case(
        known=[budget("bob", NOW - DAY, MONTH_END)],
        found=[],
        now=MONTH_END + H,
        unevaluated=("user-budget",),
        save=[],
        notify=[],
    ),
    "a resolved one-shot alert found again is not notified again": Case(
        known=[resolved_copy(budget("bob", NOW - DAY, MONTH_END), MONTH_END)],
        found=[budget("bob", NOW - DAY, MONTH_END)],
        now=MONTH_END + H,
        unevaluated=(),
        save=[],
        notify=[],
    ),
}


def _known(alerts: list[Alert]) -> Mapping[str, Alert]:
    return {a.fingerprint: a for a in alerts}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_advance(case: Case) -> None:
    step = advance(case.found, _known(case.known), case.now, case.unevaluated)
    assert sorted(rows(step.save)) == sorted(case.save)
    assert sorted((a.fingerprint, a.status) for a in step.notify) == sorted(case.notify)
    # Whatever is notified is saved in the same state, or is stored unchanged already: the outbox never
    # runs ahead of the alerts table.
    stored = {**_known(case.known), **{a.fingerprint: a for a in step.save}}
    assert all(stored[a.fingerprint] == a for a in step.notify)


@pytest.mark.parametrize(
    ("before", "now", "ended_at", "duration_s", "duration", "impact"),
    [
        # Flagged on the 8th and 9th: ended at midnight after the 9th, two days, the episode's total impact.
        (anomaly("alice", SPIKE_ONSET, total=180.5), NOW, "2026-03-10T00:00:00+00:00", 2 * 86400, "2.0 days", 180.5),
        # Flagged today: it ends now (12:00), not at tomorrow's midnight.
        (
            anomaly("alice", SPIKE_ONSET, last_seen="2026-03-10"),
            NOW,
            NOW.isoformat(),
            2 * 86400 + 12 * 3600,
            "2.5 days",
            180.0,
        ),
        # A threshold alert: ended now, the amount over the limit is the impact.
        (threshold("search", NOW - 3 * H, over=40.25), NOW, NOW.isoformat(), 3 * 3600, "3 h", 40.25),
        # Neither: the record's own impact_usd; under an hour shows minutes.
        (
            replace(threshold("search", NOW - timedelta(minutes=20)), record={"kind": "absence", "impact_usd": 7}),
            NOW,
            NOW.isoformat(),
            1200,
            "20 min",
            7,
        ),
    ],
    ids=["anomaly-ended-yesterday", "anomaly-flagged-today", "threshold", "other-record"],
)
def test_resolution_says_when_it_ended_how_long_it_lasted_and_what_it_cost(
    before: Alert, now: datetime, ended_at: str, duration_s: int, duration: str, impact: float
) -> None:
    step: Transition = advance([], {before.fingerprint: before}, now)
    [ended] = step.notify
    assert ended.status == "resolved"
    assert ended.ends_at == datetime.fromisoformat(ended_at)
    assert ended.record["resolution"] == {
        "ended_at": ended_at,
        "duration_s": duration_s,
        "duration": duration,
        "impact_usd": impact,
    }
    assert ended.summary.startswith(f"resolved after {duration}, ${impact:+,.2f} vs expected in all: ")
    assert ended.summary.endswith(before.summary)
    # The rest of the record is kept as it was, and the original is not modified.
    assert {k: v for k, v in ended.record.items() if k != "resolution"} == dict(before.record)
    assert "resolution" not in before.record


def test_an_alert_resolves_once_and_a_later_cycle_does_not_resolve_it_again() -> None:
    alice = anomaly("alice", SPIKE_ONSET)
    first = advance([alice], {}, NOW - DAY)
    known = {a.fingerprint: a for a in first.save}
    second = advance([], known, NOW)
    assert [(a.fingerprint, a.status) for a in second.notify] == [("fp-alice", "resolved")]
    known.update({a.fingerprint: a for a in second.save})
    third = advance([], known, NOW + H)
    assert third.save == [] and third.notify == []


def test_a_cycle_that_resolves_and_a_cycle_that_finds_it_again_give_two_distinct_episodes() -> None:
    alice = anomaly("alice", SPIKE_ONSET)
    known = {a.fingerprint: a for a in advance([alice], {}, NOW - DAY).save}
    known.update({a.fingerprint: a for a in advance([], known, NOW).save})
    ended = known["fp-alice"]
    again = advance([alice], known, NOW + H)
    [revived] = again.notify
    assert revived.status == "firing" and revived.ends_at is None
    assert revived.starts_at != ended.starts_at  # plan and outbox tell episodes apart by starts_at
    assert ended.ends_at is not None and ended.ends_at <= revived.starts_at <= NOW + H


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "1 min"), (89, "1 min"), (3599, "60 min"), (3600, "1 h"), (2 * 86400 - 1, "48 h"), (2 * 86400, "2.0 days")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
