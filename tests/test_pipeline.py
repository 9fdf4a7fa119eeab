"""Delivery (``notify.pipeline.deliver``) on a real SQLite store, with outbox rows written by
``alerting.commit`` and in-process receivers that record what they are sent and answer from a script.
Every pass takes an injected ``now``; backoff jitter comes from a seeded ``random.Random``."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from alerthelp import alert

from sentinel.alerting import Evaluation, Routing, commit
from sentinel.config import DeliverySettings, InhibitSettings, RouteSettings
from sentinel.notify.model import Alert, DeliveryResult, Notification, Outcome
from sentinel.notify.pipeline import DeliveryReport, deliver, retry_delay
from sentinel.route.inhibit import build_rules
from sentinel.route.silences import new as new_silence
from sentinel.route.tree import build
from sentinel.store import open_store, outbox, transaction
from sentinel.store import silences as silence_store

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)

DELIVERY = DeliverySettings(retry_initial="10s", retry_max="2m", give_up_after="1h", lease="2m")
OK = DeliveryResult(Outcome.OK, "200 OK", 200)
DOWN = DeliveryResult(Outcome.RETRYABLE, "HTTP 503", 503)
BAD = DeliveryResult(Outcome.PERMANENT, "HTTP 400", 400)

Step = DeliveryResult | Exception


@dataclass
class Scripted:
    """A receiver: records each notification and answers with the next scripted result (then OK)."""

    name: str
    script: list[Step] = field(default_factory=list)
    always: Step = OK
    got: list[Notification] = field(default_factory=list)

    def send(self, notification: Notification) -> DeliveryResult:
        self.got.append(notification)
        step = self.script.pop(0) if self.script else self.always
        if isinstance(step, Exception):
            raise step
        return step

    def lines(self) -> list[list[tuple[str, str]]]:
        """Each message as its (entity, status) lines."""
        return [[(a.labels["entity_id"], a.status) for a in n.alerts] for n in self.got]


def routing(
    *,
    group_by: Sequence[str] = ("entity_id",),
    group_wait: str = "0s",
    routes: Sequence[RouteSettings] = (),
    inhibit: Sequence[InhibitSettings] = (),
    receiver: str = "a",
) -> Routing:
    tree = RouteSettings(
        receiver=receiver,
        group_by=tuple(group_by),
        group_wait=group_wait,
        group_interval="1m",
        repeat_interval="4h",
        routes=tuple(routes),
    )
    return Routing(build(tree), build_rules(inhibit), {})


def store(tmp_path: Path) -> sqlite_utils.Database:
    return open_store(tmp_path / "s.db")


def queue(db: sqlite_utils.Database, route: Routing, now: datetime, *alerts: Alert) -> int:
    """One evaluation that found ``alerts`` (and nothing else) at ``now``: returns the rows queued."""
    return commit(db, Evaluation(), route, now, extra=list(alerts)).queued


def run(
    db: sqlite_utils.Database, receivers: Sequence[Scripted], route: Routing, now: datetime, seed: int = 7
) -> DeliveryReport:
    return deliver(db, {r.name: r for r in receivers}, DELIVERY, route.inhibit, now, rng=random.Random(seed))


def states(db: sqlite_utils.Database, receiver: str = "a") -> list[tuple[str, str, str]]:
    """(entity, status as queued, state) of a receiver's rows, in queue order."""
    out = []
    for text, state in db.conn.execute("SELECT alert, state FROM outbox WHERE receiver = ? ORDER BY id", (receiver,)):
        queued = json.loads(text)
        out.append((queued["labels"]["entity_id"], queued["status"], state))
    return out


def attempts(db: sqlite_utils.Database, receiver: str = "a") -> list[tuple[str, str]]:
    return [
        (outcome, detail)
        for outcome, detail in db.conn.execute(
            "SELECT outcome, detail FROM delivery_attempts WHERE receiver = ? ORDER BY id", (receiver,)
        )
    ]


# ------------------------------------------------------------------------------------------------ grouping
@pytest.mark.parametrize("wait", [timedelta(0), 30 * S, 10 * M], ids=["0s", "30s", "10m"])
def test_group_wait_holds_rows_until_not_before_then_each_group_goes_in_one_message(
    tmp_path: Path, wait: timedelta
) -> None:
    db = store(tmp_path)
    route = routing(group_by=("rule",), group_wait=f"{int(wait.total_seconds())}s")
    a = Scripted("a")
    assert queue(db, route, T0, alert("u1", T0), alert("u2", T0), alert("u3", T0, rule="other")) == 3
    if wait:
        report = run(db, [a], route, T0 + wait - S)
        assert a.got == [] and report.sent == 0
        assert outbox.depth(db) == {"pending": 3}
    report = run(db, [a], route, T0 + wait)
    assert sorted(sorted(lines) for lines in a.lines()) == [
        [("u1", "firing"), ("u2", "firing")],
        [("u3", "firing")],
    ]
    assert (report.sent, report.alerts_sent) == (2, 3)
    assert outbox.depth(db) == {"sent": 3}
    assert {n.group_key for n in a.got} == {'route:{rule="made-up"}', 'route:{rule="other"}'}
    assert outbox.group_sent(db) == {("a", n.group_key): T0 + wait for n in a.got}


def test_a_group_already_sent_waits_group_interval_before_its_next_message(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing(group_by=("rule",), group_wait="30s")
    a = Scripted("a")
    queue(db, route, T0, alert("u1", T0))
    run(db, [a], route, T0 + 30 * S)
    # Ten seconds after the group went out a second alert joins it: it waits for the group interval (1m).
    queue(db, route, T0 + 40 * S, alert("u1", T0), alert("u2", T0 + 40 * S))
    run(db, [a], route, T0 + 90 * S - S)
    assert a.lines() == [[("u1", "firing")]]
    run(db, [a], route, T0 + 90 * S)
    assert a.lines() == [[("u1", "firing")], [("u2", "firing")]]


# ------------------------------------------------------------------------------------------------ retries
def two_receivers() -> Routing:
    """Every alert goes to a (grouped per entity) and to b."""
    return routing(
        routes=(
            RouteSettings(matchers=('entity_id=~".+"',), receiver="a", continue_=True),
            RouteSettings(matchers=('entity_id=~".+"',), receiver="b"),
        )
    )


def test_a_retryable_failure_backs_the_receiver_off_keeps_its_order_and_does_not_delay_others(
    tmp_path: Path,
) -> None:
    db = store(tmp_path)
    route = two_receivers()
    a, b = Scripted("a", [DOWN]), Scripted("b")
    queue(db, route, T0, alert("u1", T0), alert("u2", T0), alert("u3", T0))

    report = run(db, [a, b], route, T0)
    assert a.lines() == [[("u1", "firing")]]  # one try, the oldest group; the rest wait behind it
    assert b.lines() == [[("u1", "firing")], [("u2", "firing")], [("u3", "firing")]]
    assert (report.sent, report.retried) == (3, 1)
    assert states(db, "a") == [("u1", "firing", "pending"), ("u2", "firing", "pending"), ("u3", "firing", "pending")]
    failures, retry_at = outbox.backoff(db, "a")
    assert failures == 1 and retry_at is not None
    assert 8 * S <= retry_at - T0 <= 12 * S  # retry_initial 10s, jitter ±20 %
    assert outbox.backoff(db, "b") == (0, None)

    run(db, [a, b], route, retry_at - S)
    assert len(a.got) == 1

    report = run(db, [a, b], route, retry_at)
    assert [lines[0][0] for lines in a.lines()] == ["u1", "u1", "u2", "u3"]
    assert report.sent == 3
    assert outbox.depth(db) == {"sent": 6}
    assert outbox.backoff(db, "a") == (0, None)  # a success clears the backoff
    assert [outcome for outcome, _ in attempts(db, "a")] == ["retryable", "ok", "ok", "ok"]
    assert len(b.got) == 3


@pytest.mark.parametrize(
    ("hint", "low", "high"),
    [
        (None, 8 * S, 12 * S),
        (3.0, 8 * S, 12 * S),  # a hint shorter than our own backoff does not shorten it
        (300.0, 300 * S, 300 * S),  # Retry-After: 300 is honoured, even beyond retry_max
    ],
    ids=["no-hint", "short-hint", "long-hint"],
)
def test_the_receivers_retry_after_hint_is_a_minimum(
    tmp_path: Path, hint: float | None, low: timedelta, high: timedelta
) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a", [replace(DOWN, status=429, detail="HTTP 429", retry_after_s=hint)])
    queue(db, route, T0, alert("u1", T0))
    run(db, [a], route, T0)
    _, retry_at = outbox.backoff(db, "a")
    assert retry_at is not None and low <= retry_at - T0 <= high
    run(db, [a], route, retry_at - S)
    assert len(a.got) == 1
    run(db, [a], route, retry_at)
    assert len(a.got) == 2 and outbox.depth(db) == {"sent": 1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backoff_grows_exponentially_up_to_retry_max(tmp_path: Path, seed: int) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a", always=DOWN)
    queue(db, route, T0, alert("u1", T0))
    now = T0
    delays = []
    for failure in range(1, 8):
        run(db, [a], route, now, seed=seed * 100 + failure)
        failures, retry_at = outbox.backoff(db, "a")
        assert failures == failure and retry_at is not None
        delays.append((retry_at - now).total_seconds())
        now = retry_at
    assert len(a.got) == 7
    for failure, delay in enumerate(delays, start=1):
        base = min(120.0, 10.0 * 2 ** (failure - 1))  # 10, 20, 40, 80, then retry_max (2m)
        assert 0.8 * base <= delay <= base, (failure, delays)
    assert outbox.depth(db) == {"pending": 1}


@pytest.mark.parametrize(
    ("failures", "base"),
    [(0, 10.0), (1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0), (5, 120.0), (30, 120.0)],
)
def test_retry_delay(failures: int, base: float) -> None:
    rng = random.Random(failures)
    seen = [retry_delay(failures, DELIVERY, None, rng).total_seconds() for _ in range(200)]
    assert all(0.8 * base <= s <= base for s in seen)  # never above retry_max
    assert max(seen) - min(seen) > 0.1 * base  # jittered, so receivers that failed together do not retry together


def test_rows_older_than_give_up_after_are_marked_failed_and_newer_ones_keep_waiting(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing(group_by=("rule",))
    a = Scripted("a", always=DOWN)
    queue(db, route, T0, alert("u1", T0))
    run(db, [a], route, T0)
    report = run(db, [a], route, T0 + H - S)  # 59m59s old: still worth trying
    assert report.failed == 0 and states(db) == [("u1", "firing", "pending")]
    queue(db, route, T0 + 90 * M, alert("u1", T0), alert("u2", T0 + 90 * M))
    report = run(db, [a], route, T0 + 2 * H)
    assert report.failed == 1
    assert a.lines()[-1] == [("u1", "firing"), ("u2", "firing")]
    assert states(db) == [("u1", "firing", "failed"), ("u2", "firing", "pending")]
    [error] = [e for (e,) in db.conn.execute("SELECT last_error FROM outbox WHERE state = 'failed'")]
    assert error == "gave up after 1h: HTTP 503"
    # Once the receiver is back, the newer row goes out alone; the one given up on stays failed.
    a.always = OK
    _, retry_at = outbox.backoff(db, "a")
    assert retry_at is not None
    run(db, [a], route, retry_at)
    assert a.lines()[-1] == [("u2", "firing")]
    assert states(db) == [("u1", "firing", "failed"), ("u2", "firing", "sent")]


def test_a_permanent_failure_marks_its_rows_failed_and_the_next_group_still_goes(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a", [BAD])
    queue(db, route, T0, alert("u1", T0), alert("u2", T0))
    report = run(db, [a], route, T0)
    assert a.lines() == [[("u1", "firing")], [("u2", "firing")]]
    assert states(db) == [("u1", "firing", "failed"), ("u2", "firing", "sent")]
    assert (report.failed, report.sent, report.retried) == (1, 1, 0)
    assert report.errors == ["receiver 'a': HTTP 400 (permanent; not retried)"]
    assert outbox.backoff(db, "a") == (0, None)
    assert [outcome for outcome, _ in attempts(db)] == ["permanent", "ok"]
    run(db, [a], route, T0 + H)
    assert len(a.got) == 2  # not retried


def test_a_receiver_that_raises_is_treated_as_retryable(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a", [RuntimeError("socket closed")])
    queue(db, route, T0, alert("u1", T0))
    report = run(db, [a], route, T0)
    assert report.retried == 1 and report.errors == []
    assert states(db) == [("u1", "firing", "pending")]
    assert attempts(db) == [("retryable", "receiver raised RuntimeError")]
    failures, retry_at = outbox.backoff(db, "a")
    assert failures == 1 and retry_at is not None and retry_at > T0
    run(db, [a], route, retry_at)
    assert states(db) == [("u1", "firing", "sent")]


def test_rows_for_a_receiver_missing_from_the_map_stay_pending_and_the_report_names_it(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing(routes=(RouteSettings(matchers=('entity_id="u2"',), receiver="ghost"),))
    a = Scripted("a")
    queue(db, route, T0, alert("u1", T0), alert("u2", T0))
    report = run(db, [a], route, T0)
    assert report.errors == ["receiver 'ghost' is not configured; its notices stay queued"]
    assert a.lines() == [[("u1", "firing")]]
    assert states(db, "ghost") == [("u2", "firing", "pending")]
    # Configured later, it gets what waited for it.
    ghost = Scripted("ghost")
    run(db, [a, ghost], route, T0 + M)
    assert ghost.lines() == [[("u2", "firing")]]


# ------------------------------------------------------------------------------------------------ leases
@pytest.mark.parametrize(
    ("after", "sent"),
    [(timedelta(0), False), (119 * S, False), (2 * M + S, True), (3 * H, True)],
    ids=["at-claim", "before-lease-ends", "just-after-lease", "long-after"],
)
def test_a_claim_whose_worker_died_is_claimed_again_after_the_lease_not_before(
    tmp_path: Path, after: timedelta, sent: bool
) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a")
    queue(db, route, T0, alert("u1", T0))
    ids = [rid for (rid,) in db.conn.execute("SELECT id FROM outbox")]
    with transaction(db):  # a worker claims the row at T0 and dies before it records anything
        assert outbox.claim(db, ids, T0 + 2 * M) == ids
    report = run(db, [a], route, T0 + after)
    assert (len(a.got), report.sent) == ((1, 1) if sent else (0, 0))
    assert states(db) == [("u1", "firing", "sent" if sent else "claimed")]
    attempts_col = db.conn.execute("SELECT attempts FROM outbox").fetchone()[0]
    assert attempts_col == (2 if sent else 1)


# ------------------------------------------------------------------------------------------------ mutes
@pytest.mark.parametrize(
    ("matcher", "starts", "ends", "muted"),
    [
        ('entity_id="u1"', 10 * S, H, True),
        ('entity_id="u1"', 10 * S, 20 * S, False),  # over before delivery
        ('entity_id="u1"', 40 * S, H, False),  # not yet active at delivery
        ('entity_id="u9"', 10 * S, H, False),  # someone else
    ],
    ids=["active", "expired", "pending", "other-alert"],
)
def test_a_silence_added_after_queueing_mutes_at_delivery(
    tmp_path: Path, matcher: str, starts: timedelta, ends: timedelta, muted: bool
) -> None:
    db = store(tmp_path)
    route = routing(group_by=("rule",), group_wait="30s")
    a = Scripted("a")
    queue(db, route, T0, alert("u1", T0), alert("u2", T0))
    added = T0 + 5 * S
    silence_store.add(db, new_silence([matcher], "ana", "maintenance", T0 + starts, T0 + ends, added))
    report = run(db, [a], route, T0 + 30 * S)
    if muted:
        assert a.lines() == [[("u2", "firing")]]
        assert states(db) == [("u1", "firing", "silenced"), ("u2", "firing", "sent")]
        assert [o for o, _ in attempts(db)] == ["silenced", "ok"]
        assert report.muted == 1
    else:
        assert a.lines() == [[("u1", "firing"), ("u2", "firing")]]
        assert states(db) == [("u1", "firing", "sent"), ("u2", "firing", "sent")]
        assert report.muted == 0


INHIBIT = (
    InhibitSettings(
        source_matchers=('kind="budget"', 'exhausted="true"'),
        target_matchers=('kind="anomaly"',),
        equal=("entity_id",),
    ),
)


def test_an_inhibiting_alert_firing_at_delivery_mutes_a_queued_firing_notice(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing(group_wait="30s", inhibit=INHIBIT)
    a = Scripted("a")
    spike, other = alert("frank", T0), alert("gina", T0)
    queue(db, route, T0, spike, other)
    # Before the spike's notice goes out, frank's budget runs out: its alert fires (and is queued).
    cap = alert("frank", T0 + 10 * S, kind="budget", exhausted="true", rule="user-cap")
    queue(db, route, T0 + 10 * S, spike, other, cap)
    report = run(db, [a], route, T0 + 40 * S)
    assert sorted(a.lines()) == [[("frank", "firing")], [("gina", "firing")]]
    assert [n.alerts[0].rule for n in a.got if n.alerts[0].labels["entity_id"] == "frank"] == ["user-cap"]
    assert report.muted == 1
    assert ("inhibited", "") in attempts(db)
    rows = dict(db.conn.execute("SELECT fingerprint, state FROM outbox").fetchall())
    assert rows == {spike.fingerprint: "inhibited", other.fingerprint: "sent", cap.fingerprint: "sent"}


def test_an_inhibiting_alert_does_not_mute_a_resolved_notice(tmp_path: Path) -> None:
    db = store(tmp_path)
    route = routing(inhibit=INHIBIT)
    a = Scripted("a")
    spike = alert("frank", T0)
    queue(db, route, T0, spike)
    run(db, [a], route, T0)
    # The spike ends in the cycle in which frank's budget runs out: the resolved notice still closes it.
    cap = alert("frank", T0 + 10 * M, kind="budget", exhausted="true", rule="user-cap")
    queue(db, route, T0 + 10 * M, cap)
    report = run(db, [a], route, T0 + 10 * M)
    assert report.muted == 0
    got = sorted((line.rule, line.status) for n in a.got[1:] for line in n.alerts)
    assert got == [("made-up", "resolved"), ("user-cap", "firing")]
    assert outbox.depth(db) == {"sent": 3}


# ------------------------------------------------------------------------------------------------ lines
def test_a_firing_and_a_resolved_notice_of_one_alert_in_one_batch_go_out_as_the_resolved_line(
    tmp_path: Path,
) -> None:
    db = store(tmp_path)
    route = routing(group_by=("rule",), group_wait="1m")
    a = Scripted("a")
    queue(db, route, T0, alert("u1", T0), alert("u2", T0))
    queue(db, route, T0 + 10 * S, alert("u2", T0))  # u1 is over before its firing notice went out
    assert states(db) == [("u1", "firing", "pending"), ("u2", "firing", "pending"), ("u1", "resolved", "pending")]
    report = run(db, [a], route, T0 + 2 * M)
    assert a.lines() == [[("u2", "firing"), ("u1", "resolved")]]
    assert states(db) == [("u1", "firing", "sent"), ("u2", "firing", "sent"), ("u1", "resolved", "sent")]
    assert (report.sent, report.alerts_sent) == (1, 2)


# ------------------------------------------------------------------------------------------------ episodes
@pytest.mark.parametrize(
    ("onset_again", "second_episode"),
    [
        (T0 + 3 * H, T0 + 3 * H),
        # Late data re-flags the old days: the finding brings the first episode's onset back. The
        # second episode starts where the first one ended (when it was resolved, at T0 + 2h).
        (T0, T0 + 2 * H),
    ],
    ids=["new-onset", "same-onset"],
)
def test_a_condition_that_fires_again_after_it_resolved_is_notified_again(
    tmp_path: Path, onset_again: datetime, second_episode: datetime
) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a")
    u1 = alert("u1", T0)
    again = replace(u1, starts_at=onset_again)
    cycles = [
        (T0, [u1], 1),
        (T0 + 2 * H, [], 2),
        (T0 + 4 * H, [again], 3),
        (T0 + 4 * H + 15 * M, [again], 3),  # still firing: nothing new
        (T0 + 6 * H, [], 4),
        (T0 + 6 * H + 15 * M, [], 4),  # resolved stays resolved
    ]
    for now, found, messages in cycles:
        queue(db, route, now, *found)
        assert queue(db, route, now, *found) == 0  # the same cycle committed twice queues nothing twice
        run(db, [a], route, now)
        assert len(a.got) == messages, now
    assert a.lines() == [[("u1", "firing")], [("u1", "resolved")], [("u1", "firing")], [("u1", "resolved")]]
    assert [n.alerts[0].starts_at for n in a.got] == [T0, T0, second_episode, second_episode]
    assert outbox.depth(db) == {"sent": 4}


def test_the_resolved_notice_of_one_episode_and_the_firing_of_the_next_in_one_batch_both_go_out_in_order(
    tmp_path: Path,
) -> None:
    db = store(tmp_path)
    route = routing()
    a = Scripted("a", [OK, DOWN])
    u1 = alert("u1", T0)
    queue(db, route, T0, u1)
    run(db, [a], route, T0)
    queue(db, route, T0 + H)  # over: the resolved notice fails to go out
    run(db, [a], route, T0 + H)
    queue(db, route, T0 + 2 * H, replace(u1, starts_at=T0 + 2 * H))  # and back, before it was delivered
    report = run(db, [a], route, T0 + 2 * H)
    assert a.lines() == [[("u1", "firing")], [("u1", "resolved")], [("u1", "resolved"), ("u1", "firing")]]
    assert [line.starts_at for line in a.got[-1].alerts] == [T0, T0 + 2 * H]
    assert report.alerts_sent == 2 and outbox.depth(db) == {"sent": 3}
