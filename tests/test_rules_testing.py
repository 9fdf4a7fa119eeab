"""The rule unit-test runner (sentinel/rules/testing.py) and `sentinel rules test`.

Test files are real TOML written into tmp_path; they evaluate the example rules in rules/ on a real store.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sentinel.cli import main
from sentinel.errors import RuleError
from sentinel.rules.testing import expand, run_file

RULES = Path(__file__).resolve().parents[1] / "rules"
EXAMPLE_TESTS = sorted((RULES / "tests").glob("*_test.toml"))


def flat(text: str) -> str:
    """Output with every run of whitespace as one space (rich wraps long lines at the console width)."""
    return " ".join(text.split())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["rules", "test", *args])


def test_the_examples_are_there() -> None:
    assert [p.name for p in EXAMPLE_TESTS] == ["anomalies_test.toml", "limits_test.toml"]


# -------------------------------------------------------------------------------------------- the examples
@pytest.mark.parametrize("path", EXAMPLE_TESTS, ids=lambda p: p.name)
def test_example_test_file_passes(path: Path) -> None:
    declared = [t["name"] for t in tomllib.loads(path.read_text())["test"]]
    results = list(run_file(path))
    assert [r.name for r in results] == declared
    assert [(r.name, r.diff) for r in results if not r.ok] == []
    # Passing is not vacuous: the files expect alerts, and those alerts fired.
    assert sum(len(r.fired) for r in results) > 0


def test_limits_example_fires_what_it_says() -> None:
    results = {r.name: r for r in run_file(RULES / "tests" / "limits_test.toml")}
    runaway = results["a runaway batch job trips the model, key and user limits at once"]
    assert sorted((a.rule, a.labels["entity_id"], a.severity) for a in runaway.fired) == [
        ("key-daily-ceiling", "sk-batch", "warning"),
        ("model-daily-ceiling", "gpt-4o", "critical"),
        ("user-daily-cap", "bob@example.com", "info"),  # the rule chose info
    ]
    assert results["a new month starts from zero"].fired == ()
    spent = results["the monthly budget is spent: critical, and no forecast any more"]
    assert [(a.rule, a.labels["signal"]) for a in spent.fired] == [("proxy-monthly", "threshold")]


def test_cli_runs_every_example_and_prints_pass_lines() -> None:
    result = invoke(*(str(p) for p in EXAMPLE_TESTS))
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    for path in EXAMPLE_TESTS:
        for case in tomllib.loads(path.read_text())["test"]:
            assert f"PASS {path}: {flat(case['name'])}" in text
    assert "FAIL" not in result.output


# -------------------------------------------------------------------------------------------- a failing test
WRONG = f"""\
rule_files = ["{RULES / "thresholds.toml"}"]
start = 2026-03-01

[[series]]
entity = "model"
id = "gpt-4o"
values = "20x9 180"

[[test]]
name = "a quiet day"
at = 2026-03-09T23:00:00Z

[[test]]
name = "the wrong limit expected"
at = 2026-03-10T23:00:00Z
[[test.alert]]
rule = "key-daily-ceiling"
entity_id = "sk-nobody"
"""


def test_a_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    path = tmp_path / "wrong_test.toml"
    path.write_text(WRONG)

    quiet, wrong = run_file(path)
    assert (quiet.name, quiet.ok, quiet.diff, quiet.fired) == ("a quiet day", True, "", ())
    assert (wrong.name, wrong.ok) == ("the wrong limit expected", False)
    assert [(a.rule, a.labels["entity_id"]) for a in wrong.fired] == [("model-daily-ceiling", "gpt-4o")]
    lines = wrong.diff.splitlines()
    assert lines[0] == "  - expected, did not fire: rule=key-daily-ceiling entity_id=sk-nobody"
    assert lines[1].startswith(
        "  + fired, not expected:    rule=model-daily-ceiling entity_type=model entity_id=gpt-4o severity=critical  # "
    )
    assert "$172.50" in lines[1]  # 23 of the day's 24 hours of $180
    assert len(lines) == 2

    result = invoke(str(path))
    assert result.exit_code == 1, result.output
    text = flat(result.stdout)
    assert f"PASS {path}: a quiet day" in text
    assert f"FAIL {path}: the wrong limit expected" in text
    assert "- expected, did not fire: rule=key-daily-ceiling entity_id=sk-nobody" in text
    assert "+ fired, not expected: rule=model-daily-ceiling entity_type=model entity_id=gpt-4o" in text
    assert "1 test(s) failed" in result.stderr


# -------------------------------------------------------------------------------------------- broken inputs
def test_a_missing_rule_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "missing_test.toml"
    path.write_text(WRONG.replace(str(RULES / "thresholds.toml"), "no-such-rules.toml"))

    with pytest.raises(RuleError) as caught:
        list(run_file(path))
    assert str(caught.value) == (
        f"{path}: rule file no-such-rules.toml not found (looked for {tmp_path.resolve() / 'no-such-rules.toml'})"
    )

    result = invoke(str(path))
    assert result.exit_code == 2, result.output
    assert flat(result.stderr) == flat(f"error: {caught.value}")
    assert "PASS" not in result.stdout


def test_an_invalid_rule_is_a_clear_error(tmp_path: Path) -> None:
    rules = tmp_path / "broken.toml"
    rules.write_text('schema_version = 1\n\n[[threshold]]\nname = "neg"\nentity = "model"\namount_usd = -1\n')
    path = tmp_path / "broken_test.toml"
    path.write_text(WRONG.replace(str(RULES / "thresholds.toml"), "broken.toml"))

    with pytest.raises(RuleError) as caught:
        list(run_file(path))
    problem = f"{rules.resolve()}:6: rule 'neg' amount_usd: Input should be greater than 0 (got -1)"
    assert str(caught.value) == f"{path}: the rules under test do not load:\n  {problem}"

    result = invoke(str(path))
    assert result.exit_code == 2, result.output
    assert f"error: {path}: the rules under test do not load:" in result.stderr
    assert problem in result.stderr


def test_an_invalid_test_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "typo_test.toml"
    path.write_text(WRONG.replace('values = "20x9 180"', 'values = "20x9 lots"'))

    result = invoke(str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}: not a valid rule test file:" in result.stderr
    assert "series.0.values: Value error, 'lots' is not a number or <number>x<count>" in result.stderr


# -------------------------------------------------------------------------------------------- expand
@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("5x3 7 0x2", [5, 5, 5, 7, 0, 0]),
        ("1.5", [1.5]),
        ("  2x2\n3  ", [2, 2, 3]),
        ("0x1 12.25x2", [0, 12.25, 12.25]),
    ],
)
def test_expand(text: str, values: list[float]) -> None:
    assert expand(text) == values


@pytest.mark.parametrize("text", ["", "   ", "5x", "x3", "five", "5x3x2", "1,5", "5*3", "5x0"])
def test_expand_rejects_bad_tokens(text: str) -> None:
    with pytest.raises(ValueError):
        expand(text)
