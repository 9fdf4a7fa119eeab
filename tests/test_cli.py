"""The CLI end to end: several sources into one store, status, demo, helpful errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from simhelp import NOW, TODAY, since_for, small_model, truth_facts

from sentinel.cli import main
from sentinel.models import Grain
from sentinel.simulator import SimulatorServer
from sentinel.store import facts as fact_store
from sentinel.store import open_store


def test_two_sources_sync_into_one_store_under_their_own_labels(tmp_path: Path) -> None:
    east, west = small_model(days=8, seed=11), small_model(days=8, seed=12, users=9)
    db = tmp_path / "s.db"
    config = tmp_path / "config.toml"
    with (
        SimulatorServer(east, api_key="sk-east-key-0001").running() as u1,
        SimulatorServer(west, api_key="sk-west-key-0002").running() as u2,
    ):
        config.write_text(
            f'[store]\npath = "{db}"\n'
            f'[[sources]]\nname = "east"\nurl = "{u1}"\napi_key_env = "EAST_KEY"\n'
            f'[[sources]]\nname = "west"\nurl = "{u2}"\napi_key_env = "WEST_KEY"\n'
        )
        env = {"EAST_KEY": "sk-east-key-0001", "WEST_KEY": "sk-west-key-0002"}
        runner = CliRunner()
        result = runner.invoke(main, ["-c", str(config), "sync", "--since", since_for(8).isoformat()], env=env)
        assert result.exit_code == 0, result.output
        assert "east: backfill" in result.output and "west: backfill" in result.output
        status = runner.invoke(main, ["-c", str(config), "status", "--format", "json"], env=env)
        table = runner.invoke(main, ["-c", str(config), "status"], env=env)
    store = open_store(db)
    for name, model in (("east", east), ("west", west)):
        for grain in (Grain.USER, Grain.TEAM, Grain.MODEL):
            stored = fact_store.facts_for(store, name, grain, since_for(8), TODAY)
            truth = truth_facts(model, grain, since_for(8), TODAY)
            assert set(stored) == set(truth)
            assert all(abs(stored[k][0] - truth[k][0]) < 1e-6 for k in truth)
    doc = {row["source"]: row for row in json.loads(status.output)["sources"]}
    assert set(doc) == {"east", "west"}
    for row in doc.values():
        assert row["days_stored"] >= 8 and row["last_error"] is None and row["last_success_at"]
        assert row["first_day"] == since_for(8).isoformat()
        assert row["backfill_done_at"]
    assert "east" in table.output and "west" in table.output and "final" in table.output
    assert NOW.date() == TODAY


def test_status_shows_the_last_error(tmp_path: Path) -> None:
    model = small_model(days=3)
    config = tmp_path / "config.toml"
    with SimulatorServer(model, api_key="sk-right-key-123").running() as url:
        config.write_text(
            f'[store]\npath = "{tmp_path / "s.db"}"\n[[sources]]\nname = "prod"\nurl = "{url}"\napi_key_env = "K"\n'
        )
        runner = CliRunner()
        sync = runner.invoke(main, ["-c", str(config), "sync"], env={"K": "sk-wrong-key-456"})
        status = runner.invoke(main, ["-c", str(config), "status", "--format", "json"], env={"K": "x"})
    assert sync.exit_code == 5
    (row,) = json.loads(status.output)["sources"]
    assert "authentication failed" in row["last_error"] and row["last_success_at"] is None


def test_missing_key_env_is_reported_per_source(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nname = "prod"\nurl = "http://127.0.0.1:9"\napi_key_env = "NOT_SET_ANYWHERE"\n')
    result = CliRunner().invoke(main, ["-c", str(config), "sync"], env={})
    assert result.exit_code == 5
    assert "NOT_SET_ANYWHERE" in result.output


def test_bad_config_exit_code_and_message(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sync]\ntrailing_days = 0\n")
    result = CliRunner().invoke(main, ["-c", str(config), "status"])
    assert result.exit_code == 2
    assert "sync.trailing_days" in result.output and "line 2" in result.output


def test_no_sources_points_to_the_example_and_demo() -> None:
    result = CliRunner().invoke(main, ["sync"])
    assert result.exit_code == 2
    assert "[[sources]]" in result.output and "sentinel demo" in result.output


@pytest.mark.parametrize(
    "command",
    [[], ["sync"], ["status"], ["demo"], ["simulate"], ["doctor"], ["reconcile"], ["purge"], ["pseudonym"]],
)
def test_help_reads(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_demo_runs_without_configuration(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--days", "20", "--users", "15", "--db", str(db)])
    assert result.exit_code == 0, result.output
    for heading in ("Spend by provider", "Spend by team", "Top users", "Top models", "Budgets needing attention"):
        assert heading in result.output
    store = open_store(db)
    total = store.conn.execute("SELECT SUM(spend) FROM daily_facts WHERE grain = 'total'").fetchone()[0]
    by_provider = store.conn.execute("SELECT SUM(spend) FROM daily_facts WHERE grain = 'provider'").fetchone()[0]
    assert total > 0 and abs(total - by_provider) < 1e-6
    assert f"${total:,.2f}" in result.output


BACKTEST_FIELDS = {
    "kind",
    "entity_type",
    "entity_id",
    "date",
    "detected_at",
    "observed",
    "expected",
    "lower",
    "upper",
    "impact_usd",
    "direction",
    "contributors",
    "episode",
    "method",
    "history_days",
    "p_value",
    "z",
}


def test_backtest_jsonl_finds_the_injected_spike_and_detect_runs(tmp_path: Path) -> None:
    from datetime import timedelta

    from simhelp import make_client

    from sentinel.config import SyncSettings
    from sentinel.sync import backfill

    model = small_model(days=90, users=40, seed=5)
    db = tmp_path / "s.db"
    store = open_store(db)
    settings = SyncSettings()
    with (
        SimulatorServer(model, api_key="sk-sentinel-test-master-7f3a9c").running() as url,
        make_client(url, store, settings) as client,
    ):
        backfill(store, client, settings, since_for(90), NOW)
    runner = CliRunner()
    since = (TODAY - timedelta(days=40)).isoformat()
    result = runner.invoke(
        main,
        ["backtest", "--db", str(db), "--since", since, "--until", str(TODAY - timedelta(days=1)), "--format", "jsonl"],
    )
    assert result.exit_code == 0, result.output
    every = [json.loads(line) for line in result.output.splitlines()]
    records = [r for r in every if r["kind"] == "anomaly"]
    assert {r["kind"] for r in every} == {"anomaly", "budget"}  # budget alerts replay alongside
    assert records and all(set(r) >= BACKTEST_FIELDS for r in records)
    assert all(since <= r["date"] < TODAY.isoformat() for r in records)
    spike = next(e for e in model.events if e.kind == "spike")
    hits = [r for r in records if r["entity_id"] == spike.entity_id and r["date"] == spike.start.isoformat()]
    assert hits, f"the injected spike on {spike.entity_id} {spike.start} was not found"
    (hit,) = hits
    assert hit["direction"] == "up" and hit["observed"] > hit["upper"] and hit["impact_usd"] > 0
    assert hit["contributors"] and hit["contributors"][0]["delta_usd"] > 0

    table = runner.invoke(main, ["backtest", "--db", str(db), "--since", since])
    assert table.exit_code == 0 and "anomaly episodes" in table.output
    detect = runner.invoke(main, ["detect", "--db", str(db), "--format", "json", "--lookback", "10"])
    assert detect.exit_code == 0, detect.output
    assert isinstance(json.loads(detect.output), list)
    stored_fits = store.conn.execute("SELECT COUNT(*) FROM baselines").fetchone()[0]
    assert stored_fits in (0, 5)  # today's fits are stored once enough of the day has passed


def test_detect_and_backtest_on_an_empty_store(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    runner = CliRunner()
    detect = runner.invoke(main, ["detect", "--db", db])
    assert detect.exit_code == 0, detect.output
    assert "No anomalies" in detect.output
    backtest = runner.invoke(
        main, ["backtest", "--db", db, "--since", "2026-11-01", "--until", "2026-11-20", "--format", "jsonl"]
    )
    assert backtest.exit_code == 0, backtest.output
    assert backtest.output == ""
