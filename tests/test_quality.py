"""Data-quality signals: the pure decisions, then the daemon over the simulator showing each problem:
a logging outage (one operator alert, no per-user drops), an unpriced model, a day that changed
after it was final, and activity all on keys without a user."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simhelp import KEY

from sentinel import quality
from sentinel.config import QualitySettings, Settings
from sentinel.daemon import Daemon
from sentinel.notify.model import Alert
from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import alerts as alert_store

START = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # a Monday morning


# ---------------------------------------------------------------------------------------------- pure
def _at(hour: float, day: int = 0) -> datetime:
    return START.replace(hour=0) + timedelta(days=day, hours=hour)


def test_last_growth_is_the_last_snapshot_above_the_one_before_on_its_day() -> None:
    snaps = [(_at(1), 1.0, 10), (_at(2), 2.0, 20), (_at(3), 2.0, 20), (_at(4), 2.0, 20)]
    assert quality.last_growth(snaps) == _at(2)
    # Requests that grow while spend does not (every request failing) are growth: not a logging stop.
    assert quality.last_growth([*snaps, (_at(5), 2.0, 25)]) == _at(5)
    # A new day's first snapshot with anything in it is growth; an empty one is not.
    assert quality.last_growth([*snaps, (_at(1, day=1), 0.5, 3)]) == _at(1, day=1)
    assert quality.last_growth([*snaps, (_at(1, day=1), 0.0, 0)]) == _at(2)
    assert quality.last_growth([]) is None


def test_quiet_since_traces_back_over_empty_days() -> None:
    today = _at(0, day=3).date()
    requests = {today - timedelta(days=3): 100, today - timedelta(days=2): 80}  # day=1 is today - 2
    snaps = [(_at(9, day=1), 3.0, 40), (_at(10, day=1), 4.0, 80), (_at(11, day=1), 4.0, 80)]
    assert quality.quiet_since(requests, snaps, today) == _at(10, day=1)
    # That day read again after midnight holds more than its last snapshot: it recorded till its end.
    assert quality.quiet_since({**requests, today - timedelta(days=2): 95}, snaps, today) == _at(0, day=2)
    # Without snapshots of that day: from the end of the last day with requests.
    assert quality.quiet_since(requests, [], today) == datetime.combine(
        today - timedelta(days=1), datetime.min.time(), UTC
    )
    # Today has requests: quiet since its last growth (how long that is, the caller judges).
    assert quality.quiet_since({today: 5}, [(_at(1, day=3), 1.0, 5)], today) == _at(1, day=3)
    # Today has requests but no snapshot shows growth today (never polled today): no verdict.
    assert quality.quiet_since({today: 5}, snaps, today) is None
    # Nothing recorded in the whole lookback: nothing to compare with.
    assert quality.quiet_since({}, [], today) is None


def test_expected_spend_follows_the_profile_across_midnight() -> None:
    flat = None  # the uniform profile: the elapsed share of the day
    assert abs(quality.expected_between(240.0, flat, _at(10), _at(13)) - 30.0) < 1e-9
    assert abs(quality.expected_between(240.0, flat, _at(22), _at(2, day=1)) - 40.0) < 1e-9
    # A profile with nothing at night: the night's silence expects nothing.
    night_quiet = [0.0] * 7 + [(h - 6) / 17 for h in range(7, 24)]
    assert quality.expected_between(240.0, night_quiet, _at(0), _at(6)) == 0.0


def test_an_outage_needs_time_expected_spend_and_expected_requests() -> None:
    settings = QualitySettings(outage_after="2h", outage_min_expected_usd=1.0)
    now = _at(14)
    flat = [(h + 1) / 24 for h in range(24)]  # a learnt profile (here: flat)
    assert quality.outage_now("p", now, _at(13), (240.0, 2400.0), flat, 3, settings) is None  # 1 h: too soon
    found = quality.outage_now("p", now, _at(10), (240.0, 2400.0), flat, 3, settings)
    assert found is not None and found.started_at == _at(10) and abs(found.expected_usd - 40.0) < 0.01
    assert quality.outage_now("p", now, _at(10), (2.0, 2400.0), flat, 3, settings) is None  # $0.33: too little
    assert quality.outage_now("p", now, _at(10), (240.0, 60.0), flat, 3, settings) is None  # 10 requests: chance
    # No profile learnt yet: a quiet night cannot be told from an outage; a whole silent day can.
    assert quality.outage_now("p", now, _at(10), (240.0, 2400.0), None, 3, settings) is None
    assert quality.outage_now("p", now, _at(13, day=-1), (240.0, 2400.0), None, 3, settings) is not None


def test_attribution_tells_keys_without_users_from_a_personal_proxy() -> None:
    assert quality.attribution_of([("Unassigned", 90.0), ("ann", 5.0)], keys=3).concentrated(0.9)
    assert quality.attribution_of([("ann", 99.0), ("bob", 1.0)], keys=4).concentrated(0.95)
    assert not quality.attribution_of([("ann", 100.0)], keys=1).concentrated(0.95)  # one person, one key
    assert not quality.attribution_of([("ann", 60.0), ("bob", 40.0)], keys=4).concentrated(0.95)


def _drop(kind: str, day: str, source: str = "p", direction: str = "down") -> Alert:
    labels = {"kind": kind, "entity_type": "user", "source": source, "direction": direction}
    return Alert("f", "firing", "r", "warning", "s", labels, START, record={"date": day})


def test_only_drops_and_absences_on_outage_days_of_that_source_are_held_back() -> None:
    outage = quality.Outage("p", _at(10, day=1), _at(8, day=3))
    today = _at(0, day=5).date()
    on, before = _at(0, day=2).date().isoformat(), _at(0, day=0).date().isoformat()
    assert quality.suppressed(_drop("anomaly", on), [outage], today)
    assert quality.suppressed(_drop("anomaly", on, source=""), [outage], today)  # sources summed
    assert quality.suppressed(_drop("absence", on), [outage], today)
    assert not quality.suppressed(_drop("anomaly", on, direction="up"), [outage], today)
    assert not quality.suppressed(_drop("anomaly", on, source="other"), [outage], today)
    assert not quality.suppressed(_drop("anomaly", before), [outage], today)
    assert not quality.suppressed(_drop("threshold", on), [outage], today)


# ---------------------------------------------------------------------------------------------- daemon
RULES = """schema_version = 1

[[anomaly]]
name = "user-drop"
entities = ["user"]
direction = "both"
min_usd = 0.5
min_pct = 30.0
sensitivity = "high"

[[absence]]
name = "user-stopped"
entity = "user"
for_days = 1
min_daily_usd = 0.5
"""


def _settings(tmp_path: Path, url: str, **extra: object) -> Settings:
    rules = tmp_path / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "r.toml").write_text(RULES)
    return Settings(
        sources=({"name": "sim", "url": url, "api_key_env": "SIM_KEY", "timeout_s": 10},),
        store={"path": tmp_path / "s.db"},
        rules={"path": rules},
        sync={"max_attempts": 1, "retry_initial_s": 0.0},
        receivers=({"type": "jsonl", "name": "log", "path": tmp_path / "alerts.jsonl"},),
        route={"receiver": "log", "group_by": ["..."], "group_wait": "0s", "group_interval": "1m"},
        daemon={"initial_backfill_days": 45},
        budgets={"proxy_budgets": False},
        **extra,  # type: ignore[arg-type]
    )


def _sent(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _ticks(daemon: Daemon, model: TrafficModel, start: datetime, hours: int, every: int = 1) -> None:
    for h in range(0, hours, every):
        at = start + timedelta(hours=h)
        model.advance(at)
        tick = daemon.run_once(at)
        assert tick.polled == {"sim": "ok"}, tick.errors


STOP = START + timedelta(days=3, hours=5)  # Thursday 11:00: the proxy's logging breaks


def _drops_since_stop(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-user drop anomalies and spend absences about the days of the outage."""
    out = []
    for x in sent:
        alert = x["alert"]
        if alert["rule"] not in ("user-drop", "user-stopped") or alert["labels"].get("direction") == "up":
            continue
        record = alert["record"]
        if str(record.get("quiet_since") or record.get("date")) >= STOP.date().isoformat():
            out.append(x)
    return out


def _outage_run(tmp_path: Path, checks_on: bool) -> tuple[Daemon, list[dict[str, object]]]:
    model = TrafficModel(TrafficConfig(seed=11, users=24, teams=3, days=40, now=START, inject_anomalies=False))
    with SimulatorServer(model, api_key=KEY).running() as url:
        settings = _settings(tmp_path, url, quality={"enabled": checks_on})
        daemon = Daemon(settings, None, clock=lambda: START, environ={"SIM_KEY": KEY})
        _ticks(daemon, model, START, 3 * 24, every=3)  # three normal days of polls: the intraday profile
        model.stop_logging(STOP)
        _ticks(daemon, model, START + timedelta(days=3), 46, every=2)  # through Friday, a whole quiet day
    return daemon, _sent(tmp_path)


def test_a_logging_outage_is_one_operator_alert_and_no_per_user_drops(tmp_path: Path) -> None:
    # Without the data checks, the same outage pages about users one by one (so the test means something).
    _, naive = _outage_run(tmp_path / "naive", checks_on=False)
    assert len({x["alert"]["labels"]["entity_id"] for x in _drops_since_stop(naive)}) >= 3  # type: ignore[index]

    daemon, sent = _outage_run(tmp_path / "checked", checks_on=True)
    data = [x for x in sent if x["alert"]["rule"] == quality.QUALITY_RULE]  # type: ignore[index]
    # One episode, firing (re-sent every repeat_interval while it lasts), never resolved meanwhile.
    episodes = {(x["status"], x["alert"]["labels"]["check"], x["alert"]["starts_at"]) for x in data}  # type: ignore[index]
    assert len(episodes) == 1 and next(iter(episodes))[:2] == ("firing", "outage")
    summary = str(data[0]["alert"]["summary"])  # type: ignore[index]
    assert "no spend recorded across all" in summary and "logging" in summary
    started = datetime.fromisoformat(str(data[0]["alert"]["record"]["started_at"]))  # type: ignore[index]
    assert STOP - timedelta(hours=2) <= started <= STOP + timedelta(hours=2)  # polled every 2 h
    assert _drops_since_stop(sent) == []
    # Not merely muted: no such alert exists in the store either.
    stored = alert_store.load(daemon.store)
    assert not [
        a
        for a in stored.values()
        if a.rule in ("user-stopped", "user-drop")
        and a.labels.get("direction") != "up"
        and str(a.record.get("quiet_since") or a.record.get("date")) >= STOP.date().isoformat()
    ]
    spells = daemon.store.conn.execute("SELECT source, ended_at FROM data_outages").fetchall()
    assert spells == [("sim", None)]


def test_logging_that_resumes_resolves_the_outage_and_keeps_the_gap_quiet(tmp_path: Path) -> None:
    model = TrafficModel(TrafficConfig(seed=11, users=30, teams=3, days=45, now=START, inject_anomalies=False))
    with SimulatorServer(model, api_key=KEY).running() as url:
        daemon = Daemon(_settings(tmp_path, url), None, clock=lambda: START, environ={"SIM_KEY": KEY})
        _ticks(daemon, model, START, 3 * 24, every=4)  # three days of polls: the intraday profile
        day = START + timedelta(days=3)  # Thursday 06:00
        model.stop_logging(day + timedelta(hours=1))
        _ticks(daemon, model, day, 8)
        model.resume_logging(day + timedelta(hours=8))
        _ticks(daemon, model, day + timedelta(hours=8), 30, every=3)
    data = [x for x in _sent(tmp_path) if x["alert"]["rule"] == quality.QUALITY_RULE]  # type: ignore[index]
    statuses = [x["status"] for x in data]
    assert statuses[0] == "firing" and statuses[-1] == "resolved" and statuses.count("resolved") == 1
    assert len({x["alert"]["starts_at"] for x in data}) == 1  # type: ignore[index]  # one episode
    ended = daemon.store.conn.execute("SELECT ended_at FROM data_outages").fetchall()
    assert len(ended) == 1 and ended[0][0] is not None
    # The day with the gap reads low, but no drop is raised for it after logging resumed.
    drops = [x for x in _sent(tmp_path) if x["alert"]["labels"].get("direction") == "down"]  # type: ignore[union-attr,index]
    assert drops == []


def test_an_unpriced_model_and_keys_without_users_are_operator_warnings(tmp_path: Path) -> None:
    unpriced = "anthropic/claude-3-5-sonnet-20240620"
    config = TrafficConfig(
        seed=4, users=10, teams=2, days=20, now=START, unpriced_models=(unpriced,), service_keys_only=True
    )
    model = TrafficModel(config)
    with SimulatorServer(model, api_key=KEY).running() as url:
        daemon = Daemon(_settings(tmp_path, url), None, clock=lambda: START, environ={"SIM_KEY": KEY})
        daemon.run_once(START)
        daemon.run_once(START + timedelta(hours=1))
    data = [x["alert"] for x in _sent(tmp_path) if x["alert"]["rule"] == quality.QUALITY_RULE]  # type: ignore[index]
    by_check = {a["labels"]["check"]: a for a in data}  # type: ignore[index]
    assert set(by_check) == {"unpriced", "attribution"}
    assert by_check["unpriced"]["record"]["model"] == unpriced  # type: ignore[index]
    assert by_check["unpriced"]["severity"] == "warning"
    assert "no user_id" in str(by_check["attribution"]["summary"])
    assert len(data) == 2  # the second tick finds them again: nothing repeats within the repeat interval


def test_a_final_day_that_changes_is_one_warning_with_the_old_and_new_totals(tmp_path: Path) -> None:
    model = TrafficModel(TrafficConfig(seed=4, users=10, teams=2, days=20, now=START, inject_anomalies=False))
    with SimulatorServer(model, api_key=KEY).running() as url:
        daemon = Daemon(_settings(tmp_path, url), None, clock=lambda: START, environ={"SIM_KEY": KEY})
        daemon.run_once(START)  # backfill: two days ago is final
        day = START.date() - timedelta(days=2)
        before = daemon.store.conn.execute(
            "SELECT spend FROM days WHERE route = 'user' AND date = ?", (day.isoformat(),)
        ).fetchone()[0]
        model.revise_day(day, 1.25)  # a late flush adds a quarter
        daemon.run_once(START + timedelta(minutes=15))  # the poll re-reads the trailing three days
        daemon.run_once(START + timedelta(minutes=30))
    revisions = [x for x in _sent(tmp_path) if x["alert"]["labels"].get("check") == "revision"]  # type: ignore[union-attr,index]
    assert len(revisions) == 1
    record = revisions[0]["alert"]["record"]  # type: ignore[index]
    assert record["date"] == day.isoformat()  # type: ignore[index]
    assert abs(record["final_spend"] - before) < 1e-6  # type: ignore[index,operator]
    assert abs(record["new_spend"] - 1.25 * before) < 0.01 * before  # type: ignore[index,operator]
    rows = daemon.store.conn.execute("SELECT route, date FROM day_revisions").fetchall()
    assert ("user", day.isoformat()) in rows


def test_today_s_changes_are_not_revisions(tmp_path: Path) -> None:
    model = TrafficModel(TrafficConfig(seed=4, users=10, teams=2, days=20, now=START))
    with SimulatorServer(model, api_key=KEY).running() as url:
        daemon = Daemon(_settings(tmp_path, url), None, clock=lambda: START, environ={"SIM_KEY": KEY})
        _ticks(daemon, model, START, 30, every=3)  # today grows, and yesterday settles after midnight
    assert daemon.store.conn.execute("SELECT COUNT(*) FROM day_revisions").fetchone()[0] == 0
