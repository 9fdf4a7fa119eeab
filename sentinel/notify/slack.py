"""Slack: an incoming webhook, or a bot token posting with ``chat.postMessage``.

The message is built with slack-sdk's Block Kit models (``render.slack_blocks``). It is sent
through ``egress.outbound_client``, not slack-sdk's own HTTP: slack-sdk uses urllib, which follows
redirects and carries the ``Authorization`` header along to wherever a redirect points, outside
the allowlist. Through the guarded client a request goes only to the receiver's own origin, is
never redirected, never retried here (retrying is the pipeline's job), and is audited as
``receiver:<name>`` with an incoming webhook's path (its credential) shown as ``/***``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from sentinel import logs
from sentinel.config import SlackReceiver
from sentinel.egress import AuditSink, OutboundGuard, outbound_client, redact
from sentinel.notify import render
from sentinel.notify.http import post
from sentinel.notify.model import DeliveryResult, Notification, Outcome, http_result, retry_after_seconds

# Web API errors worth another try (api.slack.com/methods/chat.postMessage#errors); any other
# error code (invalid_auth, not_authed, channel_not_found, ...) will not fix itself.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CODE = re.compile(r"^[a-z0-9_]{1,64}$")  # Slack's error codes are shown as they are; other text is not


def classify(status: int, error: str | None, headers: Mapping[str, str]) -> DeliveryResult:
    """What Slack's answer means for delivery. ``error``: the Web API's ``error`` field, or the body
    of an incoming webhook's non-2xx answer (``invalid_token``, ``no_service``, ...)."""
    code = error if error and _CODE.match(error) else None
    detail = f"HTTP {status}" + (f" {code}" if code else "")
    if code in RETRYABLE_ERRORS:
        return DeliveryResult(Outcome.RETRYABLE, detail, status, retry_after_seconds(headers.get("Retry-After")))
    if 200 <= status < 300 and error:  # the Web API answers 200 with ok: false
        return DeliveryResult(Outcome.PERMANENT, detail, status)
    return http_result(status, headers.get("Retry-After"), detail)


class SlackNotifier:
    """Sends a notification to one Slack receiver. ``send`` never raises."""

    def __init__(
        self,
        settings: SlackReceiver,
        guard: OutboundGuard,
        audit: AuditSink,
        environ: Mapping[str, str] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        env = None if environ is None else dict(environ)
        self.name = settings.name
        self._channel = settings.channel
        hook = settings.webhook_url(env)
        token = settings.bot_token(env)
        self._headers = {"Content-Type": "application/json; charset=utf-8"}
        secrets: list[str] = []
        if hook is not None:
            self._url = hook.get_secret_value()
            # The whole URL is the credential, and so is its path (/services/T…/B…/<secret>).
            path = urlsplit(self._url).path
            secrets += [self._url, *([path] if len(path) > 1 else [])]
        else:
            assert token is not None  # the settings validate that one of the two is set
            secrets.append(token.get_secret_value())
            base = settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/"
            self._url = base + "chat.postMessage"
            self._headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        for secret in secrets:
            logs.register_secret(secret)
        self._secrets = tuple(secrets)
        self._client = outbound_client(
            guard,
            settings.name,
            self._secrets,
            settings.timeout_s,
            audit=audit,
            secret_url=hook is not None,
            inner=transport,
        )

    @property
    def mode(self) -> str:
        """``webhook`` (an incoming webhook) or ``bot`` (a bot token and ``chat.postMessage``)."""
        return "bot" if "Authorization" in self._headers else "webhook"

    def payload(self, n: Notification) -> dict[str, Any]:
        return self._body(render.fallback_text(n), render.slack_blocks(n))

    def _body(self, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "blocks": blocks}
        if self.mode == "bot":
            body.update(channel=self._channel, unfurl_links=False, unfurl_media=False)
        return body

    def send(self, notification: Notification) -> DeliveryResult:
        try:
            body = self.payload(notification)
        except Exception as exc:  # a receiver never raises: every failure is a result
            return DeliveryResult(Outcome.RETRYABLE, self._clean(f"unexpected {type(exc).__name__}: {exc}"))
        return self._post(body)

    def post(self, text: str, blocks: list[dict[str, Any]]) -> DeliveryResult:
        """Post any message (``text`` and Block Kit ``blocks``) to this receiver, e.g. the weekly
        digest's summary; classified like ``send``. Never raises."""
        return self._post(self._body(text, blocks))

    def _post(self, body: dict[str, Any]) -> DeliveryResult:
        try:
            content = json.dumps(body).encode()
        except Exception as exc:  # a message that cannot be encoded will not encode on a retry either
            return DeliveryResult(Outcome.PERMANENT, self._clean(f"cannot encode the message: {exc}"))
        answer = post(self._client, self._url, content, self._headers, self._clean)
        if isinstance(answer, DeliveryResult):
            return answer
        return classify(answer.status_code, self._error_of(answer), answer.headers)

    def _error_of(self, response: httpx.Response) -> str | None:
        """None when Slack says it worked; else its error code (or some non-empty stand-in)."""
        if self.mode == "webhook":  # an incoming webhook answers 200 "ok", or an error code as text
            return None if response.is_success else response.text.strip() or "error"
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is True:
            return None
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return "unexpected_response" if response.is_success else "error"

    def close(self) -> None:
        self._client.close()

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)[:300]
