"""Hot reload of rule files: edits are picked up, a bad edit keeps the running rules and raises an
operator alert naming the problem, the next good load resolves it."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from alerthelp import store_with_series, webhook_settings
from fakeslack import FakeSlack

from sentinel.alerting import run_cycle
from sentinel.notify.receivers import build_all
from sentinel.rules.reload import OPERATOR_RULE, RuleReloader

GOOD = 'schema_version = 1\n\n[[threshold]]\nname = "team-day"\nentity = "team"\namount_usd = {amount}\n'
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _write(path: Path, text: str, tick: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(tick * 10**9, tick * 10**9))  # a distinct mtime for each edit


def test_an_edit_is_picked_up_and_a_bad_edit_keeps_the_old_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    _write(rules / "limits.toml", GOOD.format(amount=100.0), 1)
    reloader = RuleReloader(rules)
    assert reloader.poll(NOW) is True
    assert [t.amount_usd for t in reloader.rules.thresholds] == [100.0]
    assert reloader.poll(NOW) is False  # nothing changed: no reload
    assert reloader.operator_alerts(NOW) == []

    _write(rules / "limits.toml", GOOD.format(amount=50.0), 2)
    assert reloader.poll(NOW + timedelta(minutes=1)) is True
    assert [t.amount_usd for t in reloader.rules.thresholds] == [50.0]

    _write(rules / "limits.toml", GOOD.format(amount=-5), 3)
    assert reloader.poll(NOW + timedelta(minutes=2)) is False
    assert [t.amount_usd for t in reloader.rules.thresholds] == [50.0]  # still running the last good rules
    [alert] = reloader.operator_alerts(NOW + timedelta(minutes=3))
    assert alert.rule == OPERATOR_RULE and alert.severity == "critical" and alert.labels["kind"] == "operator"
    assert "limits.toml:6: rule 'team-day' amount_usd: Input should be greater than 0" in alert.summary
    assert alert.starts_at == NOW + timedelta(minutes=2)

    # A forced reload (SIGHUP) of the same bad file changes nothing.
    assert reloader.poll(NOW + timedelta(minutes=4), force=True) is False
    assert reloader.operator_alerts(NOW)[0].starts_at == NOW + timedelta(minutes=2)

    _write(rules / "limits.toml", GOOD.format(amount=75.0), 4)
    assert reloader.poll(NOW + timedelta(minutes=5)) is True
    assert [t.amount_usd for t in reloader.rules.thresholds] == [75.0]
    assert reloader.operator_alerts(NOW) == []


def test_the_operator_alert_is_routed_and_resolved_like_any_other(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    _write(rules / "limits.toml", GOOD.format(amount=100.0), 1)
    db = store_with_series(
        tmp_path / "s.db", [{"entity": "team", "id": "t1", "values": "10x60"}], date(2026, 1, 5), date(2026, 3, 5)
    )
    reloader = RuleReloader(rules)
    reloader.poll(NOW)
    with FakeSlack() as hook:
        settings = webhook_settings(hook.url + "/hook")
        receivers = build_all(settings.receivers, lambda _r: None)
        _write(rules / "limits.toml", "schema_version = 1\n[[threshold]\n", 2)
        reloader.poll(NOW)
        run_cycle(db, settings, reloader.rules, receivers, NOW, extra=reloader.operator_alerts(NOW))
        [sent] = [a for r in hook.requests for a in r.json()["alerts"]]
        assert sent["rule"] == OPERATOR_RULE and sent["status"] == "firing"
        assert "not valid TOML" in sent["summary"]
        _write(rules / "limits.toml", GOOD.format(amount=100.0), 3)
        later = NOW + timedelta(minutes=15)
        reloader.poll(later)
        run_cycle(db, settings, reloader.rules, receivers, later, extra=reloader.operator_alerts(later))
        statuses = [a["status"] for r in hook.requests for a in r.json()["alerts"]]
        assert statuses == ["firing", "resolved"]


def test_evaluate_with_a_broken_edit_runs_the_last_good_rules_and_raises_an_operator_alert(tmp_path: Path) -> None:
    """Each timer run is a new process: the last good rules come from the store."""
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from sentinel.cli import main

    today = datetime.now(UTC).date()
    rules = tmp_path / "rules"
    rules.mkdir()
    _write(rules / "limits.toml", GOOD.format(amount=100.0), 1)
    series = [{"entity": "team", "id": "t1", "values": "10x59 150"}]
    store_with_series(tmp_path / "s.db", series, today - timedelta(days=59), today).conn.close()
    config = tmp_path / "config.toml"
    runner = CliRunner()
    with FakeSlack() as hook:
        config.write_text(
            f'[store]\npath = "{tmp_path / "s.db"}"\n[rules]\npath = "{rules}"\n'
            f'[route]\nreceiver = "hook"\n[[receivers]]\ntype = "webhook"\nname = "hook"\nurl = "{hook.url}/h"\n'
        )
        first = runner.invoke(main, ["-c", str(config), "evaluate", "--format", "json"])
        assert first.exit_code == 0, first.output
        assert [a["rule"] for a in json.loads(first.stdout)["firing"]] == ["team-day"]

        _write(rules / "limits.toml", GOOD.format(amount=-5), 2)
        broken = runner.invoke(main, ["-c", str(config), "evaluate", "--format", "json"])
        assert broken.exit_code == 1, broken.output
        doc = json.loads(broken.stdout)
        assert sorted(a["rule"] for a in doc["firing"]) == [OPERATOR_RULE, "team-day"]  # team-day still runs
        assert any("amount_usd" in e for e in doc["errors"])
        sent = [(a["rule"], a["status"]) for r in hook.requests for a in r.json()["alerts"]]
        assert sent == [("team-day", "firing"), (OPERATOR_RULE, "firing")]

        _write(rules / "limits.toml", GOOD.format(amount=100.0), 3)
        fixed = runner.invoke(main, ["-c", str(config), "evaluate"])
        assert fixed.exit_code == 0, fixed.output
        # The resolved notice is queued; its group was messaged moments ago, so it waits out the
        # group interval (5 minutes) and goes with the next run.
        conn = sqlite3.connect(tmp_path / "s.db")
        queued = conn.execute("SELECT notice, state FROM outbox WHERE alert LIKE ?", (f"%{OPERATOR_RULE}%",)).fetchall()
        conn.close()
        assert queued == [("firing", "sent"), ("resolved", "pending")]


def test_evaluate_with_rules_that_never_loaded_is_an_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sentinel.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    _write(rules / "limits.toml", "schema_version = 2\n", 1)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "s.db"}"\n[rules]\npath = "{rules}"\n')
    result = CliRunner().invoke(main, ["-c", str(config), "evaluate"])
    assert result.exit_code == 2
    assert "no earlier good rules to run" in result.stderr and "limits.toml:1" in result.stderr
