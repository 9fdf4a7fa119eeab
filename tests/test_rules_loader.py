"""The rule-file loader (sentinel/rules/loader.py, schema in sentinel/rules/schema.py).

Every file is real TOML written into tmp_path; every expected line number is counted by hand (1-based).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.errors import RuleError
from sentinel.rules.loader import Problem, RuleSet, check, load

EXAMPLE_RULES = Path(__file__).resolve().parents[1] / "rules"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def where(problem: Problem) -> tuple[str, int | None, str | None, str]:
    return problem.file.name, problem.line, problem.rule, problem.field


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# ---------------------------------------------------------------------------------------------------- the example
def test_example_rules_load_without_problems() -> None:
    rules, problems = check(EXAMPLE_RULES)
    assert problems == []
    assert rules.files == tuple(EXAMPLE_RULES / f for f in ("anomalies.toml", "budgets.toml", "thresholds.toml"))
    assert [(b.name, b.entity, b.period) for b in rules.budgets] == [
        ("proxy-monthly", "total", "month"),
        ("anthropic-monthly", "provider", "month"),
        ("user-daily-cap", "user", "day"),
        ("research-fortnightly", "team", "14d"),
    ]
    assert load(EXAMPLE_RULES) == rules
    assert load(EXAMPLE_RULES / "budgets.toml").budgets == rules.budgets


# ------------------------------------------------------------------------------------ every problem, all at once
FIELDS = """\
schema_version = 1

[[budget]]
name = "alpha"
entity = "team"
amount_usd = 10.0
colour = "red"

[[budget]]
name = "beta"
entity = "user"
amount_usd = 0
period = "fortnight"
timezone = "Mars/Olympus"

[[budget]]
name = "gamma"
entity = "key"
select = { regex = "(" }
amount_usd = 5.0
"""

SOFT = """\
schema_version = 1

[[budget]]
name = "fine"
entity = "provider"
amount_usd = 100.0

[[budget]]
name = "delta"
entity = "provider"
amount_usd = 100.0
soft_amount_usd = 100.0
"""

NO_VERSION = """\
# schema_version forgotten
[[budget]]
name = "theta"
entity = "total"
amount_usd = 1.0
"""

VERSION_2 = """\
# a file from the future
schema_version = 2
"""

SYNTAX = """\
schema_version = 1

[[budget]]
name = "iota"
entity = = "total"
"""

DUP_FIRST = """\
schema_version = 1

[[budget]]
name = "shared"
entity = "total"
amount_usd = 1.0
"""

DUP_SECOND = """\
# the second file to use the name
schema_version = 1

[[budget]]
name = "kappa"
entity = "team"
amount_usd = 2.0

[[budget]]
name = "shared"
entity = "team"
amount_usd = 3.0
"""

ALL_PROBLEMS = {
    ("a_fields.toml", 7, "alpha", "colour"),
    ("a_fields.toml", 12, "beta", "amount_usd"),
    ("a_fields.toml", 13, "beta", "period"),
    ("a_fields.toml", 14, "beta", "timezone"),
    ("a_fields.toml", 19, "gamma", "select.regex"),
    ("b_soft.toml", 12, "delta", "soft_amount_usd"),
    ("c_no_version.toml", None, None, "schema_version"),
    ("d_version_2.toml", 2, None, "schema_version"),
    ("e_syntax.toml", 5, None, "toml"),
    ("g_dup_second.toml", 10, "shared", "name"),
}


def write_all(directory: Path) -> None:
    write(directory, "a_fields.toml", FIELDS)
    write(directory, "b_soft.toml", SOFT)
    write(directory, "c_no_version.toml", NO_VERSION)
    write(directory, "d_version_2.toml", VERSION_2)
    write(directory, "e_syntax.toml", SYNTAX)
    write(directory, "f_dup_first.toml", DUP_FIRST)
    write(directory, "g_dup_second.toml", DUP_SECOND)


def test_check_reports_every_problem_across_files(tmp_path: Path) -> None:
    write_all(tmp_path)
    rules, problems = check(tmp_path)
    assert {where(p) for p in problems} == ALL_PROBLEMS
    assert len(problems) == len(ALL_PROBLEMS)
    assert all(p.file.parent == tmp_path for p in problems)
    # Files that fail contribute nothing; the valid ones load, the later duplicate is dropped.
    assert [b.name for b in rules.budgets] == ["shared", "kappa"]
    assert [f.name for f in rules.files] == [
        "a_fields.toml",
        "b_soft.toml",
        "c_no_version.toml",
        "d_version_2.toml",
        "e_syntax.toml",
        "f_dup_first.toml",
        "g_dup_second.toml",
    ]


def test_check_messages(tmp_path: Path) -> None:
    write_all(tmp_path)
    _, problems = check(tmp_path)
    messages = {(p.file.name, p.field): p.message for p in problems}
    assert messages["a_fields.toml", "colour"] == "unknown key"
    assert "greater than 0" in messages["a_fields.toml", "amount_usd"]
    assert "fortnight" in messages["a_fields.toml", "period"]
    assert "Mars/Olympus" in messages["a_fields.toml", "timezone"]
    assert "regular expression" in messages["a_fields.toml", "select.regex"]
    assert any(p.file.name == "b_soft.toml" and "below amount_usd" in p.message for p in problems)
    assert "schema_version = 1" in messages["c_no_version.toml", "schema_version"]
    assert "2" in messages["d_version_2.toml", "schema_version"]
    assert "not valid TOML" in messages["e_syntax.toml", "toml"]
    assert "duplicate" in messages["g_dup_second.toml", "name"]
    assert "f_dup_first.toml" in messages["g_dup_second.toml", "name"]


def test_load_raises_rule_error_naming_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a_fields.toml", FIELDS)
    write(tmp_path, "d_version_2.toml", VERSION_2)
    write(tmp_path, "e_syntax.toml", SYNTAX)
    write(tmp_path, "f_dup_first.toml", DUP_FIRST)
    write(tmp_path, "g_dup_second.toml", DUP_SECOND)
    with pytest.raises(RuleError) as raised:
        load(tmp_path)
    message = str(raised.value)
    assert message.startswith("8 problem(s) in rule files:")
    for name, line, detail in [
        ("a_fields.toml", 7, " rule 'alpha' colour: unknown key"),
        ("a_fields.toml", 12, " rule 'beta' amount_usd: "),
        ("a_fields.toml", 13, " rule 'beta' period: "),
        ("a_fields.toml", 14, " rule 'beta' timezone: "),
        ("a_fields.toml", 19, " rule 'gamma' select.regex: "),
        ("d_version_2.toml", 2, " schema_version: "),
        ("e_syntax.toml", 5, " toml: not valid TOML"),
        ("g_dup_second.toml", 10, " rule 'shared' name: duplicate rule name"),
    ]:
        assert f"{tmp_path / name}:{line}:{detail}" in message
    assert raised.value.exit_code == 2


def test_load_names_the_file_when_there_is_no_line(tmp_path: Path) -> None:
    write(tmp_path, "c_no_version.toml", NO_VERSION)
    with pytest.raises(RuleError, match="1 problem") as raised:
        load(tmp_path)
    assert f"{tmp_path / 'c_no_version.toml'}: schema_version: missing" in str(raised.value)


# --------------------------------------------------------------------------------------------- one problem at a time
HEAD = 'schema_version = 1\n\n[[budget]]\nname = "ok"\nentity = "total"\namount_usd = 1.0\n\n[[budget]]\n'
# HEAD holds lines 1-8: a valid first rule, then the header of a second rule on line 8; bodies start on line 9.

TEAM = 'name = "r"\nentity = "team"\n'  # lines 9-10 of a body
SINGLE = [
    # id, body after HEAD, line, rule, field, words in the message
    ("unknown-key", TEAM + 'amount_usd = 10.0\ncolour = "red"\n', 12, "r", "colour", "unknown key"),
    ("amount-zero", TEAM + "amount_usd = 0\n", 11, "r", "amount_usd", "greater than 0"),
    ("amount-negative", TEAM + "amount_usd = -5.0\n", 11, "r", "amount_usd", "greater than 0"),
    ("period-word", TEAM + 'amount_usd = 1.0\nperiod = "fortnight"\n', 12, "r", "period", "fortnight"),
    ("period-0d", TEAM + 'amount_usd = 1.0\nperiod = "0d"\n', 12, "r", "period", "between 1 and 366"),
    ("period-367d", TEAM + 'amount_usd = 1.0\nperiod = "367d"\n', 12, "r", "period", "between 1 and 366"),
    ("timezone", TEAM + 'amount_usd = 1.0\ntimezone = "Mars/Olympus"\n', 12, "r", "timezone", "Mars"),
    ("regex-inline", TEAM + 'select = { regex = "(" }\namount_usd = 1.0\n', 11, "r", "select.regex", "regular"),
    ("select-unknown", TEAM + 'select = { colour = "x" }\namount_usd = 1.0\n', 11, "r", "select.colour", "unknown"),
    ("entity-bad", 'name = "r"\nentity = "planet"\namount_usd = 1.0\n', 10, "r", "entity", "planet"),
    ("entity-missing", 'name = "r"\namount_usd = 1.0\n', 8, "r", "entity", "required"),  # the rule's header
    ("amount-missing", TEAM, 8, "r", "amount_usd", "required"),
    (
        "name-pattern",
        'name = "has space"\nentity = "team"\namount_usd = 1.0\n',
        9,
        "has space",
        "name",
        "letters, digits",
    ),
    ("thresholds-empty", TEAM + "amount_usd = 1.0\nthresholds = []\n", 12, "r", "thresholds", "percentages"),
    ("severity", TEAM + 'amount_usd = 1.0\nseverity = "urgent"\n', 12, "r", "severity", "urgent"),
    ("anchor", TEAM + 'amount_usd = 1.0\nanchor = "someday"\n', 12, "r", "anchor", "date"),
    ("probability", TEAM + "amount_usd = 1.0\nforecast_probability = 1.0\n", 12, "r", "forecast_probability", ""),
    # cross-field rules: the line of the field at fault, in this rule (not the file's first rule)
    ("soft-equal", TEAM + "amount_usd = 10.0\nsoft_amount_usd = 10.0\n", 12, "r", "soft_amount_usd", "below"),
    ("soft-above", TEAM + "amount_usd = 10.0\nsoft_amount_usd = 25.0\n", 12, "r", "soft_amount_usd", "below"),
    (
        "total-select",
        'name = "r"\nentity = "total"\nselect = { ids = ["x"] }\namount_usd = 1.0\n',
        11,
        "r",
        "select",
        "no select",
    ),
    (
        "provider-team",
        'name = "r"\nentity = "provider"\nselect = { team = "t" }\namount_usd = 1.0\n',
        11,
        "r",
        "select.team",
        "user and key",
    ),
    # a bad regex in a [budget.select] sub-table: the line of the regex key
    (
        "regex-subtable",
        'name = "r"\nentity = "key"\namount_usd = 1.0\n\n[budget.select]\nregex = "("\n',
        14,
        "r",
        "select.regex",
        "regular",
    ),
]


@pytest.mark.parametrize(
    ("body", "line", "rule", "field", "words"), [pytest.param(*row[1:], id=row[0]) for row in SINGLE]
)
def test_single_problem_location(tmp_path: Path, body: str, line: int, rule: str, field: str, words: str) -> None:
    write(tmp_path, "rules.toml", HEAD + body)
    rules, problems = check(tmp_path)
    problem = only(problems)
    assert where(problem) == ("rules.toml", line, rule, field)
    assert words in problem.message
    assert rules.budgets == ()


def test_soft_amount_below_amount_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, "rules.toml", HEAD + 'name = "r"\nentity = "team"\namount_usd = 10.0\nsoft_amount_usd = 9.99\n')
    rules, problems = check(tmp_path)
    assert problems == []
    assert [(b.name, b.soft_amount_usd) for b in rules.budgets] == [("ok", None), ("r", 9.99)]


def test_total_with_select_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "rules.toml", HEAD + 'name = "r"\nentity = "total"\nselect = { ids = ["x"] }\namount_usd = 1.0\n')
    rules, problems = check(tmp_path)
    problem = only(problems)
    assert (problem.file.name, problem.rule) == ("rules.toml", "r")
    assert "entity = 'total'" in problem.message and "no select" in problem.message
    assert rules.budgets == ()


@pytest.mark.parametrize("select", ['{ team = "t" }', '{ ids = ["openai"], team = "t" }'])
def test_select_team_on_provider_is_rejected(tmp_path: Path, select: str) -> None:
    write(tmp_path, "rules.toml", HEAD + f'name = "r"\nentity = "provider"\nselect = {select}\namount_usd = 1.0\n')
    rules, problems = check(tmp_path)
    problem = only(problems)
    assert (problem.file.name, problem.rule) == ("rules.toml", "r")
    assert "select.team applies to user and key budgets only" in problem.message
    assert rules.budgets == ()


@pytest.mark.parametrize("entity", ["user", "key"])
def test_select_team_on_user_and_key_is_accepted(tmp_path: Path, entity: str) -> None:
    write(
        tmp_path, "rules.toml", HEAD + f'name = "r"\nentity = "{entity}"\nselect = {{ team = "t" }}\namount_usd = 1.0\n'
    )
    rules, problems = check(tmp_path)
    assert problems == []
    assert rules.budgets[1].select.team == "t"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('schema_version = 1\n\n[[budget]]\nname = "x"\nentity = = "total"\n', 5),
        ('schema_version = 1\n[[budget]]\nname = "x\n', 3),  # unterminated string
        ('schema_version = 1\n[[budget]]\nname = "x"\nname = "y"\n', 4),  # a key twice
        ("schema_version = 1\n[[budget]\n", 2),
        ("schema_version = \n", 1),
    ],
)
def test_toml_syntax_error_line_comes_from_the_decoder(tmp_path: Path, text: str, line: int) -> None:
    write(tmp_path, "bad.toml", text)
    rules, problems = check(tmp_path)
    problem = only(problems)
    assert where(problem) == ("bad.toml", line, None, "toml")
    assert problem.message.startswith("not valid TOML")
    assert rules.budgets == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[[budget]]\nname = 'x'\nentity = 'total'\namount_usd = 1.0\n", None, "missing"),
        ("", None, "missing"),
        ("schema_version = 2\n", 1, "1"),
        ("# comment\n\nschema_version = 0\n", 3, "1"),
        ('schema_version = "1"\n', 1, "1"),
    ],
)
def test_schema_version(tmp_path: Path, text: str, line: int | None, words: str) -> None:
    write(tmp_path, "v.toml", text)
    _, problems = check(tmp_path)
    problem = only(problems)
    assert where(problem) == ("v.toml", line, None, "schema_version")
    assert words in problem.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    write(tmp_path, "top.toml", 'schema_version = 1\nbudgets_extra = true\n\n[[budget]]\nname = "x"\n')
    _, problems = check(tmp_path)
    assert ("top.toml", 2, None, "budgets_extra") in {where(p) for p in problems}


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    write(tmp_path, "dup.toml", HEAD + 'name = "ok"\nentity = "team"\namount_usd = 2.0\n')
    rules, problems = check(tmp_path)
    assert where(only(problems)) == ("dup.toml", 9, "ok", "name")
    assert [(b.name, b.entity) for b in rules.budgets] == [("ok", "total")]


def test_duplicate_names_across_files_report_the_later_file(tmp_path: Path) -> None:
    write(tmp_path, "b.toml", DUP_SECOND)
    write(tmp_path, "a.toml", DUP_FIRST)
    rules, problems = check(tmp_path)
    problem = only(problems)
    assert where(problem) == ("b.toml", 10, "shared", "name")
    assert str(tmp_path / "a.toml") in problem.message
    assert [(b.name, b.entity) for b in rules.budgets] == [("shared", "total"), ("kappa", "team")]


# --------------------------------------------------------------------------------------------- directories and files
def test_missing_directory_is_an_empty_rule_set(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    assert check(missing) == (RuleSet.empty(), [])
    assert load(missing) == RuleSet.empty()
    assert load(missing).budgets == ()


def test_empty_directory_is_an_empty_rule_set(tmp_path: Path) -> None:
    assert load(tmp_path) == RuleSet.empty()


def test_files_are_read_in_sorted_order(tmp_path: Path) -> None:
    for name, rule in [("c.toml", "third"), ("a.toml", "first"), ("b.toml", "second"), ("10.toml", "zeroth")]:
        write(
            tmp_path, name, f'schema_version = 1\n\n[[budget]]\nname = "{rule}"\nentity = "total"\namount_usd = 1.0\n'
        )
    write(tmp_path, "notes.txt", "not a rule file = [")
    write(tmp_path, "a.toml.bak", "not a rule file = [")
    (tmp_path / "dir.toml").mkdir()
    rules = load(tmp_path)
    assert [f.name for f in rules.files] == ["10.toml", "a.toml", "b.toml", "c.toml"]
    assert [b.name for b in rules.budgets] == ["zeroth", "first", "second", "third"]


def test_problems_follow_sorted_file_order(tmp_path: Path) -> None:
    write(tmp_path, "z.toml", VERSION_2)
    write(tmp_path, "m.toml", SYNTAX)
    write(tmp_path, "a.toml", NO_VERSION)
    _, problems = check(tmp_path)
    assert [p.file.name for p in problems] == ["a.toml", "m.toml", "z.toml"]


def test_a_single_file_path(tmp_path: Path) -> None:
    path = write(tmp_path, "one.toml", FIELDS)
    write(tmp_path, "other.toml", VERSION_2)
    rules, problems = check(path)
    assert rules.files == (path,)
    assert {p.file for p in problems} == {path}
    assert len(problems) == 5


def test_a_failing_file_leaves_nothing_half_loaded(tmp_path: Path) -> None:
    write(tmp_path, "mixed.toml", HEAD + 'name = "r"\nentity = "team"\namount_usd = 0\n')
    write(tmp_path, "good.toml", DUP_FIRST)
    rules, problems = check(tmp_path)
    assert [p.file.name for p in problems] == ["mixed.toml"]
    assert [b.name for b in rules.budgets] == ["shared"]
    assert [f.name for f in rules.files] == ["good.toml", "mixed.toml"]


def test_problem_str() -> None:
    assert (
        str(Problem(Path("r/a.toml"), 7, "alpha", "colour", "unknown key"))
        == "r/a.toml:7: rule 'alpha' colour: unknown key"
    )
    assert (
        str(Problem(Path("r/a.toml"), None, None, "schema_version", "missing")) == "r/a.toml: schema_version: missing"
    )


def test_rules_check_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sentinel.cli import main

    runner = CliRunner()
    example = Path(__file__).resolve().parents[1] / "rules"
    ok = runner.invoke(main, ["rules", "check", str(example)])
    assert ok.exit_code == 0
    assert "3 file(s), 11 rule(s) (3 anomaly, 4 budget, 2 threshold, 2 absence): all valid" in ok.output
    write(tmp_path, "a_fields.toml", FIELDS)
    bad = runner.invoke(main, ["rules", "check", str(tmp_path)])
    assert bad.exit_code == 2
    assert "a_fields.toml:" in bad.output and "colour: unknown key" in bad.output
    missing = runner.invoke(main, ["rules", "check", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such file" in missing.output
