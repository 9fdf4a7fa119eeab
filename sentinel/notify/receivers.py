"""From receiver settings to the notifiers that send: one function for one, one for all of them.

Building reads every secret a receiver needs (so a rotated credential is picked up on reload) and
registers it with ``sentinel.logs``, so no log line can carry it; a secret that cannot be read is a
:class:`sentinel.errors.ConfigError` here, at build time, never a failure at send time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sentinel.config import EmailReceiver, FileReceiver, ReceiverSettings, SlackReceiver, WebhookReceiver
from sentinel.egress import AuditSink, OutboundGuard, allowed_origins
from sentinel.notify.email import EmailNotifier
from sentinel.notify.jsonl import FileNotifier
from sentinel.notify.model import Receiver
from sentinel.notify.slack import SlackNotifier
from sentinel.notify.webhook import WebhookNotifier


def build(
    settings: ReceiverSettings,
    *,
    guard: OutboundGuard,
    audit: AuditSink,
    environ: Mapping[str, str] | None = None,
) -> Receiver:
    """The notifier for one receiver's settings (its secrets read and registered for redaction)."""
    if isinstance(settings, SlackReceiver):
        return SlackNotifier(settings, guard, audit, environ)
    if isinstance(settings, EmailReceiver):
        return EmailNotifier(settings, environ)
    if isinstance(settings, WebhookReceiver):
        return WebhookNotifier(settings, guard, audit, environ)
    if isinstance(settings, FileReceiver):
        return FileNotifier(settings)
    raise TypeError(f"unknown receiver settings {type(settings).__name__}")


def build_all(
    settings_list: Iterable[ReceiverSettings],
    audit: AuditSink,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Receiver]:
    """Every configured receiver by name, sharing one outbound guard whose allowlist is the origins
    the receivers' own URLs name (``egress.allowed_origins``)."""
    receivers = tuple(settings_list)
    guard = OutboundGuard(allowed_origins(receivers, environ))
    return {r.name: build(r, guard=guard, audit=audit, environ=environ) for r in receivers}
