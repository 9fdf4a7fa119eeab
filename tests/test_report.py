"""`sentinel report` against the simulator's ground truth: grouping, the change against the period
before, the effective price per million tokens, and the CSV and JSON outputs."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from simhelp import KEY, NOW, make_client, small_model

from sentinel import report as rep
from sentinel.cli import main
from sentinel.config import SyncSettings
from sentinel.models import Grain
from sentinel.simulator import SimulatorServer, TrafficModel
from sentinel.store import open_store
from sentinel.sync import backfill

DAYS = 30
PERIOD = rep.Period(NOW.date() - timedelta(days=7), NOW.date() - timedelta(days=1))
PREVIOUS = PERIOD.previous()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrafficModel, Path]:
    model = small_model(days=DAYS, users=16)
    path = tmp_path_factory.mktemp("report") / "s.db"
    db = open_store(path)
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, SyncSettings()) as client:
        client.name = "sim"
        backfill(db, client, SyncSettings(), NOW.date() - timedelta(days=DAYS - 1), NOW)
    db.conn.close()
    return model, path


def _truth(model: TrafficModel, grain: Grain, period: rep.Period) -> dict[str, list[float]]:
    """entity -> summed metrics (METRIC_FIELDS order) over the period."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * 8)
    for (_day, entity), metrics in model.truth(grain.value, period.since, period.until).items():
        acc = out[entity]
        for i, value in enumerate(metrics.values()):
            acc[i] += float(value)
    return out


def _rows(db: sqlite_utils.Database, by: tuple[str, ...]) -> list[dict[str, object]]:
    frame, _grain = rep.build(db, PERIOD, by)
    return rep.records(frame, by, rep.names(db))


def test_grain_choice_prefers_the_exact_grain() -> None:
    assert rep.grain_for(()) == Grain.TOTAL
    assert rep.grain_for(("week",)) == Grain.TOTAL
    assert rep.grain_for(("team", "day")) == Grain.TEAM
    assert rep.grain_for(("provider", "model")) == Grain.MODEL
    assert rep.grain_for(("team", "user")) == Grain.KEY
    assert rep.grain_for(("team", "model")) == Grain.MODEL_KEY


@pytest.mark.parametrize("dim,grain", [("provider", Grain.PROVIDER), ("team", Grain.TEAM), ("user", Grain.USER)])
def test_one_dimension_equals_the_truth_with_the_change(
    world: tuple[TrafficModel, Path], dim: str, grain: Grain
) -> None:
    model, path = world
    rows = {str(r[dim]): r for r in _rows(open_store(path), (dim,))}
    now, before = _truth(model, grain, PERIOD), _truth(model, grain, PREVIOUS)
    assert set(rows) == {e for e, m in {**before, **now}.items() if m != [0.0] * 8} | set(now)
    for entity, metrics in now.items():
        row = rows[entity]
        assert row["spend"] == pytest.approx(metrics[0], abs=1e-5)
        assert row["prompt_tokens"] == metrics[1] and row["api_requests"] == metrics[5]
        previous = before.get(entity, [0.0])[0]
        assert row["previous_spend"] == pytest.approx(previous, abs=1e-5)
        assert row["change"] == pytest.approx(metrics[0] - previous, abs=1e-5)
        if previous > 0:
            assert row["change_pct"] == pytest.approx(100 * (metrics[0] - previous) / previous, rel=1e-3)
    spends = [float(str(r["spend"])) for r in rows.values()]
    assert [float(str(r["spend"])) for r in _rows(open_store(path), (dim,))] == sorted(spends, reverse=True)


def test_effective_price_per_million_tokens_is_spend_over_tokens(world: tuple[TrafficModel, Path]) -> None:
    model, path = world
    truth = _truth(model, Grain.MODEL, PERIOD)
    for row in _rows(open_store(path), ("model",)):
        spend, prompt, completion = truth[str(row["model"])][:3]
        assert row["usd_per_1m_tokens"] == pytest.approx(1e6 * spend / (prompt + completion), rel=1e-3)


def test_pairs_from_the_key_detail_add_up_and_match_the_truth(world: tuple[TrafficModel, Path]) -> None:
    model, path = world
    db = open_store(path)
    team_of = {k.token: k.team_id or rep.NO_TEAM for k in model.keys}
    truth: dict[tuple[str, str], float] = defaultdict(float)
    for (_day, entity), metrics in model.truth(Grain.MODEL_KEY.value, PERIOD.since, PERIOD.until).items():
        model_name, key = entity.split("\x1f")
        truth[(team_of.get(key, rep.NO_TEAM), model_name)] += float(metrics["spend"])
    rows = _rows(db, ("team", "model"))
    got = {(str(r["team"]), str(r["model"])): float(str(r["spend"])) for r in rows}
    assert got.keys() == {k for k, v in truth.items() if v > 0} | {k for k in got if got[k] == 0}
    for pair, spend in truth.items():
        assert got.get(pair, 0.0) == pytest.approx(spend, abs=1e-5)
    total = _truth(model, Grain.TOTAL, PERIOD)[""][0]
    assert sum(got.values()) == pytest.approx(total, abs=1e-4)


def test_by_day_and_week_buckets(world: tuple[TrafficModel, Path]) -> None:
    model, path = world
    db = open_store(path)
    per_day = {r["day"]: r["spend"] for r in _rows(db, ("day",))}
    truth = model.truth(Grain.TOTAL.value, PERIOD.since, PERIOD.until)
    assert per_day == {day: pytest.approx(float(m["spend"]), abs=1e-6) for (day, _e), m in truth.items()}
    weeks = _rows(db, ("provider", "week"))
    assert all(date.fromisoformat(str(r["week"])).weekday() == 0 for r in weeks)
    assert all(r["previous_spend"] is None for r in weeks)  # a week has no "period before" in this report
    assert sum(float(str(r["spend"])) for r in weeks) == pytest.approx(sum(float(str(v)) for v in per_day.values()))


def test_cli_csv_and_json_carry_the_same_numbers(world: tuple[TrafficModel, Path]) -> None:
    _model, path = world
    args = ["report", "--db", str(path), "--since", PERIOD.since.isoformat(), "--until", PERIOD.until.isoformat()]
    as_json = CliRunner().invoke(main, [*args, "--by", "team,model", "--format", "json"])
    as_csv = CliRunner().invoke(main, [*args, "--by", "team,model", "--format", "csv"])
    table = CliRunner().invoke(main, [*args, "--by", "team,model"])
    assert as_json.exit_code == as_csv.exit_code == table.exit_code == 0, as_json.output + as_csv.output
    doc = json.loads(as_json.output)
    assert doc["grain"] == "model_key" and doc["by"] == ["team", "model"]
    assert doc["previous"] == {"since": PREVIOUS.since.isoformat(), "until": PREVIOUS.until.isoformat()}
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(parsed) == len(doc["rows"])
    for line, row in zip(parsed, doc["rows"], strict=True):
        assert (line["team"], line["model"]) == (row["team"], row["model"])
        assert float(line["spend"]) == pytest.approx(row["spend"])
        assert int(line["api_requests"]) == row["api_requests"]
    assert "vs" in table.output and "total $" in table.output


def test_bad_dimensions_and_periods_are_clear_errors(world: tuple[TrafficModel, Path]) -> None:
    _model, path = world
    bad = CliRunner().invoke(main, ["report", "--db", str(path), "--by", "team,colour"])
    assert bad.exit_code == 2 and "unknown colour" in bad.output
    both = CliRunner().invoke(main, ["report", "--db", str(path), "--by", "day,week"])
    assert both.exit_code == 2 and "at most one of day, week, month" in both.output
    clash = CliRunner().invoke(main, ["report", "--db", str(path), "--since", "2026-11-01", "--last", "7d"])
    assert clash.exit_code == 2 and "not both" in clash.output
