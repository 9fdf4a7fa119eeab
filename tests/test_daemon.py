"""The daemon's tick as a library: `run_once` with an injected clock against the simulator over
real HTTP, across simulated days: it polls, detects, delivers, survives a source outage and alerts
about it, and recovers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from simhelp import KEY, NOW, small_model

from sentinel.config import Settings
from sentinel.daemon import SOURCE_RULE, Daemon
from sentinel.simulator import SimulatorServer
from sentinel.simulator.server import Faults
from sentinel.store import outbox

RULES = """schema_version = 1

[[threshold]]
name = "proxy-daily"
entity = "total"
amount_usd = 0.01
period = "day"
severity = "info"
"""


def _settings(tmp_path: Path, url: str) -> Settings:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "limits.toml").write_text(RULES)
    return Settings(
        sources=({"name": "sim", "url": url, "api_key_env": "SIM_KEY", "timeout_s": 5},),
        store={"path": tmp_path / "s.db"},
        rules={"path": rules},
        sync={"max_attempts": 1, "retry_initial_s": 0.0},
        receivers=({"type": "jsonl", "name": "log", "path": tmp_path / "alerts.jsonl"},),
        route={"receiver": "log", "group_wait": "0s", "group_interval": "1m", "repeat_interval": "1d"},
        daemon={"initial_backfill_days": 20, "source_stale_after": "1h"},
        budgets={"proxy_budgets": False},  # only the rule under test fires
    )


def _lines(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_ticks_across_days_poll_alert_survive_an_outage_and_recover(tmp_path: Path) -> None:
    model = small_model(days=20, now=NOW)
    faults = Faults()
    with SimulatorServer(model, api_key=KEY, faults=faults).running() as url:
        clock = [NOW]
        daemon = Daemon(_settings(tmp_path, url), None, clock=lambda: clock[0], environ={"SIM_KEY": KEY})

        first = daemon.run_once(NOW)  # backfills 20 days, then evaluates
        assert first.polled == {"sim": "ok"} and first.errors == []
        days = daemon.store.conn.execute("SELECT COUNT(DISTINCT date) FROM daily_facts").fetchone()[0]
        assert days == 20
        assert [(x["alert"]["rule"], x["status"]) for x in _lines(tmp_path)] == [("proxy-daily", "firing")]

        # Six-hourly ticks into the next day: the poll reads the new day; the daily threshold of
        # the old day resolves and the new day's fires (its window is part of its fingerprint).
        for hours in (6, 12):
            clock[0] = NOW + timedelta(hours=hours)
            model.advance(clock[0])
            tick = daemon.run_once(clock[0])
            assert tick.polled == {"sim": "ok"}, tick.errors
        statuses = [(x["alert"]["rule"], x["status"]) for x in _lines(tmp_path)]
        # One message at 03:30: the new day's alert (firing first) and the old day's resolved notice.
        assert statuses == [("proxy-daily", "firing"), ("proxy-daily", "firing"), ("proxy-daily", "resolved")]

        # The proxy goes down: each tick records the error; after source_stale_after (1 h) without a
        # successful poll, one operator alert.
        faults.error_rate = 1.0
        down_at = clock[0]
        for minutes in (15, 30, 45, 75, 90):
            clock[0] = down_at + timedelta(minutes=minutes)
            tick = daemon.run_once(clock[0])
            assert tick.polled["sim"] != "ok"
        operator = [x for x in _lines(tmp_path) if x["alert"]["rule"] == SOURCE_RULE]
        assert [(x["status"], x["alert"]["labels"]["kind"]) for x in operator] == [("firing", "operator")]
        assert "no successful poll since" in operator[0]["alert"]["summary"]

        # Back up: the next tick polls, and the operator alert resolves.
        faults.error_rate = 0.0
        clock[0] += timedelta(minutes=15)
        tick = daemon.run_once(clock[0])
        assert tick.polled == {"sim": "ok"} and tick.errors == []
        operator = [x for x in _lines(tmp_path) if x["alert"]["rule"] == SOURCE_RULE]
        assert [x["status"] for x in operator] == ["firing", "resolved"]
        assert outbox.depth(daemon.store).keys() == {"sent"}
        healthy, why = daemon.healthy()
        assert healthy, why


def test_a_broken_rule_edit_keeps_the_running_rules_and_raises_an_operator_alert(tmp_path: Path) -> None:
    model = small_model(days=20, now=NOW)
    with SimulatorServer(model, api_key=KEY).running() as url:
        settings = _settings(tmp_path, url)
        daemon = Daemon(settings, None, clock=lambda: NOW, environ={"SIM_KEY": KEY})
        daemon.run_once(NOW)
        (tmp_path / "rules" / "limits.toml").write_text(RULES.replace("0.01", "-1"))
        tick = daemon.run_once(NOW + timedelta(minutes=15))
        assert [r.name for r in daemon.reloader.rules.thresholds] == ["proxy-daily"]  # still running
        rules = [x["alert"]["rule"] for x in _lines(tmp_path)]
        assert "sentinel-rules" in rules
        assert any("amount_usd" in e for e in tick.errors) or daemon.reloader.problems


def test_ticks_over_eight_days_send_exactly_one_digest_across_a_restart(tmp_path: Path) -> None:
    import email
    import email.policy
    import socket

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[email.message.EmailMessage] = []

        async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:
            raw = envelope.content  # type: ignore[attr-defined]
            self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    model = small_model(days=20, now=NOW)  # Thursday 2026-11-26; the digest is due Monday 30th at 09:00
    try:
        with SimulatorServer(model, api_key=KEY).running() as url:
            base = _settings(tmp_path, url)
            settings = Settings(
                **{
                    **base.model_dump(by_alias=True),
                    "receivers": (
                        *[r.model_dump() for r in base.receivers],
                        {
                            "type": "email",
                            "name": "mail",
                            "host": "127.0.0.1",
                            "port": port,
                            "security": "none",
                            "from_addr": "sentinel@example.com",
                            "to": ["finops@example.com"],
                        },
                    ),
                    "digest": {"receivers": ["mail"]},
                }
            )
            clock = [NOW]
            daemon = Daemon(settings, None, clock=lambda: clock[0], environ={"SIM_KEY": KEY})
            for step in range(1, 33):  # every 6 hours for 8 days, restarting the daemon half way
                clock[0] = NOW + timedelta(hours=6 * step)
                model.advance(clock[0])
                if step == 16:
                    daemon = Daemon(settings, None, clock=lambda: clock[0], environ={"SIM_KEY": KEY})
                tick = daemon.run_once(clock[0])
                assert not [e for e in tick.errors if e.startswith("digest")], tick.errors
    finally:
        smtp.stop()
    digests = [m for m in inbox.messages if str(m["Subject"]).startswith("LiteLLM spend, week of")]
    assert len(digests) == 1, [m["Subject"] for m in inbox.messages]
    kinds = {part.get_content_type() for part in digests[0].walk()}
    assert {"text/plain", "text/html", "image/png"} <= kinds
    rows = daemon.store.conn.execute("SELECT period, state FROM digests").fetchall()
    assert rows == [("2026-11-30T09:00:00+00:00", "sent")]


def test_a_config_reload_that_fails_keeps_the_running_config_and_raises_an_operator_alert(tmp_path: Path) -> None:
    from sentinel.config import load_settings
    from sentinel.daemon import CONFIG_RULE

    model = small_model(days=20, now=NOW)
    with SimulatorServer(model, api_key=KEY).running() as url:
        config = tmp_path / "config.toml"
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "limits.toml").write_text(RULES)
        good = (
            f'[store]\npath = "{tmp_path / "s.db"}"\n[rules]\npath = "{rules}"\n[budgets]\nproxy_budgets = false\n'
            f'[route]\nreceiver = "log"\n[[receivers]]\ntype = "jsonl"\nname = "log"\n'
            f'path = "{tmp_path / "alerts.jsonl"}"\n'
            f'[[sources]]\nname = "sim"\nurl = "{url}"\napi_key_env = "SIM_KEY"\n'
            "[daemon]\ninitial_backfill_days = 20\n"
        )
        config.write_text(good)
        daemon = Daemon(load_settings(config), config, clock=lambda: NOW, environ={"SIM_KEY": KEY})
        daemon.run_once(NOW)
        config.write_text(good + "[route.typo]\n")
        assert daemon.reload(NOW) is False
        assert daemon.settings.receivers[0].name == "log"  # the running config stays
        daemon.run_once(NOW + timedelta(minutes=15))
        operator = [x for x in _lines(tmp_path) if x["alert"]["rule"] == CONFIG_RULE]
        assert [x["status"] for x in operator] == ["firing"]
        assert "route.typo" in operator[0]["alert"]["summary"]
        config.write_text(good)
        assert daemon.reload(NOW + timedelta(minutes=20)) is True
        daemon.run_once(NOW + timedelta(minutes=30))
        operator = [x for x in _lines(tmp_path) if x["alert"]["rule"] == CONFIG_RULE]
        assert [x["status"] for x in operator] == ["firing", "resolved"]
