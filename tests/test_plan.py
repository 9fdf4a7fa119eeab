"""Which notices to queue (``notify.plan.plan``): first firing, repeat, firing after a mute, resolved,
and when each may go (group_wait / group_interval). Pure; a real routing tree; an injected ``now``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from sentinel.config import RouteSettings
from sentinel.notify.model import Alert
from sentinel.notify.plan import Entry, LastNotice, plan
from sentinel.route.tree import build

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
STARTS = NOW - 2 * H
EPISODE = STARTS.isoformat()
OLD_EPISODE = (NOW - 3 * 24 * H).isoformat()

# ops takes everything (grouped by rule); the search team hears of its own alerts (grouped by rule and entity)
# and continues, so critical ones also page (faster, repeated hourly, no resolved notices). The last route
# sends search alerts to the search receiver a second time, in another group: it must not be queued twice.
ROUTE = build(
    RouteSettings(
        receiver="ops",
        group_by=("rule",),
        group_wait="30s",
        group_interval="5m",
        repeat_interval="4h",
        routes=(
            RouteSettings(
                matchers=('team="search"',), receiver="search", group_by=("rule", "entity_id"), continue_=True
            ),
            RouteSettings(
                matchers=('severity="critical"',),
                receiver="pager",
                group_wait="0s",
                repeat_interval="1h",
                continue_=True,
            ),
            RouteSettings(matchers=('team="search"',), receiver="search", group_by=("team",)),
        ),
    )
)
SEND_RESOLVED = {"ops": True, "search": True, "pager": False}


def alert(
    name: str = "alice", *, status: str = "firing", team: str = "ads", severity: str = "warning", one_shot: bool = False
) -> Alert:
    return Alert(
        fingerprint=f"fp-{name}",
        status=status,
        rule="user-spend-spike",
        severity=severity,
        summary=f"user {name} is spending",
        labels={"rule": "user-spend-spike", "severity": severity, "team": team, "entity_id": name},
        starts_at=STARTS,
        ends_at=NOW if status == "resolved" else None,
        one_shot=one_shot,
    )


def last(notice: str, state: str, age: timedelta, episode: str = EPISODE, told: bool | None = None) -> LastNotice:
    """The latest notice; by default the receiver was told of the episode when this one was sent or is on its way."""
    on_way = state in ("sent", "pending", "claimed") if told is None else told
    sent_at = NOW - age if state == "sent" else None
    return LastNotice(notice=notice, state=state, created_at=NOW - age, episode=episode, told=on_way, sent_at=sent_at)


@dataclass(frozen=True)
class Case:
    alert: Alert
    last: Mapping[str, LastNotice]  # receiver -> the last notice it was queued for this alert
    expect: Mapping[str, str]  # receiver -> notice queued (receivers queued nothing are left out)
    muted: str | None = None
    now: datetime = NOW


REPEAT = f"repeat@{NOW.isoformat()}"
REFIRE = f"firing@{NOW.isoformat()}"
CRIT_SEARCH = alert(team="search", severity="critical")
RESOLVED = alert(status="resolved")
RESOLVED_CRIT = alert(status="resolved", team="search", severity="critical")

CASES = {
    "first notice: firing": Case(alert(), {}, {"ops": "firing"}),
    "first notice to every receiver the alert routes to": Case(
        CRIT_SEARCH, {}, {"search": "firing", "pager": "firing"}
    ),
    "nothing while the last notice is pending": Case(alert(), {"ops": last("firing", "pending", 5 * H)}, {}),
    "nothing while the last notice is claimed": Case(alert(), {"ops": last("firing", "claimed", 5 * H)}, {}),
    "no repeat before repeat_interval": Case(alert(), {"ops": last("firing", "sent", 4 * H - S)}, {}),
    "repeat exactly at repeat_interval": Case(alert(), {"ops": last("firing", "sent", 4 * H)}, {"ops": REPEAT}),
    "repeat after repeat_interval": Case(alert(), {"ops": last("firing", "sent", 9 * H)}, {"ops": REPEAT}),
    "a repeat counts from the last repeat": Case(
        alert(), {"ops": last(f"repeat@{(NOW - 3 * H).isoformat()}", "sent", 3 * H)}, {}
    ),
    "a notice that failed for good is repeated after the interval": Case(
        alert(), {"ops": last("firing", "failed", 4 * H)}, {"ops": REPEAT}
    ),
    "each receiver has its own repeat_interval": Case(
        CRIT_SEARCH,
        {"search": last("firing", "sent", 1 * H), "pager": last("firing", "sent", 1 * H)},
        {"pager": REPEAT},
    ),
    "a one-shot alert never repeats": Case(alert(one_shot=True), {"ops": last("firing", "sent", 40 * H)}, {}),
    "no longer silenced: firing again": Case(alert(), {"ops": last("firing", "silenced", 10 * M)}, {"ops": REFIRE}),
    "no longer inhibited: firing again, before any repeat interval": Case(
        alert(), {"ops": last(REPEAT, "inhibited", 1 * M)}, {"ops": REFIRE}
    ),
    "still silenced: nothing": Case(alert(), {"ops": last("firing", "silenced", 10 * M)}, {}, muted="silenced"),
    "still inhibited: nothing": Case(alert(), {"ops": last("firing", "inhibited", 10 * M)}, {}, muted="inhibited"),
    "muted before any notice: nothing": Case(alert(), {}, {}, muted="silenced"),
    "a new episode fires again even right after the last one": Case(
        alert(), {"ops": last("resolved", "sent", 1 * M, episode=OLD_EPISODE)}, {"ops": "firing"}
    ),
    "resolved after a firing notice of the same episode": Case(
        RESOLVED, {"ops": last("firing", "sent", 1 * H)}, {"ops": "resolved"}
    ),
    "resolved after a repeat of the same episode": Case(
        RESOLVED, {"ops": last(REPEAT, "sent", 1 * M)}, {"ops": "resolved"}
    ),
    "resolved while the firing notice is still queued (delivery sends only the resolved one)": Case(
        RESOLVED, {"ops": last("firing", "pending", 10 * S)}, {"ops": "resolved"}
    ),
    "no resolved for an episode the receiver was never told of": Case(
        RESOLVED, {"ops": last("firing", "sent", 1 * H, episode=OLD_EPISODE)}, {}
    ),
    "no resolved without any firing notice": Case(RESOLVED, {}, {}),
    "no resolved when the firing notice was silenced": Case(RESOLVED, {"ops": last("firing", "silenced", 1 * H)}, {}),
    "resolved after a sent firing, even when the last repeat was silenced": Case(
        RESOLVED, {"ops": last(REPEAT, "silenced", 1 * M, told=True)}, {"ops": "resolved"}
    ),
    "no second resolved": Case(RESOLVED, {"ops": last("resolved", "sent", 1 * M)}, {}),
    "no resolved while silenced": Case(RESOLVED, {"ops": last("firing", "sent", 1 * H)}, {}, muted="silenced"),
    "no resolved to a receiver with send_resolved off": Case(
        RESOLVED_CRIT,
        {"search": last("firing", "sent", 1 * H), "pager": last("firing", "sent", 1 * H)},
        {"search": "resolved"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_which_notice(case: Case) -> None:
    entries = plan(
        [case.alert],
        ROUTE,
        last={(receiver, case.alert.fingerprint): notice for receiver, notice in case.last.items()},
        group_sent={},
        muted=lambda _a: case.muted,
        send_resolved=lambda name: SEND_RESOLVED[name],
        now=case.now,
    )
    assert {e.receiver: e.notice for e in entries} == dict(case.expect)
    assert len(entries) == len(case.expect)  # each receiver at most once
    assert all(e.alert is case.alert and e.episode == EPISODE for e in entries)


def test_muted_is_asked_about_the_alert_being_planned() -> None:
    asked: list[str] = []

    def muted(a: Alert) -> str | None:
        asked.append(a.fingerprint)
        return "silenced" if a.labels["entity_id"] == "bob" else None

    entries = plan(
        [alert("alice"), alert("bob")],
        ROUTE,
        last={},
        group_sent={},
        muted=muted,
        send_resolved=lambda _n: True,
        now=NOW,
    )
    assert [(e.receiver, e.alert.fingerprint) for e in entries] == [("ops", "fp-alice")]
    assert set(asked) == {"fp-alice", "fp-bob"}


@dataclass(frozen=True)
class Timing:
    alert: Alert
    group_sent: Mapping[str, timedelta]  # receiver -> how long ago its group was last sent
    not_before: Mapping[str, datetime]
    now: datetime = NOW


OPS_GROUP = 'route:{rule="user-spend-spike"}'
SEARCH_GROUP = 'route.routes[0]:{entity_id="alice",rule="user-spend-spike"}'
PAGER_GROUP = 'route.routes[1]:{rule="user-spend-spike"}'
GROUP_OF = {"ops": OPS_GROUP, "search": SEARCH_GROUP, "pager": PAGER_GROUP}

TIMINGS = {
    "a new group waits group_wait": Timing(alert(), {}, {"ops": NOW + 30 * S}),
    "group_wait is the route's own (0s for the pager)": Timing(CRIT_SEARCH, {}, {"search": NOW + 30 * S, "pager": NOW}),
    "a group sent a minute ago waits for the rest of group_interval": Timing(
        alert(), {"ops": 1 * M}, {"ops": NOW + 4 * M}
    ),
    "a group sent exactly group_interval ago goes now": Timing(alert(), {"ops": 5 * M}, {"ops": NOW}),
    "a group sent long ago goes now, not in the past": Timing(alert(), {"ops": 3 * H}, {"ops": NOW}),
    "each receiver's group keeps its own clock": Timing(
        CRIT_SEARCH, {"search": 2 * M}, {"search": NOW + 3 * M, "pager": NOW}
    ),
}


@pytest.mark.parametrize("case", TIMINGS.values(), ids=TIMINGS.keys())
def test_not_before(case: Timing) -> None:
    entries = plan(
        [case.alert],
        ROUTE,
        last={},
        group_sent={(receiver, GROUP_OF[receiver]): NOW - ago for receiver, ago in case.group_sent.items()},
        muted=lambda _a: None,
        send_resolved=lambda _n: True,
        now=case.now,
    )
    assert {e.receiver: e.not_before for e in entries} == dict(case.not_before)


def test_an_alert_routed_to_one_receiver_by_two_routes_is_queued_once_in_the_first_group() -> None:
    entries = plan(
        [alert(team="search")],
        ROUTE,
        last={},
        group_sent={},
        muted=lambda _a: None,
        send_resolved=lambda _n: True,
        now=NOW,
    )
    assert [(e.receiver, e.group_key) for e in entries] == [("search", SEARCH_GROUP)]


def test_continue_routes_queue_one_entry_per_receiver_with_their_group_labels() -> None:
    entries = plan(
        [CRIT_SEARCH],
        ROUTE,
        last={},
        group_sent={},
        muted=lambda _a: None,
        send_resolved=lambda _n: True,
        now=NOW,
    )
    assert [(e.receiver, e.group_key, dict(e.group_labels)) for e in entries] == [
        ("search", SEARCH_GROUP, {"rule": "user-spend-spike", "entity_id": "alice"}),
        ("pager", PAGER_GROUP, {"rule": "user-spend-spike"}),
    ]


@dataclass
class Outbox:
    """Just enough of an outbox to run plan cycle after cycle: the last notice per (receiver, alert)."""

    last: dict[tuple[str, str], LastNotice] = field(default_factory=dict)

    def cycle(self, alerts: list[Alert], now: datetime, state: str = "sent") -> list[Entry]:
        entries = plan(
            alerts,
            ROUTE,
            last=self.last,
            group_sent={},
            muted=lambda _a: None,
            send_resolved=lambda _n: True,
            now=now,
        )
        for e in entries:
            sent = now if state == "sent" else None
            self.last[(e.receiver, e.alert.fingerprint)] = LastNotice(e.notice, state, now, e.episode, True, sent)
        return entries


def test_fifteen_minute_cycles_give_one_firing_one_repeat_per_interval_and_one_resolved() -> None:
    box = Outbox()
    firing = alert()
    notices = []
    now = NOW
    for _ in range(4 * 10):  # ten hours of 15-minute cycles
        notices += [e.notice for e in box.cycle([firing], now)]
        now += 15 * M
    notices += [e.notice for e in box.cycle([replace(firing, status="resolved", ends_at=now)], now)]
    notices += [e.notice for e in box.cycle([replace(firing, status="resolved", ends_at=now)], now + 15 * M)]
    assert notices == [
        "firing",
        f"repeat@{(NOW + 4 * H).isoformat()}",
        f"repeat@{(NOW + 8 * H).isoformat()}",
        "resolved",
    ]
