"""`sentinel reconcile`: stored days against the proxy's current answers, per day, grain and entity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from simhelp import KEY

from sentinel import reconcile as rec
from sentinel.cli import main
from sentinel.simulator import SimulatorServer, TrafficConfig, TrafficModel

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def test_compare_reports_changed_missing_and_new_rows_but_not_noise() -> None:
    m = (10.0, 100, 20, 0, 0, 5, 5, 0)
    stored = {("d", "a", ""): m, ("d", "b", ""): m, ("d", "z", ""): (0.0, 0, 0, 0, 0, 0, 0, 0)}
    live = {
        ("d", "a", ""): (10.004, 100, 20, 0, 0, 5, 5, 0),  # within the tolerance
        ("d", "b", ""): (12.0, 120, 20, 0, 0, 6, 6, 0),  # changed
        ("d", "c", ""): m,  # new on the proxy
    }
    found = rec.compare("user", stored, live, tolerance_usd=0.01)
    assert [(d.entity, d.stored_usd, d.proxy_usd) for d in found] == [("b", 10.0, 12.0), ("c", None, 10.0)]
    # Same spend but one more request is a difference too.
    more = {("d", "a", ""): (10.0, 100, 20, 0, 0, 6, 6, 0)}
    assert [d.proxy_requests for d in rec.compare("user", {("d", "a", ""): m}, more, 0.01)] == [6]
    # A row the proxy no longer has.
    gone = rec.compare("user", {("d", "a", ""): m}, {}, 0.01)
    assert gone[0].proxy_usd is None and gone[0].delta_usd == -10.0


def test_day_runs_groups_consecutive_days() -> None:
    runs = rec.day_runs(["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-07"])
    assert [(a.isoformat(), b.isoformat()) for a, b in runs] == [
        ("2026-01-01", "2026-01-03"),
        ("2026-01-07", "2026-01-07"),
    ]


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n[store]\npath = "s.db"\n')
    return config


def test_a_changed_final_day_is_found_per_entity_and_fixed(tmp_path: Path) -> None:
    model = TrafficModel(TrafficConfig(seed=6, users=10, teams=2, days=20, now=NOW))
    runner = CliRunner()
    env = {"SIM_KEY": KEY}
    since = (NOW.date() - timedelta(days=10)).isoformat()
    with SimulatorServer(model, api_key=KEY).running() as url:
        config = _config(tmp_path, url)
        args = ["-c", str(config)]
        assert (
            runner.invoke(
                main, [*args, "sync", "--since", (NOW.date() - timedelta(days=19)).isoformat()], env=env
            ).exit_code
            == 0
        )
        clean = runner.invoke(main, [*args, "reconcile", "--since", since], env=env)
        assert clean.exit_code == 0, clean.output
        assert "matches the proxy" in clean.output

        changed = NOW.date() - timedelta(days=6)
        model.revise_day(changed, 1.2)  # the proxy's history changes after the fact
        found = runner.invoke(main, [*args, "reconcile", "--since", since, "--format", "json"], env=env)
        assert found.exit_code == 1, found.output
        doc = json.loads(found.output)[0]
        assert doc["days_changed"] == [changed.isoformat()]
        grains = {d["grain"] for d in doc["differences"]}
        assert {"total", "user", "team", "model", "provider"} <= grains
        total = next(d for d in doc["differences"] if d["grain"] == "total")
        assert abs(total["proxy_usd"] - 1.2 * total["stored_usd"]) < 0.001 * total["stored_usd"]
        assert all(d["date"] == changed.isoformat() for d in doc["differences"])

        table = runner.invoke(main, [*args, "reconcile", "--since", since, "--fix"], env=env)
        assert table.exit_code == 1 and "read into the store again" in table.output
        after = runner.invoke(main, [*args, "reconcile", "--since", since], env=env)
        assert after.exit_code == 0, after.output

    import sqlite3

    conn = sqlite3.connect(tmp_path / "s.db")
    revisions = conn.execute("SELECT DISTINCT route, date FROM day_revisions").fetchall()
    conn.close()
    assert ("user", changed.isoformat()) in revisions  # the fix re-read a final day: recorded as a revision


def test_since_after_until_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9")
    result = CliRunner().invoke(
        main, ["-c", str(config), "reconcile", "--since", "2026-11-20", "--until", "2026-11-10"], env={"SIM_KEY": KEY}
    )
    assert result.exit_code == 2 and "--since 2026-11-20 is after" in result.output
