"""A generic webhook: POST of the alert JSON (``render.to_json``), optionally signed with HMAC-SHA256.

Headers of every request:

- ``Content-Type: application/json``, ``User-Agent: litellm-sentinel/<version>``
- ``X-Sentinel-Timestamp``: Unix seconds when the request was signed
- ``X-Sentinel-Signature: sha256=<hex>`` (with a configured secret): HMAC-SHA256 with the secret as
  key over ``<timestamp>.`` followed by the raw body bytes. A receiver recomputes it over the
  bytes it received (:func:`verify_signature` is the reference) and should reject timestamps
  more than a few minutes old, so a captured request cannot be replayed later.

The request goes through ``egress.outbound_client``: only to the configured URL's origin, no
redirects, audited as ``receiver:<name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

import httpx

from sentinel import __version__, logs
from sentinel.clock import Clock, utc_now
from sentinel.config import WebhookReceiver
from sentinel.egress import AuditSink, OutboundGuard, outbound_client, redact
from sentinel.notify import render
from sentinel.notify.http import post
from sentinel.notify.model import DeliveryResult, Notification, Outcome, http_result

SIGNATURE_HEADER = "X-Sentinel-Signature"
TIMESTAMP_HEADER = "X-Sentinel-Timestamp"


def body_of(notification: Notification) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(render.to_json(notification), sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Sentinel-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}."`` + body."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str | bytes, timestamp: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``timestamp`` and ``body`` under ``secret``
    (compared in constant time). Check the timestamp's age separately."""
    if not header or not timestamp:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.strip().encode())


def classify(response: httpx.Response) -> DeliveryResult:
    return http_result(response.status_code, response.headers.get("Retry-After"))


class WebhookNotifier:
    """POSTs a notification to one webhook. ``send`` never raises."""

    def __init__(
        self,
        settings: WebhookReceiver,
        guard: OutboundGuard,
        audit: AuditSink,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        env = None if environ is None else dict(environ)
        self.name = settings.name
        self._clock = clock
        self._url = settings.target(env).get_secret_value()
        secret = settings.hmac_secret(env)
        self._secret = secret.get_secret_value() if secret is not None else None
        secret_url = settings.url is None  # read from url_env / url_credential: the URL is a credential
        secrets = [s for s in (self._url if secret_url else None, self._secret) if s]
        for value in secrets:
            logs.register_secret(value)
        self._secrets = tuple(secrets)
        self._client = outbound_client(
            guard, settings.name, self._secrets, settings.timeout_s, audit=audit, secret_url=secret_url, inner=transport
        )

    def send(self, notification: Notification) -> DeliveryResult:
        try:
            body = body_of(notification)
        except Exception as exc:  # a message that cannot be encoded will not encode on a retry either
            return DeliveryResult(Outcome.PERMANENT, self._clean(f"cannot encode the message: {exc}"))
        timestamp = str(int(self._clock().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"litellm-sentinel/{__version__}",
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        answer = post(self._client, self._url, body, headers, self._clean)
        return answer if isinstance(answer, DeliveryResult) else classify(answer)

    def close(self) -> None:
        self._client.close()

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)[:300]
