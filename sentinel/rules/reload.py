"""Hot reload of rule files: pick up edits (a change of any file's size or mtime, or a SIGHUP that
forces a look), load with the one loader, and swap only when every file is valid.

A bad edit leaves the running rules untouched and raises an operator alert naming each problem;
the next good load resolves it. With a store, every good load is also kept in it, so a process
that starts while an edit is broken (a restart, each run of a timer) runs the last good rules.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlite_utils

from sentinel.errors import RuleError
from sentinel.notify.model import Alert
from sentinel.rules.evaluate import operator_alert
from sentinel.rules.loader import Problem, RuleSet, check, rule_files
from sentinel.store import transaction

OPERATOR_RULE = "sentinel-rules"


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for file in rule_files(path):
        try:
            st = file.stat()
        except OSError:
            continue
        out.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(out)


def save_snapshot(db: sqlite_utils.Database, files: tuple[Path, ...], now: datetime) -> None:
    texts = {f.name: f.read_text() for f in files}
    stored = dict(db.conn.execute("SELECT name, text FROM rule_snapshot").fetchall())
    if stored == texts:
        return
    with transaction(db):
        db.conn.execute("DELETE FROM rule_snapshot")
        db.conn.executemany(
            "INSERT INTO rule_snapshot (name, text, loaded_at) VALUES (?, ?, ?)",
            [(name, text, now.isoformat()) for name, text in texts.items()],
        )


def load_snapshot(db: sqlite_utils.Database) -> tuple[RuleSet, datetime] | None:
    """The last good rules kept in the store (loaded from a private copy of the files), if any."""
    rows = db.conn.execute("SELECT name, text, loaded_at FROM rule_snapshot ORDER BY name").fetchall()
    if not rows:
        return None
    with tempfile.TemporaryDirectory(prefix="sentinel-rules-") as tmp:
        for name, text, _at in rows:
            (Path(tmp) / name).write_text(text)
        rules, problems = check(Path(tmp))
    if problems:  # written by an older Sentinel whose rules this one no longer accepts
        return None
    return rules, datetime.fromisoformat(rows[0][2])


@dataclass
class RuleReloader:
    path: Path
    db: sqlite_utils.Database | None = None  # keep each good load here, and start from it
    rules: RuleSet = field(default_factory=RuleSet.empty)
    problems: list[Problem] = field(default_factory=list)  # of the last attempt that failed
    failed_since: datetime | None = None
    loaded_at: datetime | None = None
    _seen: tuple[tuple[str, int, int], ...] | None = None

    def poll(self, now: datetime, *, force: bool = False) -> bool:
        """Reload if the files changed (or ``force``); True when new rules were swapped in."""
        signature = _signature(self.path)
        if not force and signature == self._seen:
            return False
        self._seen = signature
        rules, problems = check(self.path)
        if problems:
            self.problems = problems
            self.failed_since = self.failed_since or now
            if self.loaded_at is None and self.db is not None:
                kept = load_snapshot(self.db)
                if kept is not None:
                    self.rules, self.loaded_at = kept
                    return True
            return False
        self.rules, self.problems, self.failed_since, self.loaded_at = rules, [], None, now
        if self.db is not None:
            save_snapshot(self.db, rules.files, now)
        return True

    def start(self, now: datetime) -> RuleReloader:
        """The first load of a process: the files, else the last good rules kept in the store;
        RuleError (every problem) when there are neither."""
        self.poll(now)
        if self.problems and self.loaded_at is None:
            raise RuleError(
                f"{len(self.problems)} problem(s) in rule files, and no earlier good rules to run:\n"
                + "\n".join(f"  {p}" for p in self.problems)
            )
        return self

    def operator_alerts(self, now: datetime) -> list[Alert]:
        """While the files on disk do not load: one critical alert naming every problem."""
        if not self.problems:
            return []
        lines = [str(p) for p in self.problems]
        since = self.loaded_at.isoformat() if self.loaded_at else "start"
        summary = (
            f"rule files under {self.path} do not load ({len(lines)} problem(s)); "
            f"still running the rules loaded at {since}: {lines[0]}"
        )
        record = {"problems": lines, "path": str(self.path)}
        return [operator_alert(OPERATOR_RULE, str(self.path), summary, self.failed_since or now, now, record)]
