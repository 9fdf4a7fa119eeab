"""A full alerting run with failing receivers: no webhook URL, bot token, SMTP password, HMAC
secret or proxy key appears in any log line, any error, the store or the files it writes."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from alerthelp import store_with_series
from fakeslack import FakeSlack, Reply, Seen

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "SLACK_HOOK": "/services/T0SECRET/B0SECRET/xoxwebhooksecret42",
    "SLACK_TOKEN": "xoxb-1234-5678-secret-bot-token",
    "SMTP_PASSWORD": "smtp-pass-very-secret-9981",
    "HOOK_HMAC": "hmac-shared-secret-77c1",
    "HOOK_URL": "/hooks/secret-path-token-31337",
}


class _Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def _auth_fails(_server: object, _session: object, _envelope: object, _mechanism: str, _auth: object) -> object:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=False, handled=False)


def test_no_secret_in_logs_errors_store_or_files(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    start = datetime.now(UTC).date() - timedelta(days=58)  # the CLI runs at the real now
    series = [{"entity": "user", "id": "alice@example.com", "team": "team-search", "values": "12x57 95 104"}]
    store_with_series(store, series, start, start + timedelta(days=58)).conn.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    smtp = Controller(_Sink(), hostname="127.0.0.1", port=port, authenticator=_auth_fails, auth_require_tls=False)
    smtp.start()

    def slack(seen: Seen) -> Reply:
        if seen.path.endswith("chat.postMessage"):
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        return Reply(500, "internal error")

    try:
        with FakeSlack(slack) as fake:
            env = {
                **os.environ,
                "SLACK_HOOK": fake.url + SECRETS["SLACK_HOOK"],
                "SLACK_TOKEN": SECRETS["SLACK_TOKEN"],
                "SMTP_PASSWORD": SECRETS["SMTP_PASSWORD"],
                "HOOK_HMAC": SECRETS["HOOK_HMAC"],
                "HOOK_URL": fake.url + SECRETS["HOOK_URL"],
                "SENTINEL_LOGGING__LEVEL": "DEBUG",
            }
            config = tmp_path / "config.toml"
            config.write_text(
                f"""
[store]
path = "{store}"
[rules]
path = "{ROOT / "rules" / "anomalies.toml"}"
[route]
receiver = "hook"
group_wait = "0s"
[[route.routes]]
matchers = ['severity=~"warning|critical"']
receiver = "slack-hook"
continue = true
[[route.routes]]
matchers = ['severity=~"warning|critical"']
receiver = "slack-bot"
continue = true
[[route.routes]]
matchers = ['severity=~"warning|critical"']
receiver = "mail"
continue = true
[[route.routes]]
matchers = ['severity=~"warning|critical"']
receiver = "hook"
[[receivers]]
type = "slack"
name = "slack-hook"
webhook_url_env = "SLACK_HOOK"
[[receivers]]
type = "slack"
name = "slack-bot"
bot_token_env = "SLACK_TOKEN"
channel = "#finops"
api_url = "{fake.url}/api/"
[[receivers]]
type = "email"
name = "mail"
host = "127.0.0.1"
port = {port}
security = "none"
username = "sentinel"
password_env = "SMTP_PASSWORD"
from_addr = "sentinel@example.com"
to = ["finops@example.com"]
[[receivers]]
type = "webhook"
name = "hook"
url_env = "HOOK_URL"
hmac_secret_env = "HOOK_HMAC"
"""
            )
            runs = [
                subprocess.run(
                    [sys.executable, "-m", "sentinel", "-c", str(config), *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                for args in (
                    ["evaluate"],
                    ["deliver"],
                    ["notify", "test", "slack-hook"],
                    ["notify", "test", "slack-bot"],
                    ["notify", "test", "mail"],
                    ["alerts", "--all", "--format", "json"],
                )
            ]
            requests = list(fake.requests)
    finally:
        smtp.stop()

    assert runs[0].returncode == 1, runs[0].stderr  # permanent failures: invalid_auth, 535
    assert any(r.path.endswith(SECRETS["HOOK_URL"]) for r in requests)  # the webhook really was called
    assert any(r.path.endswith("chat.postMessage") for r in requests)
    assert "invalid_auth" in runs[0].stderr + runs[3].stderr
    texts = [r.stdout + r.stderr for r in runs]
    conn = sqlite3.connect(store)
    texts.append("\n".join(conn.iterdump()))
    conn.close()
    assert "delivery_attempts" in texts[-1] and "audit_log" in texts[-1]
    for text in texts:
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked"
