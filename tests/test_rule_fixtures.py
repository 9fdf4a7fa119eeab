"""Rule-file fixtures: tests/rules/good/*.toml load cleanly, tests/rules/bad/*.toml each give one exact problem.

Every bad file starts with ``# expect: <str(Problem)>`` (the file's path written as ``{file}``), so the expected
message sits next to the rule that causes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sentinel.cli import main
from sentinel.rules.loader import check

FIXTURES = Path(__file__).resolve().parent / "rules"
GOOD = sorted((FIXTURES / "good").glob("*.toml"))
BAD = sorted((FIXTURES / "bad").glob("*.toml"))

# Rules per good file: (anomaly, budget, threshold, absence).
GOOD_COUNTS = {
    "absences.toml": (0, 0, 0, 5),
    "anomalies.toml": (4, 0, 0, 0),
    "budgets_calendar.toml": (0, 5, 0, 0),
    "budgets_cycles.toml": (0, 3, 0, 0),
    "empty.toml": (0, 0, 0, 0),
    "mixed.toml": (1, 1, 1, 2),
    "thresholds.toml": (0, 0, 4, 0),
}


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <message>'"
    return first.removeprefix("# expect: ").replace("{file}", str(path))


def test_fixture_directories_are_complete() -> None:
    assert [p.name for p in GOOD] == sorted(GOOD_COUNTS)
    assert len(BAD) == 22  # one file per kind of mistake; a new one adds a file here


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_file_loads_without_problems(path: Path) -> None:
    rules, problems = check(path)
    assert [str(p) for p in problems] == []
    counts = (len(rules.anomalies), len(rules.budgets), len(rules.thresholds), len(rules.absences))
    assert counts == GOOD_COUNTS[path.name]
    assert rules.files == (path,)


def test_good_directory_loads_as_one_rule_set() -> None:
    rules, problems = check(FIXTURES / "good")
    assert [str(p) for p in problems] == []
    assert len(rules) == sum(sum(c) for c in GOOD_COUNTS.values())
    assert len({r.name for r in rules.all}) == len(rules)


def test_good_files_parse_every_field_as_written() -> None:
    rules, _ = check(FIXTURES / "good")
    by_name = {r.name: r for r in rules.all}

    spike = by_name["user.key:spike_v2"]
    assert spike.select.ids == ("alice@example.com", "sk-alias-batch")
    assert (spike.select.regex, spike.select.team) == ("^(svc|bot)-", "team-search")
    assert (spike.sensitivity, spike.min_usd, spike.min_pct, spike.for_days) == ("high", 5.0, 40.0, 2)
    assert (spike.source, spike.severity, spike.labels) == ("prod", "critical", {"page": "yes", "owner": "platform"})

    # A selector written as a sub-table belongs to the rule above it.
    team = by_name["team-traffic-lost"]
    assert team.select.ids == ("team-ads", "Team Research") and team.select.labels == {"team": "team-ads"}
    assert by_name["mixed-user-week"].select.regex == r"@example\.com$"
    assert by_name["mixed-team-day"].select.ids == ("team-ads",)

    cycle = by_name["research-fortnight"]
    assert (cycle.parsed_period.kind, cycle.parsed_period.days, str(cycle.parsed_period.anchor)) == (
        "days",
        14,
        "2026-01-05",
    )
    assert cycle.thresholds == (50, 80, 100, 150.5)
    assert (cycle.soft_amount_usd, cycle.forecast_probability, cycle.timezone) == (450.0, 0.9, "America/New_York")
    assert str(by_name["sprint-keys"].anchor) == "2026-03-02"

    assert by_name["source-silent-2h"].for_ == "2h"
    assert by_name["source-silent-default"].for_ == "1h"
    stopped = by_name["provider-stopped-2d"]
    assert (stopped.for_days, stopped.min_daily_usd) == (2, 5.0)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_file_gives_exactly_its_expected_problem(path: Path) -> None:
    rules, problems = check(path)
    assert [str(p) for p in problems] == [expected_message(path)]
    # A file that fails contributes nothing, except that a duplicate keeps its first rule.
    assert len(rules) == (1 if path.name == "duplicate_name.toml" else 0)


def test_cli_check_reports_every_bad_file() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(FIXTURES / "bad")])
    assert result.exit_code == 2, result.output
    for path in BAD:
        assert expected_message(path) in result.stderr.splitlines(), path.name
    assert f"{len(BAD)} problem(s) in {len(BAD)} file(s)" in result.stderr
    assert result.stdout == ""


def test_cli_check_accepts_the_good_directory() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(FIXTURES / "good")])
    assert result.exit_code == 0, result.output
    assert "7 file(s), 26 rule(s) (5 anomaly, 9 budget, 5 threshold, 7 absence): all valid" in result.stdout
