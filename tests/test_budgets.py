"""Budgets: proxy and rule-file budgets, thresholds once per window, forecasts warned ahead of a breach.

Proxy budgets come from a real sync of the simulator over HTTP (its teams, users and keys carry max
and soft budgets with LiteLLM's reset windows); threshold bookkeeping is also driven directly through
the store's ``teams`` table so every step of a window can be set exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from simhelp import KEY, make_client

from sentinel.budget import engine
from sentinel.budget.evaluate import due_signals
from sentinel.budget.forecast import SeriesMoments, day_moments, project
from sentinel.budget.model import BudgetSpec, BudgetStatus
from sentinel.budget.specs import Policy
from sentinel.cli import main
from sentinel.config import SyncSettings
from sentinel.models import Grain
from sentinel.rules.loader import RuleSet
from sentinel.rules.schema import BudgetRule, Selector
from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel
from sentinel.store import facts as fact_store
from sentinel.store import open_store, transaction
from sentinel.sync import backfill, poll

T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)
RESET = datetime(2026, 12, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- forecast math
def flat(mean: float, var: float = 0.0, rel: float = 0.0) -> SeriesMoments:
    """A series expected to spend ``mean`` every day from 2026-11-01 for 60 days."""
    return SeriesMoments(date(2026, 11, 1), np.full(60, mean), np.full(60, var), rel, "weekday-mean", 56)


def test_projection_of_a_steady_series_is_exact_and_names_the_crossing_time() -> None:
    as_of = datetime(2026, 11, 10, 0, tzinfo=UTC)
    fc = project(100.0, 150.0, as_of, RESET, flat(10.0), interval=0.9)
    assert fc.at_end == pytest.approx(100.0 + 21 * 10.0)  # 21 whole days left
    # Even a perfectly steady history leaves the level free to wander over three weeks.
    assert fc.lower < fc.at_end < fc.upper and fc.upper - fc.lower < 0.5 * 210
    assert fc.p_breach > 0.999
    assert fc.eta == datetime(2026, 11, 15, tzinfo=UTC)  # $50 more at $10 a day (linear within a day)
    assert fc.eta_earliest is not None and T0 < fc.eta_earliest < fc.eta


def test_projection_counts_only_the_rest_of_today_and_the_window_up_to_the_reset() -> None:
    as_of = datetime(2026, 11, 30, 18, tzinfo=UTC)  # 6 hours left of the last day
    fc = project(50.0, None, as_of, RESET, flat(24.0))
    assert fc.at_end == pytest.approx(56.0)
    half_day_reset = datetime(2026, 11, 30, 12, tzinfo=UTC)
    fc = project(0.0, None, datetime(2026, 11, 29, 0, tzinfo=UTC), half_day_reset, flat(24.0))
    assert fc.at_end == pytest.approx(36.0)


def test_breach_probability_grows_with_the_forecast_and_a_near_miss_stays_unlikely() -> None:
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    moments = flat(10.0, var=9.0, rel=0.05)
    ps = [project(100.0, limit, as_of, RESET, moments).p_breach for limit in (150.0, 200.0, 210.0, 220.0, 300.0)]
    assert ps == sorted(ps, reverse=True)
    near_miss = project(100.0, 210.0 / 0.95, as_of, RESET, moments)  # expected to end at 95 %
    assert near_miss.p_breach < 0.5 and near_miss.eta is None  # far below the 0.8 that warns
    assert project(100.0, 200.0, as_of, RESET, moments).eta_earliest is not None


def test_limit_already_reached_is_certain_and_has_no_eta() -> None:
    fc = project(120.0, 100.0, T0, RESET, flat(5.0))
    assert fc.p_breach == 1.0 and fc.eta is None


def test_day_moments_model_the_mean_not_the_median_and_clip_spikes() -> None:
    # Weekdays $10 with one weekday in four skipped, weekends zero, and one $500 spike.
    start = date(2026, 9, 7)  # a Monday
    days = 56
    values = np.zeros(days)
    for i in range(days):
        if (start + timedelta(days=i)).weekday() < 5 and i % 4 != 3:
            values[i] = 10.0
    values[30] = 500.0
    moments = day_moments(values[None, :], start + timedelta(days=days), 14)
    week = float(moments.mean[0, :7].sum())
    truth = float(np.sum(np.where(values == 500.0, 10.0, values)) / 8)
    assert week == pytest.approx(truth, rel=0.15)  # the spike is clipped, the skipped days count as zeros
    assert moments.mean[0, 5] == moments.mean[0, 6] == 0.0  # nothing on weekends
    assert moments.method == ("weekday-mean",)
    new = day_moments(np.r_[np.zeros(days - 3), [5.0, 5.0, 5.0]][None, :], start + timedelta(days=days), 7)
    assert new.row(0) is None  # three days of history: no forecast


# ---------------------------------------------------------------------------------------------- thresholds
def _team_row(db, spend: float, reset: datetime, *, max_budget: float | None = 100.0, soft: float | None = 70.0,
              seen: datetime, team: str = "t-1") -> None:  # fmt: skip
    with transaction(db):
        db.conn.execute(
            "INSERT OR REPLACE INTO teams (source, team_id, alias, max_budget, soft_budget, spend, budget_duration, "
            "budget_reset_at, seen_at) VALUES ('prod', ?, 'team-one', ?, ?, ?, '30d', ?, ?)",
            (team, max_budget, soft, spend, reset.isoformat(), seen.isoformat()),
        )


def _fire(db, now: datetime) -> list[str]:
    current = engine.statuses(db, now, Policy(), RuleSet.empty())
    return [
        str(a["signal"]) + (f":{a['threshold_pct']:g}" if a["threshold_pct"] else "")
        for a in engine.check(db, current, now)
    ]


def test_each_threshold_fires_once_per_window_across_restarts_and_again_after_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = open_store(path)
    _team_row(db, 55.0, RESET, seen=T0)
    assert _fire(db, T0) == ["threshold:50"]
    _team_row(db, 60.0, RESET, seen=T0 + timedelta(hours=1))
    assert _fire(db, T0 + timedelta(hours=1)) == []
    _team_row(db, 95.0, RESET, seen=T0 + timedelta(hours=2))
    fired = engine.check(db, engine.statuses(db, T0 + timedelta(hours=2), Policy(), RuleSet.empty()), T0)
    crossing = [a for a in fired if a["signal"] == "threshold"]
    assert len(crossing) == 1 and crossing[0]["threshold_pct"] == 90 and crossing[0]["also_crossed_pct"] == [80]
    assert {a["signal"] for a in fired} == {"threshold", "soft_budget"}
    db.conn.close()

    # A new process (the daemon restarted) remembers what fired in this window.
    db = open_store(path)
    assert _fire(db, T0 + timedelta(hours=3)) == []
    _team_row(db, 101.0, RESET, seen=T0 + timedelta(hours=4))
    assert _fire(db, T0 + timedelta(hours=4)) == ["threshold:100"]

    # The proxy reset the counter and moved budget_reset_at on: every threshold is armed again.
    next_reset = datetime(2027, 1, 1, tzinfo=UTC)
    after = RESET + timedelta(hours=1)
    _team_row(db, 52.0, next_reset, seen=after)
    assert _fire(db, after) == ["threshold:50"]
    _team_row(db, 75.0, next_reset, seen=after + timedelta(hours=1))
    assert _fire(db, after + timedelta(hours=1)) == ["soft_budget"]  # 50 % already fired in this window
    rows = db.conn.execute("SELECT period, signal FROM budget_signals ORDER BY period, signal").fetchall()
    assert ("2026-12-01T00:00:00+00:00", "threshold:100") in rows
    assert ("2027-01-01T00:00:00+00:00", "threshold:50") in rows


def test_a_reset_that_is_due_but_not_done_keeps_the_old_window(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    _team_row(db, 95.0, RESET, seen=RESET - timedelta(hours=1))
    assert sorted(_fire(db, RESET - timedelta(hours=1))) == ["soft_budget", "threshold:90"]
    # Five minutes past the reset the proxy's reset job has not run: same counter, same window.
    late = RESET + timedelta(minutes=5)
    _team_row(db, 95.0, RESET, seen=late)
    assert _fire(db, late) == []
    (status,) = engine.statuses(db, late, Policy(), RuleSet.empty())
    assert status.spec.window_end == RESET and status.forecast is None and "resets the counter" in str(status.note)


def test_soft_budget_alone_and_entities_without_budgets(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    _team_row(db, 30.0, RESET, max_budget=None, soft=25.0, seen=T0)
    _team_row(db, 999.0, RESET, max_budget=None, soft=None, seen=T0, team="no-budget")
    statuses = engine.statuses(db, T0, Policy(), RuleSet.empty())
    assert [s.spec.entity_id for s in statuses] == ["t-1"]  # the team with no budget is not watched
    fired = engine.check(db, statuses, T0)
    assert [a["signal"] for a in fired] == ["soft_budget"] and fired[0]["pct_used"] is None


def test_a_jump_past_several_thresholds_is_one_alert_for_the_highest() -> None:
    spec = BudgetSpec(
        "b", "rule", None, "total", "", "whole proxy", 100.0, None, "month", "UTC",
        None, None, 96.0, T0, "daily activity",
    )  # fmt: skip
    (signal,) = due_signals(BudgetStatus(spec, None), frozenset())
    assert signal.threshold_pct == 90 and signal.covers == ("threshold:50", "threshold:80", "threshold:90")
    assert due_signals(BudgetStatus(spec, None), frozenset(signal.covers)) == []


# ---------------------------------------------------------------------------------------------- simulator
def _model(now: datetime, seed: int = 11) -> TrafficModel:
    return TrafficModel(TrafficConfig(seed=seed, users=24, teams=4, days=60, today=now.date(), now=now))


def test_a_breach_is_forecast_days_ahead_and_a_near_miss_is_not(tmp_path: Path) -> None:
    """Simulator team 0 heads for its monthly budget; team 1 is sized to end its window near 95 %."""
    start = datetime(2026, 11, 18, 12, tzinfo=UTC)
    model = _model(start)
    breach_team, near_team = model.teams[0], model.teams[1]
    db = open_store(tmp_path / "s.db")
    settings = SyncSettings(entities_every_minutes=0)
    alerts: list[dict[str, object]] = []
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, start.date() - timedelta(days=59), start)
        moment = start
        while moment < RESET - timedelta(hours=1):
            statuses = engine.statuses(db, moment, Policy(), RuleSet.empty())
            alerts += engine.check(db, statuses, moment)
            moment += timedelta(hours=6)
            model.advance(moment)
            poll(db, client, settings, moment)
    final_near = model.budget_state("team", near_team.team_id)
    assert near_team.max_budget is not None and final_near.spend < near_team.max_budget  # it really is a near miss

    def first(team: str, signal: str, pct: float | None = None) -> datetime | None:
        found = [
            datetime.fromisoformat(str(a["detected_at"]))
            for a in alerts
            if a["entity_id"] == team and a["signal"] == signal and (pct is None or a["threshold_pct"] == pct)
        ]
        return min(found) if found else None

    warned, crossed = first(breach_team.team_id, "forecast"), first(breach_team.team_id, "threshold", 100)
    assert warned is not None and crossed is not None
    assert crossed - warned >= timedelta(days=2)
    warning = next(a for a in alerts if a["entity_id"] == breach_team.team_id and a["signal"] == "forecast")
    forecast = warning["forecast"]
    assert isinstance(forecast, dict) and forecast["p_breach"] >= 0.8 and forecast["over_usd"] > 0
    eta = datetime.fromisoformat(str(forecast["breach_eta"]))
    assert abs(eta - crossed) < timedelta(days=1.5)
    assert warning["drivers"] and {d["type"] for d in warning["drivers"]} >= {"user", "model"}  # type: ignore[union-attr]
    assert first(near_team.team_id, "forecast") is None and first(near_team.team_id, "threshold", 100) is None


# ---------------------------------------------------------------------------------------------- rule budgets
def _synced(tmp_path: Path, now: datetime = T0) -> tuple[TrafficModel, object]:
    model = _model(now)
    db = open_store(tmp_path / "s.db")
    settings = SyncSettings()
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, settings) as client:
        backfill(db, client, settings, now.date() - timedelta(days=59), now)
    return model, db


def test_rule_budgets_sum_daily_activity_over_their_window_and_select_entities(tmp_path: Path) -> None:
    model, db = _synced(tmp_path)
    team = model.teams[2]
    rules = RuleSet(
        (),
        (
            BudgetRule(name="anthropic", entity="provider", select=Selector(ids=("anthropic",)), amount_usd=50.0),
            BudgetRule(
                name="team-week",
                entity="team",
                select=Selector(ids=(team.team_alias,)),
                amount_usd=5.0,
                period="week",
                timezone="Europe/Berlin",
            ),
            BudgetRule(
                name="members", entity="user", select=Selector(team=team.team_alias), amount_usd=1.0, period="day"
            ),
            BudgetRule(name="all", entity="total", amount_usd=10_000.0),
        ),
    )
    statuses = {s.spec.budget_id: s for s in engine.statuses(db, T0, Policy(proxy_budgets=False), rules)}
    month = fact_store.spend_by_entity(db, Grain.PROVIDER, date(2026, 11, 1), T0.date(), "sim")
    assert statuses["rule/anthropic/provider/anthropic"].spec.spent == pytest.approx(dict(month)["anthropic"])
    week = dict(fact_store.spend_by_entity(db, Grain.TEAM, date(2026, 11, 9), T0.date(), "sim"))
    weekly = statuses[f"rule/team-week/team/{team.team_id}"]
    assert weekly.spec.spent == pytest.approx(week.get(team.team_id, 0.0))
    assert weekly.spec.window_start == datetime(2026, 11, 8, 23, tzinfo=UTC)  # Monday 00:00 in Berlin
    members = {s.spec.entity_id for s in statuses.values() if s.spec.rule == "members"}
    assert members == {u.user_id for u in model.users if team.team_id in u.teams}  # as /user/list says
    total = statuses["rule/all/total/"]
    assert total.spec.spent == pytest.approx(sum(s for _e, s in fact_store.spend_by_entity(
        db, Grain.TOTAL, date(2026, 11, 1), T0.date(), "sim")))  # fmt: skip
    assert total.forecast is not None and total.forecast.at_end > total.spec.spent


def test_proxy_budgets_match_the_simulator_counters(tmp_path: Path) -> None:
    model, db = _synced(tmp_path)
    statuses = engine.statuses(db, T0, Policy(), RuleSet.empty())
    teams = {s.spec.entity_id: s.spec for s in statuses if s.spec.entity_type == "team"}
    for team in model.teams:
        if team.max_budget is None:
            assert team.team_id not in teams
            continue
        state = model.budget_state("team", team.team_id)
        spec = teams[team.team_id]
        assert spec.spent == pytest.approx(state.spend) and spec.limit == team.max_budget
        assert spec.window_end == state.budget_reset_at and spec.window_start == state.window_start
        assert spec.spend_basis == "proxy counter"
    keys = [s.spec for s in statuses if s.spec.entity_type == "key"]
    with_soft = [k for k in model.keys if k.soft_budget is not None]
    assert with_soft and {k.token for k in with_soft} <= {k.entity_id for k in keys if k.soft_limit is not None}


def test_budget_timezone_of_the_source_sets_the_window(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    berlin_reset = datetime(2026, 11, 30, 23, tzinfo=UTC)  # Dec 1 00:00 in Berlin
    _team_row(db, 10.0, berlin_reset, seen=T0)
    (status,) = engine.statuses(db, T0, Policy(timezones={"prod": "Europe/Berlin"}), RuleSet.empty())
    assert status.spec.window_start == datetime(2026, 10, 31, 23, tzinfo=UTC)  # Nov 1 00:00 in Berlin


# ---------------------------------------------------------------------------------------------- CLI
def test_budgets_command_table_json_alerts_and_backtest(tmp_path: Path) -> None:
    _synced(tmp_path)
    store = tmp_path / "s.db"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "b.toml").write_text('schema_version = 1\n[[budget]]\nname = "all"\nentity = "total"\namount_usd = 50.0\n')
    runner = CliRunner()
    table = runner.invoke(main, ["budgets", "--db", str(store), "--rules", str(rules), "--sort", "used"])
    assert table.exit_code == 0, table.output
    assert "whole proxy" in table.output and "forecast at reset" in table.output
    first = runner.invoke(main, ["budgets", "--db", str(store), "--rules", str(rules), "--format", "json", "--alerts"])
    doc = json.loads(first.output)
    assert {b["origin"] for b in doc["budgets"]} == {"proxy", "rule"}
    fields = {"spent_usd", "limit_usd", "pct_used", "window_end", "forecast", "state", "drivers"}
    assert all(fields <= set(b) for b in doc["budgets"])
    assert any(a["budget"]["rule"] == "all" and a["kind"] == "budget" for a in doc["alerts"])
    args = ["budgets", "--db", str(store), "--rules", str(rules), "--format", "json", "--alerts"]
    again = json.loads(runner.invoke(main, args).output)
    assert again["alerts"] == []
    replay = runner.invoke(
        main, ["backtest", "--db", str(store), "--rules", str(rules), "--since", "2026-11-01", "--until", "2026-11-09",
               "--format", "jsonl"],
    )  # fmt: skip
    assert replay.exit_code == 0, replay.output
    records = [json.loads(line) for line in replay.output.splitlines()]
    budget = [r for r in records if r["kind"] == "budget"]
    assert budget and {"signal", "entity_type", "entity_id", "date", "budget", "spent_usd"} <= set(budget[0])
    assert any(r["budget"]["rule"] == "all" and r["threshold_pct"] == 100 for r in budget)


def test_a_bad_rule_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('schema_version = 1\n[[budget]]\nname = "x"\nentity = "team"\namount_usd = 0\n')
    result = CliRunner().invoke(main, ["budgets", "--db", str(tmp_path / "s.db"), "--rules", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.toml:5" in result.output and "amount_usd" in result.output


def test_team_budget_limits_windows_are_watched_with_spend_from_activity(tmp_path: Path) -> None:
    model, db = _synced(tmp_path)
    team = model.teams[0]
    limits = [{"budget_duration": "7d", "max_budget": 1.0, "reset_at": "2026-11-16T00:00:00Z"}]
    with transaction(db):
        db.conn.execute("UPDATE teams SET budget_limits = ? WHERE team_id = ?", (json.dumps(limits), team.team_id))
    statuses = {s.spec.budget_id: s for s in engine.statuses(db, T0, Policy(), RuleSet.empty())}
    weekly = statuses[f"proxy/sim/team/{team.team_id}/limits/0"].spec
    week = dict(fact_store.spend_by_entity(db, Grain.TEAM, date(2026, 11, 9), T0.date(), "sim"))
    assert weekly.spend_basis == "daily activity" and weekly.limit == 1.0
    assert weekly.window_start == datetime(2026, 11, 9, tzinfo=UTC)  # the Monday before the reset
    assert weekly.spent == pytest.approx(week[team.team_id])
    assert statuses[f"proxy/sim/team/{team.team_id}"].spec.spend_basis == "proxy counter"


def test_fired_budget_alerts_survive_a_process_restart(tmp_path: Path) -> None:
    """Two separate processes (a daemon before and after a restart) share only the store."""
    import subprocess
    import sys

    _synced(tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text('schema_version = 1\n[[budget]]\nname = "all"\nentity = "total"\namount_usd = 50.0\n')
    args = [sys.executable, "-m", "sentinel", "budgets", "--db", str(tmp_path / "s.db"), "--rules", str(rules)]
    runs = [
        subprocess.run([*args, "--alerts", "--format", "json"], capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    first, second = (json.loads(r.stdout)["alerts"] for r in runs)
    assert {a["budget"]["id"] for a in first} >= {"rule/all/total/"} and second == []
