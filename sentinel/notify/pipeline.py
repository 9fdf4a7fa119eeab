"""Delivery: outbox rows → the stages below → a receiver → the outcome, recorded.

    for each receiver with due rows (unless it is backing off after a failure):
      for each group, oldest first:
        claim (lease) ─▶ silence ─▶ inhibit ─▶ one line per alert ─▶ send ─▶ record
                                                                       ├ ok         rows sent
                                                                       ├ retryable  rows pending, receiver backs off
                                                                       └ permanent  rows failed (logged, kept)

The guarantee is at-least-once with dedup: a row is marked sent only after the receiver said so,
so a worker killed mid-send leaves a claim that expires and is sent again (at most one duplicate
per kill); a notice is queued once per (receiver, alert, episode, notice), so nothing else repeats. A
failing receiver holds its own queue, in order, and never delays the others.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlite_utils

from sentinel.config import DeliverySettings, parse_duration
from sentinel.notify.model import DeliveryResult, Notification, Outcome, Receiver
from sentinel.route.inhibit import InhibitRule, inhibited_by
from sentinel.route.silences import Silence, silenced_by
from sentinel.store import alerts as alert_store
from sentinel.store import outbox, transaction
from sentinel.store import silences as silence_store

log = logging.getLogger("sentinel.notify")


@dataclass
class Batch:
    """One group's claimed rows on their way through the stages."""

    receiver: str
    group_key: str
    rows: list[outbox.Row]
    muted: dict[str, list[int]] = field(default_factory=dict)  # "silenced" / "inhibited" -> row ids


@dataclass(frozen=True)
class Mutes:
    """What the mute stages read, loaded once per delivery pass."""

    silences: Sequence[Silence]
    inhibit: Sequence[InhibitRule]
    firing: Sequence[Mapping[str, str]]  # labels of every firing alert (inhibition sources)
    now: datetime


Stage = Callable[[Batch, Mutes], Batch]


def drop_silenced(batch: Batch, m: Mutes) -> Batch:
    keep = []
    for row in batch.rows:
        if silenced_by(row.alert.labels, m.silences, m.now) is not None:
            batch.muted.setdefault("silenced", []).append(row.id)
        else:
            keep.append(row)
    return replace(batch, rows=keep)


def drop_inhibited(batch: Batch, m: Mutes) -> Batch:
    keep = []
    for row in batch.rows:
        # Resolved notices are never inhibited: they close what was already said.
        if row.alert.status == "firing" and inhibited_by(row.alert.labels, m.firing, m.inhibit) is not None:
            batch.muted.setdefault("inhibited", []).append(row.id)
        else:
            keep.append(row)
    return replace(batch, rows=keep)


def latest_per_alert(batch: Batch, _m: Mutes) -> Batch:
    """One line per alert in a message: a firing and a resolved notice of the same alert queued
    together go out as the resolved one (the firing row is marked sent with it)."""
    last: dict[str, outbox.Row] = {}
    for row in batch.rows:
        last[row.fingerprint] = row
    return replace(batch, rows=[r for r in batch.rows if last[r.fingerprint] is r or r.alert.status == "resolved"])


STAGES: tuple[Stage, ...] = (drop_silenced, drop_inhibited, latest_per_alert)


@dataclass
class DeliveryReport:
    sent: int = 0  # notifications (messages)
    alerts_sent: int = 0  # outbox rows delivered
    retried: int = 0
    failed: int = 0
    muted: int = 0
    errors: list[str] = field(default_factory=list)


def retry_delay(failures: int, settings: DeliverySettings, hint: float | None, rng: random.Random) -> timedelta:
    """Exponential backoff, jittered down by up to a fifth (so receivers that failed together do not
    retry together, and retry_max is never exceeded), at least the receiver's own hint (Retry-After)."""
    first = parse_duration(settings.retry_initial).total_seconds()
    cap = parse_duration(settings.retry_max).total_seconds()
    delay = min(cap, first * 2 ** max(failures - 1, 0)) * rng.uniform(0.8, 1.0)
    return timedelta(seconds=max(delay, hint or 0.0))


def mutes(db: sqlite_utils.Database, inhibit: Sequence[InhibitRule], now: datetime) -> Mutes:
    firing = [dict(a.labels) for a in alert_store.load(db, status="firing").values()]
    return Mutes(silence_store.active(db, now), inhibit, firing, now)


def deliver(
    db: sqlite_utils.Database,
    receivers: Mapping[str, Receiver],
    settings: DeliverySettings,
    inhibit: Sequence[InhibitRule],
    now: datetime,
    *,
    rng: random.Random | None = None,
    stages: Sequence[Stage] = STAGES,
) -> DeliveryReport:
    """One delivery pass over the outbox at ``now``."""
    rng = rng or random.Random()
    report = DeliveryReport()
    lease = parse_duration(settings.lease)
    give_up = parse_duration(settings.give_up_after)
    with transaction(db):
        outbox.release_expired_claims(db, now)
    context = mutes(db, inhibit, now)
    for name in outbox.pending_receivers(db):
        receiver = receivers.get(name)
        if receiver is None:
            report.errors.append(f"receiver {name!r} is not configured; its notices stay queued")
            continue
        failures, retry_at = outbox.backoff(db, name)
        if retry_at is not None and retry_at > now:
            continue
        for group in outbox.due_groups(db, name, now):
            with transaction(db):
                held = set(outbox.claim(db, [r.id for r in group], now + lease))
            batch = Batch(name, group[0].group_key, [r for r in group if r.id in held])
            if not batch.rows:
                continue
            result = _send(batch, receiver, stages, context, db, now, report)
            if result is None or result.outcome is not Outcome.RETRYABLE:
                continue
            failures += 1
            delay = retry_delay(failures, settings, result.retry_after_s, rng)
            with transaction(db):
                outbox.set_backoff(db, name, failures, now + delay)
                expired = [r.id for r in batch.rows if now - r.created_at >= give_up]
                if expired:
                    outbox.finish(
                        db, expired, "failed", now, f"gave up after {settings.give_up_after}: {result.detail}"
                    )
                    report.failed += len(expired)
                    log.error("receiver %s: gave up on %d notice(s): %s", name, len(expired), result.detail)
            break  # keep this receiver's queue in order: nothing else goes out before these
        else:
            if failures:
                with transaction(db):
                    outbox.set_backoff(db, name, 0, None)
    return report


def _send(
    batch: Batch,
    receiver: Receiver,
    stages: Sequence[Stage],
    context: Mutes,
    db: sqlite_utils.Database,
    now: datetime,
    report: DeliveryReport,
) -> DeliveryResult | None:
    claimed = [r.id for r in batch.rows]
    for stage in stages:
        batch = stage(batch, context)
    sending = [r.id for r in batch.rows]
    superseded = [i for i in claimed if i not in sending and not any(i in ids for ids in batch.muted.values())]
    with transaction(db):
        for state, ids in batch.muted.items():
            outbox.finish(db, ids, state, now)
            outbox.record_attempt(db, batch.receiver, batch.group_key, ids, now, state, "", None, 0.0)
            report.muted += len(ids)
    if not batch.rows:
        if superseded:
            with transaction(db):
                outbox.finish(db, superseded, "sent", now)
        return None
    notification = Notification(
        receiver=batch.receiver,
        group_key=batch.group_key,
        group_labels=batch.rows[0].group_labels,
        alerts=tuple(r.alert for r in batch.rows),
        created_at=now,
    )
    started = time.monotonic()
    try:
        result = receiver.send(notification)
    except Exception as exc:  # a receiver must not raise; if one does, treat it as retryable
        result = DeliveryResult(Outcome.RETRYABLE, f"receiver raised {type(exc).__name__}")
    took = round((time.monotonic() - started) * 1000, 3)
    with transaction(db):
        outbox.record_attempt(
            db, batch.receiver, batch.group_key, sending, now, result.outcome.value, result.detail, result.status, took
        )
        if result.outcome is Outcome.OK:
            outbox.finish(db, sending + superseded, "sent", now)
            outbox.mark_group_sent(db, batch.receiver, batch.group_key, now)
            report.sent += 1
            report.alerts_sent += len(sending)
        elif result.outcome is Outcome.PERMANENT:
            outbox.finish(db, sending + superseded, "failed", now, result.detail)
            report.failed += len(sending)
            report.errors.append(f"receiver {batch.receiver!r}: {result.detail} (permanent; not retried)")
            log.error(
                "receiver %s: permanent failure, %d notice(s) not sent: %s", batch.receiver, len(sending), result.detail
            )
        else:
            outbox.release(db, sending + superseded, result.detail)
            report.retried += len(sending)
            log.warning("receiver %s: %s; will retry", batch.receiver, result.detail)
    return result
