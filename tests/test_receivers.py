"""Receivers against real local servers: Slack (a fake Slack API and incoming webhook on 127.0.0.1),
SMTP (aiosmtpd), a webhook endpoint that checks the HMAC signature, and a JSONL file."""

from __future__ import annotations

import email
import email.policy
import io
import json
import logging
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fakeslack import FakeSlack, Reply, Seen
from pydantic import TypeAdapter
from test_render import anomaly_alert, budget_alert, notification

from sentinel import logs
from sentinel.config import EmailReceiver, FileReceiver, ReceiverSettings, SlackReceiver, WebhookReceiver
from sentinel.egress import AuditRecord, OutboundGuard, allowed_origins, origin_of, outbound_client
from sentinel.errors import ConfigError, EgressRefused
from sentinel.notify import render
from sentinel.notify.email import EmailNotifier
from sentinel.notify.jsonl import FileNotifier
from sentinel.notify.model import DeliveryResult, Outcome
from sentinel.notify.receivers import build, build_all
from sentinel.notify.slack import SlackNotifier
from sentinel.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    sign,
    verify_signature,
)

TOKEN = "xoxb-1111-2222-s3cr3tT0k3nValue"
HOOK_PATH = "/services/T0001/B0002/hOoKs3cr3tPaRt"
HMAC_SECRET = "whsec-0123456789abcdef"
PASSWORD = "pw-correct-horse-battery"
FIXED = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)

_adapter: TypeAdapter[ReceiverSettings] = TypeAdapter(ReceiverSettings)


def receiver(**fields: Any) -> ReceiverSettings:
    return _adapter.validate_python(fields)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_secret(secrets: list[str], *things: object) -> None:
    text = "\n".join(repr(t) for t in things)
    for secret in secrets:
        assert secret not in text


# --------------------------------------------------------------------------------------- egress
def test_allowed_origins_come_from_receivers() -> None:
    env = {"HOOK": "https://hooks.slack.com" + HOOK_PATH, "TOKEN": TOKEN, "WH": "http://alerts.internal:8080/in?x=1"}
    settings = [
        receiver(type="slack", name="a", webhook_url_env="HOOK"),
        receiver(type="slack", name="b", bot_token_env="TOKEN", channel="#finops"),
        receiver(type="slack", name="c", bot_token_env="TOKEN", channel="#x", api_url="http://127.0.0.1:9999/api/"),
        receiver(type="webhook", name="d", url="https://Example.COM/hook"),
        receiver(type="webhook", name="e", url_env="WH"),
        receiver(type="email", name="f", host="smtp.example.com", from_addr="s@example.com", to=["a@example.com"]),
        receiver(type="jsonl", name="g", path="alerts.jsonl"),
    ]
    assert allowed_origins(settings, env) == {
        ("https", "hooks.slack.com", 443),
        ("https", "slack.com", 443),
        ("http", "127.0.0.1", 9999),
        ("https", "example.com", 443),
        ("http", "alerts.internal", 8080),
    }


def test_allowed_origins_rejects_a_bad_secret_url_without_showing_it() -> None:
    settings = [receiver(type="slack", name="a", webhook_url_env="HOOK")]
    with pytest.raises(ConfigError, match="receiver 'a'") as caught:
        allowed_origins(settings, {"HOOK": "ftp://hooks.example" + HOOK_PATH})
    assert HOOK_PATH not in str(caught.value)
    with pytest.raises(ConfigError, match="HOOK"):
        allowed_origins(settings, {})


def test_origin_of() -> None:
    assert origin_of("HTTPS://Hooks.Slack.com/services/x") == ("https", "hooks.slack.com", 443)
    assert origin_of("http://127.0.0.1:8080") == ("http", "127.0.0.1", 8080)
    for bad in ("file:///etc/passwd", "https://", "http://h:99999/"):
        with pytest.raises(EgressRefused):
            origin_of(bad)


def test_guard_refuses_other_methods_and_origins_and_audits() -> None:
    records: list[AuditRecord] = []
    guard = OutboundGuard([("https", "hooks.example", 443)])
    attempt = guard.check("https://hooks.example/in?token=abc", source="receiver:w", audit=records.append)
    attempt.finish(204, 0)
    with pytest.raises(EgressRefused, match="only POST"):
        guard.check("https://hooks.example/in", source="receiver:w", audit=records.append, method="GET")
    with pytest.raises(EgressRefused, match="not the origin of a configured receiver"):
        guard.check("https://hooks.example:8443/in", source="receiver:w", audit=records.append)
    with pytest.raises(EgressRefused) as caught:
        guard.check("http://evil.example" + HOOK_PATH, source="receiver:w", audit=records.append, secret_url=True)
    assert HOOK_PATH not in str(caught.value)
    assert [(r.method, r.path, r.query, r.status, r.outcome) for r in records] == [
        ("POST", "/in", "", 204, "ok"),
        ("GET", "/in", "", None, "refused"),
        ("POST", "/in", "", None, "refused"),
        ("POST", "/***", "", None, "refused"),
    ]


def test_outbound_client_does_not_follow_redirects() -> None:
    records: list[AuditRecord] = []
    with FakeSlack() as server:
        server.then(302, "", {"Location": server.url + "/elsewhere"})
        guard = OutboundGuard([origin_of(server.url)])
        with outbound_client(guard, "w", (), 5, audit=records.append) as client:
            response = client.post(server.url + "/in", content=b"{}")
    assert response.status_code == 302
    assert [s.path for s in server.requests] == ["/in"]
    assert [(r.source, r.status, r.outcome) for r in records] == [("receiver:w", 302, "ok")]


# ---------------------------------------------------------------------------------------- Slack
@dataclass
class SlackSetup:
    server: FakeSlack
    records: list[AuditRecord] = field(default_factory=list)

    def notifier(self, mode: str, *, allow: bool = True) -> SlackNotifier:
        if mode == "webhook":
            settings = receiver(type="slack", name="slack", webhook_url_env="HOOK", timeout_s=5)
        else:
            api = self.server.url + "/api/"
            settings = receiver(
                type="slack", name="slack", bot_token_env="TOKEN", channel="#finops", api_url=api, timeout_s=5
            )
        env = {"HOOK": self.server.url + HOOK_PATH, "TOKEN": TOKEN}
        origins = allowed_origins([settings], env) if allow else frozenset({("https", "slack.com", 443)})
        assert isinstance(settings, SlackReceiver)
        return SlackNotifier(settings, OutboundGuard(origins), self.records.append, env)

    @property
    def secrets(self) -> list[str]:
        return [TOKEN, HOOK_PATH, self.server.url + HOOK_PATH, "hOoKs3cr3tPaRt"]


@pytest.fixture
def slack() -> Iterator[SlackSetup]:
    with FakeSlack() as server:
        yield SlackSetup(server)


def test_slack_webhook_posts_blocks_and_fallback_text(slack: SlackSetup) -> None:
    n = notification(anomaly_alert(), budget_alert())
    result = slack.notifier("webhook").send(n)
    assert result.outcome is Outcome.OK and result.status == 200
    (seen,) = slack.server.requests
    assert (seen.method, seen.path) == ("POST", HOOK_PATH)
    body = seen.json()
    assert body["text"] == render.fallback_text(n)
    assert body["blocks"] == render.slack_blocks(n)
    assert body["blocks"][0]["type"] == "header"
    assert any("$1,234.56" in json.dumps(b) for b in body["blocks"])
    (rec,) = slack.records
    assert (rec.source, rec.method, rec.path, rec.query, rec.status, rec.outcome) == (
        "receiver:slack",
        "POST",
        "/***",
        "",
        200,
        "ok",
    )
    assert rec.bytes == 2  # "ok"
    assert_no_secret(slack.secrets, result, slack.records)


def test_slack_bot_posts_to_the_channel_with_the_token(slack: SlackSetup) -> None:
    n = notification(anomaly_alert())
    result = slack.notifier("bot").send(n)
    assert result.outcome is Outcome.OK
    (seen,) = slack.server.requests
    assert seen.path == "/api/chat.postMessage"
    assert seen.header("Authorization") == f"Bearer {TOKEN}"
    body = seen.json()
    assert body["channel"] == "#finops"
    assert body["text"] == render.fallback_text(n)
    assert body["blocks"] == render.slack_blocks(n)
    (rec,) = slack.records
    assert (rec.path, rec.status, rec.outcome) == ("/api/chat.postMessage", 200, "ok")
    assert_no_secret(slack.secrets, result, slack.records)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_429_is_retryable_with_retry_after(slack: SlackSetup, mode: str) -> None:
    body: Any = "rate_limited" if mode == "webhook" else {"ok": False, "error": "ratelimited"}
    slack.server.then(429, body, {"Retry-After": "7"})
    result = slack.notifier(mode).send(notification())
    assert result.outcome is Outcome.RETRYABLE
    assert result.retry_after_s == 7 and result.status == 429
    assert len(slack.server.requests) == 1  # slack-sdk's own retries are off
    assert [(r.status, r.outcome) for r in slack.records] == [(429, "http_error")]
    assert_no_secret(slack.secrets, result, slack.records)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_500_is_retryable_and_the_next_send_works(slack: SlackSetup, mode: str) -> None:
    slack.server.then(500, "<html>internal error</html>")
    notifier = slack.notifier(mode)
    first = notifier.send(notification())
    second = notifier.send(notification())
    assert (first.outcome, first.status) == (Outcome.RETRYABLE, 500)
    assert second.outcome is Outcome.OK
    assert len(slack.server.requests) == 2
    assert [r.status for r in slack.records] == [500, 200]


def test_slack_web_api_errors(slack: SlackSetup) -> None:
    notifier = slack.notifier("bot")
    slack.server.then(200, {"ok": False, "error": "invalid_token"})
    slack.server.then(200, {"ok": False, "error": "channel_not_found"})
    slack.server.then(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"})
    slack.server.then(403, {"ok": False, "error": "no_permission"})
    results = [notifier.send(notification()) for _ in range(4)]
    assert [(r.outcome, r.detail) for r in results] == [
        (Outcome.PERMANENT, "HTTP 200 invalid_token"),
        (Outcome.PERMANENT, "HTTP 200 channel_not_found"),
        (Outcome.RETRYABLE, "HTTP 200 ratelimited"),
        (Outcome.PERMANENT, "HTTP 403 no_permission"),
    ]
    assert results[2].retry_after_s == 3
    assert [(r.status, r.outcome) for r in slack.records] == [(200, "ok")] * 3 + [(403, "http_error")]
    assert_no_secret(slack.secrets, results, slack.records)


def test_slack_webhook_invalid_token_is_permanent(slack: SlackSetup) -> None:
    slack.server.then(403, "invalid_token")
    result = slack.notifier("webhook").send(notification())
    assert (result.outcome, result.detail) == (Outcome.PERMANENT, "HTTP 403 invalid_token")
    assert_no_secret(slack.secrets, result, slack.records)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_host_not_allowlisted_is_refused_before_sending(slack: SlackSetup, mode: str) -> None:
    result = slack.notifier(mode, allow=False).send(notification())
    assert result.outcome is Outcome.PERMANENT and "refused" in result.detail
    assert slack.server.requests == []
    assert [(r.status, r.outcome) for r in slack.records] == [(None, "refused")]
    assert slack.records[0].path == ("/***" if mode == "webhook" else "/api/chat.postMessage")
    assert_no_secret(slack.secrets, result, slack.records)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_down_is_retryable(mode: str) -> None:
    gone = FakeSlack()
    gone.close()  # the port is closed now: connection refused
    setup = SlackSetup(gone)
    result = setup.notifier(mode).send(notification())
    assert result.outcome is Outcome.RETRYABLE and result.detail.startswith("ConnectError")
    assert [(r.status, r.outcome) for r in setup.records] == [(None, "ConnectError")]
    assert_no_secret(setup.secrets, result, setup.records)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_redirects_are_not_followed_and_the_token_stays_home(slack: SlackSetup, mode: str) -> None:
    with FakeSlack() as elsewhere:
        slack.server.then(302, "", {"Location": elsewhere.url + "/collect"})
        result = slack.notifier(mode).send(notification())
    assert (result.outcome, result.status) == (Outcome.PERMANENT, 302)
    assert elsewhere.requests == []
    assert len(slack.server.requests) == 1


def test_slack_blocks_are_the_rendered_block_kit(slack: SlackSetup) -> None:
    n = notification(*(anomaly_alert(i, entity_id=f"team-{i}") for i in range(40)))
    assert slack.notifier("bot").send(n).ok
    body = slack.server.requests[0].json()
    assert len(body["blocks"]) <= 50 and body["unfurl_links"] is False
    assert slack.server.requests[0].header("Content-Type") == "application/json; charset=utf-8"


# -------------------------------------------------------------------------------------- webhook
@dataclass
class Endpoint:
    """A webhook endpoint that accepts only correctly signed requests (401 otherwise)."""

    server: FakeSlack
    records: list[AuditRecord] = field(default_factory=list)

    def notifier(
        self, *, path: str = "/hooks/sentinel", secret_url: bool = False, allow: bool = True
    ) -> WebhookNotifier:
        url = self.server.url + path
        fields: dict[str, Any] = {"type": "webhook", "name": "hook", "hmac_secret_env": "HMAC", "timeout_s": 5}
        fields.update({"url_env": "WH"} if secret_url else {"url": url})
        settings = receiver(**fields)
        env = {"HMAC": HMAC_SECRET, "WH": url}
        origins = allowed_origins([settings], env) if allow else frozenset({("https", "hooks.example", 443)})
        assert isinstance(settings, WebhookReceiver)
        return WebhookNotifier(settings, OutboundGuard(origins), self.records.append, env, clock=lambda: FIXED)


def verifying(seen: Seen) -> Reply:
    timestamp = seen.header(TIMESTAMP_HEADER) or ""
    if not verify_signature(HMAC_SECRET, timestamp, seen.body, seen.header(SIGNATURE_HEADER)):
        return Reply(401, "bad signature")
    return Reply(204, b"")


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with FakeSlack(respond=verifying) as server:
        yield Endpoint(server)


def test_webhook_is_signed_and_follows_the_schema(endpoint: Endpoint) -> None:
    n = notification(anomaly_alert(), budget_alert())
    result = endpoint.notifier().send(n)
    assert (result.outcome, result.status) == (Outcome.OK, 204)  # the endpoint verified the signature
    (seen,) = endpoint.server.requests
    assert seen.path == "/hooks/sentinel"
    assert seen.header("Content-Type") == "application/json"
    assert (seen.header("User-Agent") or "").startswith("litellm-sentinel/")
    assert seen.header(TIMESTAMP_HEADER) == str(int(FIXED.timestamp()))
    doc = seen.json()
    assert doc == render.to_json(n)
    assert doc["schema_version"] == 1 and doc["status"] == "firing" and len(doc["alerts"]) == 2
    assert doc["alerts"][1]["record"]["forecast"]["breach_eta"] == "2026-03-08T06:00:00+00:00"
    assert seen.body == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    (rec,) = endpoint.records
    assert (rec.source, rec.method, rec.path, rec.status, rec.outcome) == (
        "receiver:hook",
        "POST",
        "/hooks/sentinel",
        204,
        "ok",
    )


def test_a_tampered_body_fails_verification(endpoint: Endpoint) -> None:
    endpoint.notifier().send(notification())
    (seen,) = endpoint.server.requests
    timestamp, signature = seen.header(TIMESTAMP_HEADER) or "", seen.header(SIGNATURE_HEADER)
    assert verify_signature(HMAC_SECRET, timestamp, seen.body, signature)
    tampered = seen.body.replace(b"1234.56", b"1.23")
    assert tampered != seen.body
    assert not verify_signature(HMAC_SECRET, timestamp, tampered, signature)
    assert not verify_signature(HMAC_SECRET, str(int(timestamp) + 1), seen.body, signature)
    assert not verify_signature("another-secret", timestamp, seen.body, signature)
    assert not verify_signature(HMAC_SECRET, timestamp, seen.body, None)
    # And the endpoint itself turns the tampered request away.
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature or ""}
    answer = httpx.post(endpoint.server.url + "/hooks/sentinel", content=tampered, headers=headers)
    assert answer.status_code == 401


def test_sign_matches_the_documented_recipe() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(HMAC_SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(HMAC_SECRET, "1700000000", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (503, {"Retry-After": "30"}, Outcome.RETRYABLE, 30.0),
        (500, {}, Outcome.RETRYABLE, None),
        (429, {"Retry-After": "5"}, Outcome.RETRYABLE, 5.0),
        (408, {}, Outcome.RETRYABLE, None),
        (400, {}, Outcome.PERMANENT, None),
        (404, {}, Outcome.PERMANENT, None),
        (301, {"Location": "http://127.0.0.1:9/x"}, Outcome.PERMANENT, None),
    ],
)
def test_webhook_status_classification(
    endpoint: Endpoint, status: int, headers: dict[str, str], outcome: Outcome, retry_after: float | None
) -> None:
    endpoint.server.then(status, "nope", headers)
    result = endpoint.notifier().send(notification())
    assert (result.outcome, result.status, result.retry_after_s) == (outcome, status, retry_after)
    assert len(endpoint.server.requests) == 1  # never a retry or a redirect followed here


def test_webhook_outside_the_allowlist_is_refused_before_any_socket_opens() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    records: list[AuditRecord] = []
    settings = receiver(type="webhook", name="hook", url=f"http://127.0.0.1:{port}/in")
    assert isinstance(settings, WebhookReceiver)
    guard = OutboundGuard({("https", "hooks.example", 443)})
    try:
        result = WebhookNotifier(settings, guard, records.append).send(notification())
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    assert result.outcome is Outcome.PERMANENT and result.detail.startswith("refused")
    assert [(r.path, r.status, r.outcome) for r in records] == [("/in", None, "refused")]


def test_a_secret_webhook_url_is_never_shown(endpoint: Endpoint) -> None:
    secret_path = "/hooks/T0/" + "u" * 24
    endpoint.server.then(400, "no")
    result = endpoint.notifier(path=secret_path, secret_url=True).send(notification())
    assert result.outcome is Outcome.PERMANENT
    assert [(r.path, r.status) for r in endpoint.records] == [("/***", 400)]
    assert_no_secret([secret_path, HMAC_SECRET], result, endpoint.records)
    refused = endpoint.notifier(path=secret_path, secret_url=True, allow=False).send(notification())
    assert refused.outcome is Outcome.PERMANENT
    assert_no_secret([secret_path, HMAC_SECRET], refused, endpoint.records)


def test_webhook_down_or_silent_is_retryable() -> None:
    records: list[AuditRecord] = []
    down = receiver(type="webhook", name="hook", url=f"http://127.0.0.1:{closed_port()}/in", timeout_s=5)
    assert isinstance(down, WebhookReceiver)
    result = WebhookNotifier(down, OutboundGuard(allowed_origins([down])), records.append).send(notification())
    assert result.outcome is Outcome.RETRYABLE and result.detail.startswith("ConnectError")
    # A server that takes the connection and never answers: a timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/in"
        slow = receiver(type="webhook", name="hook", url=url, timeout_s=0.2)
        assert isinstance(slow, WebhookReceiver)
        timed_out = WebhookNotifier(slow, OutboundGuard(allowed_origins([slow])), records.append).send(notification())
    assert (timed_out.outcome, timed_out.detail) == (Outcome.RETRYABLE, "timeout")
    assert [r.outcome for r in records] == ["ConnectError", "ReadTimeout"]


# ---------------------------------------------------------------------------------------- email
@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bool]] = field(default_factory=list)  # from, to, over TLS
    data_reply: str = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), session.ssl is not None))
        return self.data_reply


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"sentinel", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    where = tmp_path_factory.mktemp("tls")
    key, crt = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


@dataclass
class Smtp:
    inbox: Inbox
    port: int


def start_smtp(**smtp_kwargs: Any) -> tuple[Controller, Smtp]:
    inbox = Inbox()
    port = closed_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    return controller, Smtp(inbox, port)


@pytest.fixture
def smtp_plain() -> Iterator[Smtp]:
    controller, smtp = start_smtp(authenticator=authenticator, auth_require_tls=False)
    yield smtp
    controller.stop()


def email_notifier(port: int, *, password: str = PASSWORD, **fields: Any) -> EmailNotifier:
    base: dict[str, Any] = {
        "type": "email",
        "name": "mail",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_addr": "Sentinel <sentinel@example.com>",
        "to": ["finops@example.com", "oncall@example.com"],
        "timeout_s": 5,
    }
    settings = receiver(**(base | fields))
    assert isinstance(settings, EmailReceiver)
    return EmailNotifier(settings, {"SMTP_PASSWORD": password})


def test_email_has_subject_addresses_and_both_parts(smtp_plain: Smtp) -> None:
    n = notification(anomaly_alert(), budget_alert())
    result = email_notifier(smtp_plain.port).send(n)
    assert result.outcome is Outcome.OK and result.status == 250
    (msg,) = smtp_plain.inbox.messages
    assert msg["Subject"] == render.title(n)
    assert msg["From"] == "Sentinel <sentinel@example.com>"
    assert msg["To"] == "finops@example.com, oncall@example.com"
    assert msg["Date"] and msg["Message-ID"] and msg["Auto-Submitted"] == "auto-generated"
    assert smtp_plain.inbox.envelopes[0][:2] == ("sentinel@example.com", ["finops@example.com", "oncall@example.com"])
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    text, page = plain.get_content(), rich.get_content()
    for number in ("$1,234.56", "$300.00", "+$934.56", "$850.00 of $1,000.00", "openai/gpt-4o"):
        assert number in text and number in page
    assert page.lstrip().startswith("<!doctype html>")


def test_email_message_id_is_stable_across_attempts(smtp_plain: Smtp) -> None:
    notifier = email_notifier(smtp_plain.port)
    n = notification(anomaly_alert())
    assert notifier.send(n).ok and notifier.send(n).ok
    first, second = smtp_plain.inbox.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@example.com>")


def test_email_login_right_and_wrong_password(smtp_plain: Smtp) -> None:
    fields = {"username": "sentinel", "password_env": "SMTP_PASSWORD"}
    good = email_notifier(smtp_plain.port, **fields).send(notification())
    assert good.outcome is Outcome.OK
    bad = email_notifier(smtp_plain.port, password="pw-wrong-horse", **fields).send(notification())
    assert (bad.outcome, bad.status) == (Outcome.PERMANENT, 535)
    assert "pw-wrong-horse" not in repr(bad) and PASSWORD not in repr(bad)
    assert len(smtp_plain.inbox.messages) == 1


def test_email_smtp_codes_are_classified(smtp_plain: Smtp) -> None:
    smtp_plain.inbox.data_reply = "451 4.3.0 try again later"
    later = email_notifier(smtp_plain.port).send(notification())
    assert (later.outcome, later.status) == (Outcome.RETRYABLE, 451)
    assert "try again later" in later.detail
    smtp_plain.inbox.data_reply = "554 5.7.1 rejected as spam"
    never = email_notifier(smtp_plain.port).send(notification())
    assert (never.outcome, never.status) == (Outcome.PERMANENT, 554)


def test_email_server_down_is_retryable() -> None:
    result = email_notifier(closed_port()).send(notification())
    assert result.outcome is Outcome.RETRYABLE and "ConnectionRefused" in result.detail


def test_email_starttls_with_a_private_ca(cert: tuple[Path, Path]) -> None:
    controller, smtp = start_smtp(
        tls_context=server_tls(cert), require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    try:
        fields = {"security": "starttls", "username": "sentinel", "password_env": "SMTP_PASSWORD"}
        trusted = email_notifier(smtp.port, ca_bundle=str(cert[0]), **fields).send(notification())
        untrusted = email_notifier(smtp.port, **fields).send(notification())  # system CAs only
    finally:
        controller.stop()
    assert trusted.outcome is Outcome.OK, trusted.detail
    assert [tls for _, _, tls in smtp.inbox.envelopes] == [True]
    assert untrusted.outcome is Outcome.PERMANENT and "not trusted" in untrusted.detail


def test_email_implicit_tls(cert: tuple[Path, Path]) -> None:
    controller, smtp = start_smtp(ssl_context=server_tls(cert))
    try:
        result = email_notifier(smtp.port, security="tls", ca_bundle=str(cert[0])).send(notification())
    finally:
        controller.stop()
    assert result.outcome is Outcome.OK, result.detail
    assert len(smtp.inbox.messages) == 1


# ---------------------------------------------------------------------------------------- JSONL
def test_jsonl_appends_one_line_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier":true}\n')
    settings = receiver(type="jsonl", name="file", path=str(path))
    assert isinstance(settings, FileReceiver)
    notifier = FileNotifier(settings)
    first = notification(anomaly_alert(1), anomaly_alert(2, status="resolved", ends_at=FIXED))
    assert notifier.send(first).ok
    assert notifier.send(notification(budget_alert())).ok
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"earlier": True}
    assert [(x["alert"]["fingerprint"], x["status"]) for x in lines[1:]] == [
        ("fp-anomaly-1", "firing"),
        ("fp-anomaly-2", "resolved"),
        ("fp-budget", "firing"),
    ]
    assert lines[1]["alert"] == render.to_json(first)["alerts"][0]  # type: ignore[index]
    assert {k for k in lines[1] if k != "alert"} == {k for k in render.to_json(first) if k != "alerts"}


def test_jsonl_failures_are_classified(tmp_path: Path) -> None:
    missing = receiver(type="jsonl", name="file", path=str(tmp_path / "no-such-dir" / "a.jsonl"))
    a_dir = receiver(type="jsonl", name="file", path=str(tmp_path))
    assert isinstance(missing, FileReceiver) and isinstance(a_dir, FileReceiver)
    assert FileNotifier(missing).send(notification()).outcome is Outcome.RETRYABLE  # a mount may come back
    assert FileNotifier(a_dir).send(notification()).outcome is Outcome.PERMANENT


# ------------------------------------------------------------------------------------ building
def test_build_all_maps_settings_and_registers_secrets(tmp_path: Path, slack: SlackSetup) -> None:
    env = {"TOKEN": TOKEN, "HMAC": HMAC_SECRET, "SMTP_PASSWORD": PASSWORD, "WH": slack.server.url + "/in/" + "w" * 20}
    settings = [
        receiver(type="slack", name="s", bot_token_env="TOKEN", channel="#c", api_url=slack.server.url + "/api/"),
        receiver(type="webhook", name="w", url_env="WH", hmac_secret_env="HMAC"),
        receiver(
            type="email",
            name="e",
            host="127.0.0.1",
            from_addr="s@example.com",
            to=["a@example.com"],
            username="sentinel",
            password_env="SMTP_PASSWORD",
        ),
        receiver(type="jsonl", name="f", path=str(tmp_path / "a.jsonl")),
    ]
    records: list[AuditRecord] = []
    built = build_all(settings, records.append, env)
    assert {name: type(r).__name__ for name, r in built.items()} == {
        "s": "SlackNotifier",
        "w": "WebhookNotifier",
        "e": "EmailNotifier",
        "f": "FileNotifier",
    }
    assert built["s"].send(notification()).ok and built["w"].send(notification()).ok
    guard = OutboundGuard(allowed_origins(settings, env))
    assert type(build(settings[3], guard=guard, audit=records.append)).__name__ == "FileNotifier"
    # Every secret read while building is scrubbed from log lines.
    stream = io.StringIO()
    logs.setup("INFO")
    root = logging.getLogger()
    handler = next(h for h in root.handlers if h.get_name() == "sentinel")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        logging.getLogger("sentinel.test").warning("leak %s %s %s %s", TOKEN, HMAC_SECRET, PASSWORD, env["WH"])
    finally:
        root.removeHandler(handler)
    line = stream.getvalue()
    assert "leak" in line
    assert_no_secret([TOKEN, HMAC_SECRET, PASSWORD, env["WH"]], line)


def test_build_all_fails_on_a_missing_secret() -> None:
    settings = [receiver(type="slack", name="s", bot_token_env="NOPE", channel="#c")]
    with pytest.raises(ConfigError, match="NOPE"):
        build_all(settings, lambda r: None, {})


def test_a_delivery_result_is_a_value() -> None:
    result = DeliveryResult(Outcome.RETRYABLE, "HTTP 503", 503, 30.0)
    assert not result.ok and DeliveryResult(Outcome.OK).ok
