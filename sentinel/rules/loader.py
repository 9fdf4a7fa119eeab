"""Load every rule file of a directory, or report every problem at once (file, line, rule, field).

One loader for the CLI, the daemon and tests: a file that fails leaves nothing half-loaded.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sentinel.errors import RuleError
from sentinel.rules.schema import RULE_KINDS, AbsenceRule, AnomalyRule, AnyRule, BudgetRule, RuleFile, ThresholdRule
from sentinel.tomllines import line_of

# Fields named by the rule checks that compare several fields (schema.BudgetRule._consistent).
_CROSS_FIELD = ("soft_amount_usd", "select.team", "select")


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int | None
    rule: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        rule = f" rule {self.rule!r}" if self.rule else ""
        return f"{where}:{rule} {self.field}: {self.message}"


@dataclass(frozen=True)
class RuleSet:
    files: tuple[Path, ...]
    budgets: tuple[BudgetRule, ...]
    anomalies: tuple[AnomalyRule, ...] = ()
    thresholds: tuple[ThresholdRule, ...] = ()
    absences: tuple[AbsenceRule, ...] = ()

    @staticmethod
    def empty() -> RuleSet:
        return RuleSet((), ())

    @property
    def all(self) -> tuple[AnyRule, ...]:
        return (*self.anomalies, *self.budgets, *self.thresholds, *self.absences)

    def __len__(self) -> int:
        return len(self.all)


def rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        return []
    return sorted(p for p in path.glob("*.toml") if p.is_file())


def check(path: Path) -> tuple[RuleSet, list[Problem]]:
    """Parse every file under ``path`` (a file or a directory of ``*.toml``); never raises."""
    files = rule_files(path)
    problems: list[Problem] = []
    found: dict[str, list[AnyRule]] = {kind: [] for kind in RULE_KINDS}
    seen: dict[str, tuple[Path, int | None]] = {}
    for file in files:
        parsed, file_problems = _load_file(file)
        problems.extend(file_problems)
        if parsed is None:
            continue
        text = file.read_text()
        # In the order they are written, so the second of two same-named rules is the one reported.
        entries = [
            (line_of(text, [kind, str(i), "name"]) or 0, kind, rule)
            for kind in RULE_KINDS
            for i, rule in enumerate(getattr(parsed, kind))
        ]
        for line, kind, rule in sorted(entries, key=lambda e: e[0]):
            if rule.name in seen:
                other_file, other_line = seen[rule.name]
                where = f"line {other_line}" if other_file == file else f"{other_file}:{other_line}"
                problems.append(
                    Problem(file, line or None, rule.name, "name", f"duplicate rule name (also at {where})")
                )
                continue
            seen[rule.name] = (file, line or None)
            found[kind].append(rule)
    problems.sort(key=lambda p: (str(p.file), p.line or 0))
    rules = RuleSet(
        tuple(files),
        tuple(r for r in found["budget"] if isinstance(r, BudgetRule)),
        tuple(r for r in found["anomaly"] if isinstance(r, AnomalyRule)),
        tuple(r for r in found["threshold"] if isinstance(r, ThresholdRule)),
        tuple(r for r in found["absence"] if isinstance(r, AbsenceRule)),
    )
    return rules, problems


def load(path: Path) -> RuleSet:
    """The rules under ``path``, or RuleError listing every problem."""
    rules, problems = check(path)
    if problems:
        raise RuleError(f"{len(problems)} problem(s) in rule files:\n" + "\n".join(f"  {p}" for p in problems))
    return rules


def _load_file(file: Path) -> tuple[RuleFile | None, list[Problem]]:
    try:
        text = file.read_text()
    except OSError as exc:
        return None, [Problem(file, None, None, "file", f"cannot read: {exc.strerror}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        return None, [Problem(file, line, None, "toml", f"not valid TOML: {exc}")]
    try:
        return RuleFile(**data), []
    except ValidationError as exc:
        return None, [_problem(file, text, data, err) for err in exc.errors()]


def _problem(file: Path, text: str, data: dict[str, Any], err: Any) -> Problem:
    loc = [str(p) for p in err["loc"]]
    rule = None
    if len(loc) >= 2 and loc[1].isdigit():
        entries = data.get(loc[0])
        if isinstance(entries, list) and int(loc[1]) < len(entries) and isinstance(entries[int(loc[1])], dict):
            rule = entries[int(loc[1])].get("name")
    field = ".".join(p for p in loc[2:] if not p.isdigit()) if len(loc) > 2 else ".".join(loc) or "file"
    if len(loc) == 2 and loc[1].isdigit():
        # A check across fields reports the entry, not a field: name the field its message is about.
        named = next((f for f in _CROSS_FIELD if f in str(err["msg"])), None)
        if named:
            field = named
            loc = [loc[0], loc[1], *named.split(".")]
    if err["type"] == "missing" and loc == ["schema_version"]:
        message = "missing; start the file with schema_version = 1"
    elif err["type"] == "extra_forbidden":
        message = "unknown key"
        if len(loc) == 1:
            message += f" (known: schema_version, {', '.join(RULE_KINDS)})"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], dict | list) and repr(err["input"]) not in message:
            message += f" (got {err['input']!r})"
    return Problem(file, _line(text, loc), str(rule) if rule else None, field or loc[-1], message)


def _line(text: str, loc: list[str]) -> int | None:
    """Line of the deepest key of ``loc`` written on its own line (``select = { ... }`` is one line);
    a missing key points at its table's header."""
    if not loc:
        return None
    if len(loc) == 1:  # a top-level key, or a table header such as a misspelt [[budgets]]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(loc[0])}\s*\]\]?\s*(#.*)?$")
        headers = [i + 1 for i, ln in enumerate(text.splitlines()) if header.match(ln)]
        return line_of(text, loc) or (headers[0] if headers else None)
    if len(loc) < 3 or not loc[1].isdigit():
        return line_of(text, loc)
    lines = text.splitlines()
    for key in reversed([p for p in loc[2:] if not p.isdigit()]):
        line = line_of(text, [loc[0], loc[1], key])
        if line and re.match(rf"^\s*{re.escape(key)}\s*=", lines[line - 1]):
            return line
    return line_of(text, [loc[0], loc[1], loc[-1]])
