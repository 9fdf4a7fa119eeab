"""One alerting cycle end to end, on a real SQLite file and a real HTTP receiver on 127.0.0.1,
with an injected clock: evaluate → lifecycle → route → outbox (one transaction) → deliver."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from alerthelp import alert, store_with_series, webhook_settings
from fakeslack import FakeSlack, Reply, slack_default

from sentinel.alerting import run_cycle
from sentinel.notify.receivers import build_all
from sentinel.route.silences import new as new_silence
from sentinel.rules.loader import RuleSet, load
from sentinel.store import alerts as alert_store
from sentinel.store import outbox
from sentinel.store import silences as silence_store

START = date(2026, 1, 5)  # a Monday
RULES = Path(__file__).resolve().parents[1] / "rules"
# Alice runs away on days 58 and 59 (2026-03-03, 03-04), then is back to normal.
SERIES = [
    {"entity": "user", "id": "alice@example.com", "team": "team-search", "values": "12x57 95 104 12x10"},
    {"entity": "user", "id": "bob@example.com", "team": "team-ads", "values": "20x69"},
]
RUNAWAY_EVENING = datetime(2026, 3, 4, 22, 0, tzinfo=UTC)


def _alerts_of(hook: FakeSlack) -> list[dict[str, object]]:
    return [a for r in hook.requests for a in r.json()["alerts"]]


def test_a_cycle_queues_and_delivers_each_alert_once_then_repeats_and_resolves(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES, START, START + timedelta(days=68))
    rules = load(RULES / "anomalies.toml")
    with FakeSlack() as hook:
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        first = run_cycle(db, settings, rules, receivers, RUNAWAY_EVENING)
        assert first.evaluation.errors == []
        assert first.delivery is not None and first.delivery.sent >= 1
        sent = _alerts_of(hook)
        fired = {(a["rule"], a["labels"]["entity_id"]) for a in sent}  # type: ignore[index]
        assert ("user-spend-spike", "alice@example.com") in fired
        assert ("search-team-sustained", "alice@example.com") in fired
        assert all(a["status"] == "firing" for a in sent)
        assert outbox.depth(db) == {"sent": len(sent)}

        # The next poll finds the same alerts: nothing new is sent.
        again = run_cycle(db, settings, rules, receivers, RUNAWAY_EVENING + timedelta(minutes=15))
        assert again.new == 0 and again.queued == 0 and len(_alerts_of(hook)) == len(sent)

        # After the repeat interval (4 h), a still-firing alert is sent again, once.
        later = RUNAWAY_EVENING + timedelta(hours=4, minutes=1)
        repeat = run_cycle(db, settings, rules, receivers, later)
        assert repeat.queued == len(sent)
        assert len(_alerts_of(hook)) == 2 * len(sent)
        run_cycle(db, settings, rules, receivers, later + timedelta(minutes=15))
        assert len(_alerts_of(hook)) == 2 * len(sent)

        # Days later the runaway is over: one resolved notice per alert, with duration and impact.
        done = run_cycle(db, settings, rules, receivers, datetime(2026, 3, 8, 22, 0, tzinfo=UTC))
        assert done.resolved == len(sent)
        resolved = [a for a in _alerts_of(hook) if a["status"] == "resolved"]
        assert len(resolved) == len(sent)
        spike = next(a for a in resolved if a["rule"] == "user-spend-spike")
        resolution = spike["record"]["resolution"]  # type: ignore[index]
        assert resolution["ended_at"] == "2026-03-05T00:00:00+00:00"
        assert resolution["duration"] == "2.0 days"
        assert resolution["impact_usd"] > 150  # two days of ~$90 over a $12 baseline
        assert alert_store.load(db, status="firing") == {}
        # Resolved stays resolved: nothing more goes out.
        run_cycle(db, settings, rules, receivers, datetime(2026, 3, 9, 22, 0, tzinfo=UTC))
        assert len([a for a in _alerts_of(hook) if a["status"] == "resolved"]) == len(sent)


def test_a_receiver_down_for_cycles_then_up_gets_every_alert_once_in_order(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES[1:], START, START + timedelta(days=60))
    with FakeSlack(lambda _seen: Reply(503, "down")) as hook:
        settings = webhook_settings(hook.url + "/hook", group_by=["entity_id"])
        receivers = build_all(settings.receivers, lambda _r: None)
        now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
        made = []
        for cycle in range(4):  # down for 4 cycles; a new alert appears in each
            made.append(alert(f"user-{cycle}", now))
            report = run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=made)
            assert report.delivery is not None and report.delivery.sent == 0
            now += timedelta(minutes=15)
        assert outbox.depth(db) == {"pending": 4}
        hook.respond = slack_default
        report = run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=made)
        assert report.delivery is not None and report.delivery.sent == 4
        delivered = [r.json()["alerts"][0]["labels"]["entity_id"] for r in hook.requests]
        assert delivered[-4:] == ["user-0", "user-1", "user-2", "user-3"]
        assert outbox.depth(db) == {"sent": 4}
        attempts = dict(db.conn.execute("SELECT outcome, COUNT(*) FROM delivery_attempts GROUP BY 1").fetchall())
        # While down, one try per cycle (the oldest group): the rest wait behind it, in order.
        assert attempts == {"retryable": 4, "ok": 4}
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(minutes=15), extra=made)
        assert outbox.depth(db) == {"sent": 4}


def test_a_permanent_failure_is_recorded_and_not_retried(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES[1:], START, START + timedelta(days=60))
    with FakeSlack() as hook:
        hook.then(400, "bad payload")
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
        report = run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=[alert("carol", now)])
        assert report.delivery is not None and report.delivery.failed == 1
        assert "HTTP 400" in report.delivery.errors[0]
        assert outbox.depth(db) == {"failed": 1}
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(minutes=15), extra=[alert("carol", now)])
        assert len(hook.requests) == 1


def test_a_silence_mutes_until_it_expires_then_the_alert_goes_out(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES[1:], START, START + timedelta(days=60))
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    silence = new_silence(['entity_id="dave"'], "ana", "load test", now, now + timedelta(hours=1), now)
    silence_store.add(db, silence)
    with FakeSlack() as hook:
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        both = [alert("dave", now), alert("erin", now)]
        run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=both)
        assert [a["labels"]["entity_id"] for a in _alerts_of(hook)] == ["erin"]  # type: ignore[index]
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(minutes=59), extra=both)
        assert len(_alerts_of(hook)) == 1
        # At ends_at the silence is over: dave's alert, still firing, goes out once.
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(hours=1), extra=both)
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(hours=1, minutes=15), extra=both)
        assert [a["labels"]["entity_id"] for a in _alerts_of(hook)] == ["erin", "dave"]  # type: ignore[index]


def test_an_exhausted_budget_inhibits_the_same_entitys_spend_anomaly(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES[1:], START, START + timedelta(days=60))
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    budget = alert("frank", now, kind="budget", exhausted="true", rule="user-cap")
    spike = alert("frank", now, kind="anomaly", direction="up", rule="user-spike")
    other = alert("gina", now, kind="anomaly", direction="up", rule="user-spike")
    with FakeSlack() as hook:
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=[budget, spike, other])
        got = sorted((a["rule"], a["labels"]["entity_id"]) for a in _alerts_of(hook))  # type: ignore[index]
        assert got == [("user-cap", "frank"), ("user-spike", "gina")]
        # Once the budget alert ends, the anomaly (still firing) is sent.
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(minutes=15), extra=[spike, other])
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(minutes=30), extra=[spike, other])
        assert ("user-spike", "frank") in {(a["rule"], a["labels"]["entity_id"]) for a in _alerts_of(hook)}  # type: ignore[index]


def test_no_receiver_configured_keeps_alerts_in_the_store_and_sends_nothing(tmp_path: Path) -> None:
    from sentinel.config import Settings

    db = store_with_series(tmp_path / "s.db", SERIES, START, START + timedelta(days=68))
    report = run_cycle(db, Settings(), load(RULES / "anomalies.toml"), {}, RUNAWAY_EVENING)
    assert report.new >= 2 and report.queued == 0
    assert {a.rule for a in alert_store.load(db, status="firing").values()} >= {"user-spend-spike"}
    assert outbox.depth(db) == {}


def test_a_budget_alert_muted_by_a_silence_goes_out_when_the_silence_ends(tmp_path: Path) -> None:
    db = store_with_series(tmp_path / "s.db", SERIES[1:], START, START + timedelta(days=60))
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    budget = replace(
        alert("hank", now, kind="budget", exhausted="false", rule="user-cap"),
        one_shot=True,
        expires_at=now + timedelta(days=10),
    )
    silence_store.add(db, new_silence(['rule="user-cap"'], "ana", "known", now, now + timedelta(hours=2), now))
    with FakeSlack() as hook:
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        run_cycle(db, settings, RuleSet.empty(), receivers, now, extra=[budget])
        # The budget signal fires once: later cycles do not find it again, yet it is still active.
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(hours=1))
        assert _alerts_of(hook) == []
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(hours=2))
        run_cycle(db, settings, RuleSet.empty(), receivers, now + timedelta(hours=9))  # no repeat for one-shots
        assert [(a["rule"], a["status"]) for a in _alerts_of(hook)] == [("user-cap", "firing")]


def test_the_memo_of_past_days_gives_the_same_alerts_and_is_dropped_when_a_day_changes(tmp_path: Path) -> None:
    from sentinel.alerting import evaluate
    from sentinel.config import Settings

    db = store_with_series(tmp_path / "s.db", SERIES, START, START + timedelta(days=68))
    db.conn.executemany(
        "INSERT INTO days (source, route, date, fetched_at, final, spend) VALUES ('test', 'user', ?, '', 1, 1.0)",
        [((START + timedelta(days=i)).isoformat(),) for i in range(69)],
    )
    rules = load(RULES / "anomalies.toml")
    plain = evaluate(db, Settings(), rules, RUNAWAY_EVENING)
    memo: dict[tuple[object, ...], list[dict[str, object]]] = {}
    first = evaluate(db, Settings(), rules, RUNAWAY_EVENING, memo=memo)
    again = evaluate(db, Settings(), rules, RUNAWAY_EVENING + timedelta(minutes=15), memo=memo)

    def found(e: object) -> list[tuple[str, str, str]]:
        return sorted((a.rule, a.fingerprint, a.summary) for a in e.found)  # type: ignore[attr-defined]

    later = evaluate(db, Settings(), rules, RUNAWAY_EVENING + timedelta(minutes=15))
    assert found(first) == found(plain) and found(again) == found(later)
    assert len(memo) == 3  # one entry per distinct set of thresholds (the three example rules differ)
    kept = {k: id(v) for k, v in memo.items()}
    evaluate(db, Settings(), rules, RUNAWAY_EVENING + timedelta(minutes=30), memo=memo)
    assert {k: id(v) for k, v in memo.items()} == kept  # reused, not recomputed
    # A re-read changed yesterday: the episodes are computed again.
    db.conn.execute("UPDATE days SET spend = 2.0 WHERE date = '2026-03-03'")
    evaluate(db, Settings(), rules, RUNAWAY_EVENING + timedelta(minutes=45), memo=memo)
    assert len(memo) == 3 and all(id(v) != kept.get(k) for k, v in memo.items())
