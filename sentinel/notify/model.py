"""The value types of notification: an alert, a group of alerts for one receiver, and the outcome of
one attempt to send it.

A receiver only sends and classifies the outcome (``ok`` / ``retryable`` / ``permanent``); silences,
inhibition, dedup, repeat, retry and recording are stages of the pipeline (``notify.pipeline``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

from sentinel.clock import utc_now

# The version of the alert JSON (webhook body, JSONL lines); bump on a breaking change.
ALERT_SCHEMA_VERSION = 1


class Outcome(StrEnum):
    OK = "ok"
    RETRYABLE = "retryable"  # try again later: timeouts, connection errors, 429, 5xx
    PERMANENT = "permanent"  # will never work as configured: bad token, 4xx, unknown channel


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""  # short and secret-free: "HTTP 429", "invalid_token", "250 OK"
    status: int | None = None  # HTTP or SMTP status code when there was one
    retry_after_s: float | None = None  # the receiver's own hint (Retry-After), if any

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class Alert:
    """One alert instance, firing or resolved, as routed and sent.

    ``fingerprint`` identifies the condition (rule + entity + direction) across cycles and restarts;
    ``starts_at`` tells one episode of it from the next.
    """

    fingerprint: str
    status: str  # firing | resolved
    rule: str
    severity: str  # info | warning | critical
    summary: str  # one line a person reads first
    labels: Mapping[str, str]  # what routing, grouping, silences and inhibition match on
    starts_at: datetime
    ends_at: datetime | None = None  # resolved alerts: when the condition ended
    # The numbers behind it: the anomaly / budget / threshold / absence record (README, "Alert JSON").
    record: Mapping[str, object] = field(default_factory=dict)
    # A one-shot alert (a budget signal: fired once per window) is not re-found by each evaluation;
    # it stays active until ``expires_at`` (the window's end) and then ends without a resolved notice.
    one_shot: bool = False
    expires_at: datetime | None = None

    @property
    def kind(self) -> str:
        return self.labels.get("kind", "")


@dataclass(frozen=True)
class Notification:
    """What one receiver is sent in one message: the alerts of one group."""

    receiver: str
    group_key: str  # e.g. 'rule="team-spend",team="search"'
    group_labels: Mapping[str, str]  # the group_by labels and their values
    alerts: tuple[Alert, ...]
    created_at: datetime
    test: bool = False  # `sentinel notify test`: say so in the message

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delay-seconds (``7``) or an HTTP date.

    None when absent or unreadable; never negative."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0) if text.replace(".", "", 1).isdigit() else _http_date_delay(text, now)
    except (TypeError, ValueError, OverflowError):
        return None


def http_result(status: int, retry_after: str | None, detail: str | None = None) -> DeliveryResult:
    """What an HTTP status means for delivery, for every receiver that speaks HTTP: 2xx delivered;
    408, 429 and 5xx worth another try (after ``Retry-After`` if given); a 3xx is not followed
    (it could leave the allowlisted host); any other 4xx will not fix itself."""
    shown = detail or f"HTTP {status}"
    if 200 <= status < 300:
        return DeliveryResult(Outcome.OK, shown, status)
    if status in (408, 429) or status >= 500:
        return DeliveryResult(Outcome.RETRYABLE, shown, status, retry_after_seconds(retry_after))
    if 300 <= status < 400:
        return DeliveryResult(Outcome.PERMANENT, f"{shown} (redirects are not followed)", status)
    return DeliveryResult(Outcome.PERMANENT, shown, status)


def _http_date_delay(text: str, now: datetime | None) -> float | None:
    moment = parsedate_to_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or utc_now())).total_seconds(), 0.0)


class Receiver(Protocol):
    """Sends one notification and says how it went. Never raises: every failure is a result."""

    name: str

    def send(self, notification: Notification) -> DeliveryResult: ...
