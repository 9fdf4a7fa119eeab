"""The alerting commands as an operator runs them: evaluate, deliver, alerts, silence, notify test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerthelp import store_with_series
from click.testing import CliRunner
from fakeslack import FakeSlack, Reply

from sentinel.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _setup(tmp_path: Path, hook_url: str) -> Path:
    today = datetime.now(UTC).date()
    series = [{"entity": "user", "id": "alice@example.com", "team": "team-search", "values": "12x57 95 104"}]
    store_with_series(tmp_path / "s.db", series, today - timedelta(days=58), today).conn.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "s.db"}"\n'
        f'[rules]\npath = "{ROOT / "rules" / "anomalies.toml"}"\n'
        '[route]\nreceiver = "hook"\ngroup_wait = "0s"\n'
        f'[[receivers]]\ntype = "webhook"\nname = "hook"\nurl = "{hook_url}"\n'
    )
    return config


def test_evaluate_sends_then_alerts_lists_and_a_silence_mutes(tmp_path: Path) -> None:
    runner = CliRunner()
    with FakeSlack() as hook:
        config = _setup(tmp_path, hook.url + "/hook")
        first = runner.invoke(main, ["-c", str(config), "evaluate", "--format", "json"])
        assert first.exit_code == 0, first.output
        doc = json.loads(first.stdout)
        rules = sorted(a["rule"] for a in doc["firing"])
        assert "user-spend-spike" in rules and doc["delivery"]["alerts_sent"] == len(rules)
        assert len(hook.requests) >= 1

        listed = runner.invoke(main, ["-c", str(config), "alerts"])
        assert listed.exit_code == 0 and "user-spend-spike" in listed.stdout and "sent" in listed.stdout

        added = runner.invoke(
            main,
            [
                "-c",
                str(config),
                "silence",
                "add",
                'entity_id="alice@example.com"',
                "-d",
                "2h",
                "-a",
                "ana",
                "-m",
                "test",
            ],
        )
        assert added.exit_code == 0, added.output
        silence_id = added.stdout.split()[1]
        shown = json.loads(runner.invoke(main, ["-c", str(config), "silence", "list", "--format", "json"]).stdout)
        assert [(s["id"], s["state"], s["author"]) for s in shown] == [(silence_id, "active", "ana")]

        bad = runner.invoke(main, ["-c", str(config), "silence", "add", 'rule=~".*"', "-a", "x", "-m", "y"])
        assert bad.exit_code == 2 and "mute everything" in bad.output

        expired = runner.invoke(main, ["-c", str(config), "silence", "expire", silence_id[:4]])
        assert expired.exit_code == 0 and f"silence {silence_id} expired" in expired.stdout
        assert json.loads(runner.invoke(main, ["-c", str(config), "silence", "list", "--format", "json"]).stdout) == []
        again = runner.invoke(main, ["-c", str(config), "silence", "expire", "nope"])
        assert again.exit_code == 2


def test_notify_test_reports_success_and_failure(tmp_path: Path) -> None:
    runner = CliRunner()
    with FakeSlack() as hook:
        config = _setup(tmp_path, hook.url + "/hook")
        ok = runner.invoke(main, ["-c", str(config), "notify", "test", "hook"])
        assert ok.exit_code == 0 and "receiver hook: sent" in ok.stdout
        body = hook.requests[-1].json()
        assert body["test"] is True and body["alerts"][0]["rule"] == "sentinel-test"
        hook.then(401, "no")
        failed = runner.invoke(main, ["-c", str(config), "notify", "test", "hook"])
        assert failed.exit_code == 1 and "permanent" in failed.stderr
        unknown = runner.invoke(main, ["-c", str(config), "notify", "test", "nope"])
        assert unknown.exit_code == 2 and "no receiver named 'nope'" in unknown.stderr


def test_deliver_retries_what_evaluate_could_not_send(tmp_path: Path) -> None:
    runner = CliRunner()
    with FakeSlack(lambda _seen: Reply(503, "down")) as hook:
        config = _setup(tmp_path, hook.url + "/hook")
        first = runner.invoke(main, ["-c", str(config), "evaluate"])
        assert first.exit_code == 0, first.output
        assert "to retry" in first.stdout
        status = json.loads(runner.invoke(main, ["-c", str(config), "alerts", "--format", "json"]).stdout)
        assert status["outbox"] == {"pending": len(status["alerts"])}
        hook.respond = lambda _seen: Reply(200, "ok")
        # The receiver backs off after a failure: deliver honours it, so clear the wait as time would.
        import sqlite3

        conn = sqlite3.connect(tmp_path / "s.db")
        conn.execute("UPDATE receiver_backoff SET retry_at = '2000-01-01T00:00:00+00:00'")
        conn.commit()
        conn.close()
        sent = runner.invoke(main, ["-c", str(config), "deliver"])
        assert sent.exit_code == 0 and f"sent {len(status['alerts'])} notice(s)" in sent.stdout
        status = json.loads(runner.invoke(main, ["-c", str(config), "alerts", "--format", "json"]).stdout)
        assert status["outbox"] == {"sent": len(status["alerts"])}
