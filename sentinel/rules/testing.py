"""Rule unit tests, promtool style: daily series per entity in, the alerts expected at given times out.

A test file (TOML)::

    rule_files = ["../rules/anomalies.toml"]   # relative to the test file
    start = 2026-01-01                           # the first day of every series

    [[series]]
    entity = "user"                              # provider | model | team | user | key
    id = "alice@example.com"
    team = "team-search"                         # optional: the user's (or key's) team
    values = "12x40 95 110"                      # dollars per UTC day; "<v>x<n>" repeats v n times
                                                 # (the day of ``at`` counts the part spent by then)

    [[test]]
    name = "a runaway user is flagged"
    at = 2026-02-11T23:00:00Z                    # when the evaluation runs (UTC)
    [[test.alert]]                               # every alert expected; none listed: nothing fires
    rule = "user-spend"
    entity_id = "alice@example.com"
    severity = "warning"                         # optional, like labels = { ... } (a subset)

The runner writes the series into a fresh SQLite store and evaluates the rules exactly as the
daemon does (``alerting.evaluate``), so a rule that passes here behaves the same in production.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentinel.config import QualitySettings, Settings
from sentinel.errors import RuleError
from sentinel.models import METRIC_FIELDS
from sentinel.notify.model import Alert
from sentinel.rules import loader
from sentinel.rules.loader import RuleSet
from sentinel.store import open_store, transaction

SOURCE = "test"
_REPEAT = re.compile(r"^(-?\d+(?:\.\d+)?)(?:x(\d+))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriesSpec(_Strict):
    entity: Literal["provider", "model", "team", "user", "key"]
    id: str
    alias: str | None = None
    team: str | None = None  # a user's or key's team
    user: str | None = None  # a key's owner
    values: str

    @field_validator("values")
    @classmethod
    def _values(cls, value: str) -> str:
        expand(value)
        return value


class ExpectedAlert(_Strict):
    rule: str
    entity_id: str | None = None
    entity_type: str | None = None
    severity: str | None = None
    labels: dict[str, str] = {}


class TestCase(_Strict):
    name: str
    at: datetime
    alert: tuple[ExpectedAlert, ...] = ()

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TestFile(_Strict):
    rule_files: tuple[str, ...] = Field(min_length=1)
    start: date
    series: tuple[SeriesSpec, ...] = Field(min_length=1)
    test: tuple[TestCase, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    diff: str
    fired: tuple[Alert, ...]


def expand(text: str) -> list[float]:
    """ "5x3 7 0x2" -> [5, 5, 5, 7, 0, 0]."""
    out: list[float] = []
    for token in text.split():
        found = _REPEAT.match(token)
        if not found:
            raise ValueError(f"{token!r} is not a number or <number>x<count>")
        out.extend([float(found.group(1))] * int(found.group(2) or 1))
    if not out:
        raise ValueError("no values")
    return out


def load_file(path: Path) -> tuple[TestFile, RuleSet]:
    try:
        spec = TestFile(**tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise RuleError(f"{path}: not a valid rule test file:\n" + "\n".join(lines)) from None
    problems = []
    rules = RuleSet.empty()
    merged: list[RuleSet] = []
    for name in spec.rule_files:
        target = (path.parent / name).resolve()
        found, file_problems = loader.check(target)
        if not found.files and not file_problems:
            raise RuleError(f"{path}: rule file {name} not found (looked for {target})")
        problems.extend(file_problems)
        merged.append(found)
    if problems:
        raise RuleError(f"{path}: the rules under test do not load:\n" + "\n".join(f"  {p}" for p in problems))
    rules = RuleSet(
        tuple(f for r in merged for f in r.files),
        tuple(b for r in merged for b in r.budgets),
        tuple(a for r in merged for a in r.anomalies),
        tuple(t for r in merged for t in r.thresholds),
        tuple(x for r in merged for x in r.absences),
    )
    return spec, rules


def write_series(db: sqlite_utils.Database, spec: TestFile, until: date, at: datetime | None = None) -> None:
    """The series as stored daily activity (days up to ``until``), plus the whole proxy's total.

    With ``at`` on the last day, that day holds only the part spent by then (spread evenly over
    the day), as a poll at ``at`` would see it: a test at noon sees half of the day's value."""
    elapsed = 1.0
    if at is not None and at.date() == until:
        elapsed = (at - datetime(until.year, until.month, until.day, tzinfo=UTC)).total_seconds() / 86400
    columns = ("source", "grain", "date", "entity_id", "detail_id", *METRIC_FIELDS)
    sql = f"INSERT INTO daily_facts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    totals: dict[str, dict[date, float]] = {}
    rows: list[tuple[object, ...]] = []
    for s in spec.series:
        for i, value in enumerate(expand(s.values)):
            day = spec.start + timedelta(days=i)
            if day > until:
                break
            if day == until:
                value *= elapsed
            # Tokens in proportion to spend, so no price change is seen unless a test wants one.
            tokens = value * 1000.0
            rows.append((SOURCE, s.entity, day.isoformat(), s.id, "", value, tokens, 0, 0, 0, 1, 1, 0))
            totals.setdefault(s.entity, {}).setdefault(day, 0.0)
            totals[s.entity][day] += value
    # The proxy's total: the finest complete breakdown given (users, else providers, teams, models, keys).
    basis = next((k for k in ("user", "provider", "team", "model", "key") if k in totals), None)
    for day, value in (totals.get(basis, {}) if basis else {}).items():
        rows.append((SOURCE, "total", day.isoformat(), "", "", value, value * 1000.0, 0, 0, 0, 1, 1, 0))
    with transaction(db):
        db.conn.executemany(sql, rows)
        for s in spec.series:
            if s.entity == "user":
                teams = f'["{s.team}"]' if s.team else "[]"
                db.conn.execute(
                    "INSERT OR REPLACE INTO users (source, user_id, alias, teams, seen_at) VALUES (?, ?, ?, ?, ?)",
                    (SOURCE, s.id, s.alias, teams, until.isoformat()),
                )
            elif s.entity == "team":
                db.conn.execute(
                    "INSERT OR REPLACE INTO teams (source, team_id, alias, seen_at) VALUES (?, ?, ?, ?)",
                    (SOURCE, s.id, s.alias, until.isoformat()),
                )
            elif s.entity == "key":
                db.conn.execute(
                    "INSERT OR REPLACE INTO keys (source, token, alias, user_id, team_id, seen_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (SOURCE, s.id, s.alias, s.user, s.team, until.isoformat()),
                )


def _matches(exp: ExpectedAlert, alert: Alert) -> bool:
    labels = alert.labels
    return (
        exp.rule == alert.rule
        and exp.entity_id in (None, labels.get("entity_id"))
        and exp.entity_type in (None, labels.get("entity_type"))
        and exp.severity in (None, alert.severity)
        and all(labels.get(k) == v for k, v in exp.labels.items())
    )


def _describe_expected(exp: ExpectedAlert) -> str:
    parts = [f"rule={exp.rule}"]
    parts += [f"{k}={v}" for k, v in (("entity_type", exp.entity_type), ("entity_id", exp.entity_id)) if v]
    if exp.severity:
        parts.append(f"severity={exp.severity}")
    parts += [f"{k}={v}" for k, v in sorted(exp.labels.items())]
    return " ".join(parts)


def _describe_fired(alert: Alert) -> str:
    lb = alert.labels
    return (
        f"rule={alert.rule} entity_type={lb.get('entity_type', '')} entity_id={lb.get('entity_id', '')} "
        f"severity={alert.severity}  # {alert.summary}"
    )


def compare(expected: tuple[ExpectedAlert, ...], fired: list[Alert]) -> str:
    """'' when every expected alert fired and nothing else did; else a readable diff."""
    left = list(fired)
    missing = []
    for exp in expected:
        hit = next((a for a in left if _matches(exp, a)), None)
        if hit is None:
            missing.append(exp)
        else:
            left.remove(hit)
    if not missing and not left:
        return ""
    lines = []
    lines += [f"  - expected, did not fire: {_describe_expected(e)}" for e in missing]
    lines += [f"  + fired, not expected:    {_describe_fired(a)}" for a in left]
    return "\n".join(lines)


def run_file(path: Path) -> Iterator[Result]:
    """Each test of a file, evaluated on its own fresh store."""
    from sentinel.alerting import evaluate

    spec, rules = load_file(path)
    # The data-quality checks judge a proxy's data, not the rules: a test series that stops on every
    # entity at once (to test an absence) would read as a logging outage and hold the absence back.
    settings = Settings(quality=QualitySettings(enabled=False))
    for case in spec.test:
        with tempfile.TemporaryDirectory(prefix="sentinel-rules-test-") as tmp:
            db = open_store(Path(tmp) / "test.db")
            write_series(db, spec, case.at.date(), case.at)
            db.conn.execute(
                "INSERT INTO sync_state (source, last_poll_at, last_success_at) VALUES (?, ?, ?)",
                (SOURCE, case.at.isoformat(), case.at.isoformat()),
            )
            result = evaluate(db, settings, rules, case.at)
            db.conn.close()
        if result.errors:
            yield Result(case.name, False, "\n".join(f"  ! {e}" for e in result.errors), tuple(result.found))
            continue
        diff = compare(case.alert, result.found)
        yield Result(case.name, not diff, diff, tuple(result.found))
