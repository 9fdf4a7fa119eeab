"""Sending the weekly digest once per period: the ``digests`` table is the record, written first.

When a digest is due (the last scheduled time is at most ``LATE_LIMIT`` ago), one row per
audience × receiver is inserted as ``pending`` for the period, all in one transaction; then each
pending row is sent and marked ``sent``, or ``failed`` (a permanent failure, or ``MAX_ATTEMPTS``
retryable ones; a retryable failure before that stays pending for the next call). So:

- a period already sent is never sent again (the rows say ``sent``; ``--send --force`` overrides);
- a crash between the insert and the send leaves ``pending`` rows, which the next call sends:
  at-least-once, like alerts (a crash after the SMTP server accepted a digest but before the row
  was marked sends it once more, with the same Message-ID);
- pending rows of an earlier period, once a later one is due, are marked failed ("superseded").

Audiences: ``all`` (the whole proxy) goes to every receiver named in ``[digest] receivers`` (email
receivers get the full digest with charts, Slack receivers a short summary); ``team:<id>`` goes by
email to the addresses in ``[digest] team_recipients``, through the first email receiver of
``[digest] receivers`` (its SMTP settings and sender, with To replaced).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from sentinel.budget.specs import policy_from
from sentinel.config import EmailReceiver, ReceiverSettings, Settings, SlackReceiver
from sentinel.digest import data, schedule
from sentinel.digest.build import Digest, Inputs, build
from sentinel.errors import ConfigError
from sentinel.notify.email import EmailNotifier
from sentinel.notify.model import DeliveryResult, Outcome, Receiver
from sentinel.notify.slack import SlackNotifier
from sentinel.rules.loader import RuleSet
from sentinel.store import transaction

log = logging.getLogger("sentinel.digest")

LATE_LIMIT = timedelta(days=1)  # a digest missed by more than this is skipped: the next one is nearer
MAX_ATTEMPTS = 5  # retryable failures of one digest to one receiver before it is marked failed
ALL = "all"


@dataclass(frozen=True)
class Target:
    """One digest to one receiver: ``to`` replaces an email receiver's own addresses (team digests)."""

    audience: str  # "all" | "team:<id>"
    receiver: str
    to: tuple[str, ...] | None = None

    @property
    def team(self) -> str | None:
        return self.audience.removeprefix("team:") if self.audience.startswith("team:") else None


@dataclass(frozen=True)
class Delivery:
    audience: str
    receiver: str
    outcome: str  # sent | retry | failed
    detail: str


@dataclass
class DigestReport:
    """What one call did: the period it looked at, what it sent, and what it could not do."""

    period: str | None = None  # the scheduled time (UTC, ISO) whose period was considered
    due_at: datetime | None = None
    next_due: datetime | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    already: list[tuple[str, str, str]] = field(default_factory=list)  # (audience, receiver, state) left alone
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was sent, when nothing was

    @property
    def sent(self) -> int:
        return sum(1 for d in self.deliveries if d.outcome == "sent")

    @property
    def failed(self) -> int:
        return sum(1 for d in self.deliveries if d.outcome == "failed")

    @property
    def retrying(self) -> int:
        return sum(1 for d in self.deliveries if d.outcome == "retry")


# ------------------------------------------------------------------------------------------ targets
def resolve_team(teams: Mapping[str, str], name: str) -> str | None:
    """A team id from an id or an alias (``teams``: id -> alias); None if unknown or ambiguous."""
    if name in teams:
        return name
    found = [t for t, alias in teams.items() if alias == name]
    return found[0] if len(found) == 1 else None


def plan(settings: Settings, teams: Mapping[str, str]) -> tuple[list[Target], list[str]]:
    """Every (audience, receiver) the configuration asks for, and what it asks that cannot be done."""
    targets: list[Target] = []
    problems: list[str] = []
    email: str | None = None
    for name in settings.digest.receivers:
        receiver = settings.receiver(name)
        if isinstance(receiver, EmailReceiver | SlackReceiver):
            targets.append(Target(ALL, name))
            if email is None and isinstance(receiver, EmailReceiver):
                email = name
        else:
            problems.append(f"digest receiver {name!r} is a {receiver.type} receiver: digests go to email and Slack")
    recipients: dict[str, list[str]] = {}
    for team_name, addresses in settings.digest.team_recipients.items():
        team = resolve_team(teams, team_name)
        if team is None:
            problems.append(f"digest.team_recipients: no team {team_name!r} in the store (by id or alias)")
            continue
        recipients.setdefault(team, [])
        recipients[team] += [a for a in addresses if a not in recipients[team]]
    if recipients and email is None:
        problems.append("digest.team_recipients needs an email receiver in digest.receivers to send through")
    elif email is not None:
        targets += [Target(f"team:{t}", email, tuple(a)) for t, a in sorted(recipients.items()) if a]
    return targets, problems


# ------------------------------------------------------------------------------------------ the table
def _rows(db: sqlite_utils.Database, period: str) -> dict[tuple[str, str], tuple[str, int]]:
    cur = db.conn.execute("SELECT audience, receiver, state, attempts FROM digests WHERE period = ?", (period,))
    return {(str(a), str(r)): (str(s), int(n)) for a, r, s, n in cur}


def _insert(db: sqlite_utils.Database, period: str, targets: list[Target], now: datetime, *, force: bool) -> None:
    """The rows of this period, pending, in one transaction (with ``force``: sent or failed ones again)."""
    stamp = now.isoformat()
    with transaction(db):
        db.conn.execute(
            "UPDATE digests SET state = 'failed', detail = 'superseded: a later digest was due before this was sent' "
            "WHERE state = 'pending' AND period < ?",
            (period,),
        )
        db.conn.executemany(
            "INSERT OR IGNORE INTO digests (period, audience, receiver, state, attempts, created_at) "
            "VALUES (?, ?, ?, 'pending', 0, ?)",
            [(period, t.audience, t.receiver, stamp) for t in targets],
        )
        if force:
            db.conn.executemany(
                "UPDATE digests SET state = 'pending', attempts = 0, sent_at = NULL, detail = 'sent again (--force)' "
                "WHERE period = ? AND audience = ? AND receiver = ?",
                [(period, t.audience, t.receiver) for t in targets],
            )


def _mark(db: sqlite_utils.Database, period: str, target: Target, result: DeliveryResult, now: datetime) -> str:
    attempts = int(
        db.conn.execute(
            "SELECT attempts FROM digests WHERE period = ? AND audience = ? AND receiver = ?",
            (period, target.audience, target.receiver),
        ).fetchone()[0]
    )
    attempts += 1
    if result.ok:
        state, outcome = "sent", "sent"
    elif result.outcome is Outcome.RETRYABLE and attempts < MAX_ATTEMPTS:
        state, outcome = "pending", "retry"
    else:
        state, outcome = "failed", "failed"
    with transaction(db):
        db.conn.execute(
            "UPDATE digests SET state = ?, attempts = ?, sent_at = ?, detail = ? "
            "WHERE period = ? AND audience = ? AND receiver = ?",
            (
                state,
                attempts,
                now.isoformat() if result.ok else None,
                result.detail[:500],
                period,
                target.audience,
                target.receiver,
            ),
        )
    return outcome


# ------------------------------------------------------------------------------------------ building
def read_inputs(
    db: sqlite_utils.Database, settings: Settings, due_at: datetime, now: datetime, rules: RuleSet | None = None
) -> Inputs:
    """Read the period's inputs; rules default to the last good rule files kept in the store
    (what the daemon runs), else none (proxy budgets only)."""
    if rules is None:
        from sentinel.rules.reload import load_snapshot

        snapshot = load_snapshot(db)
        rules = snapshot[0] if snapshot else RuleSet.empty()
    return data.read(db, due_at, now, weeks=settings.digest.weeks, policy=policy_from(settings), rules=rules)


def compose(
    db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    *,
    team: str | None = None,
    rules: RuleSet | None = None,
) -> Digest:
    """The digest of the current period (the last scheduled time at or before ``now``), of the whole
    proxy or of one team (id or alias)."""
    due = schedule.last_due(schedule.from_settings(settings.digest), now)
    inputs = read_inputs(db, settings, due, now, rules)
    team_id = None
    if team is not None:
        team_id = resolve_team(inputs.teams(), team)
        if team_id is None:
            known = ", ".join(sorted(inputs.teams().values())) or "none stored"
            raise ConfigError(f"no team {team!r} in the store (by id or alias; teams: {known})")
    return build(inputs, team_id)


def write_preview(path: Path, digest: Digest) -> int:
    """Write the digest as a standalone HTML file (charts as data: URIs); returns its size in bytes."""
    from sentinel.digest import charts, render

    page = render.preview(digest, charts.draw(digest)).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page)
    return len(page)


# ------------------------------------------------------------------------------------------ sending
def _send_one(receiver: Receiver, settings: ReceiverSettings, target: Target, digest: Digest) -> DeliveryResult:
    from sentinel.digest import charts, render

    if isinstance(receiver, EmailNotifier) and isinstance(settings, EmailReceiver):
        to = target.to or settings.to
        msg = render.email_message(
            digest, charts.draw(digest), from_addr=settings.from_addr, to=to, receiver=target.receiver
        )
        return receiver.send_message(msg)
    if isinstance(receiver, SlackNotifier):
        return receiver.post(render.slack_text(digest), render.slack_blocks(digest))
    return DeliveryResult(Outcome.PERMANENT, f"receiver {target.receiver!r} cannot take a digest (email or Slack only)")


def _receivers(
    settings: Settings,
    names: set[str],
    db: sqlite_utils.Database,
    environ: Mapping[str, str] | None,
    given: Mapping[str, Receiver] | None,
) -> dict[str, Receiver | DeliveryResult]:
    """The notifiers by name (those given, else built here); one whose secret cannot be read is a
    permanent failure of its rows, not of the others."""
    from sentinel.notify.receivers import build_all
    from sentinel.store.state import record_audit

    out: dict[str, Receiver | DeliveryResult] = {}
    for name in sorted(names):
        if given is not None and name in given:
            out[name] = given[name]
            continue
        try:
            out[name] = build_all([settings.receiver(name)], lambda record: record_audit(db, record), environ)[name]
        except ConfigError as exc:
            out[name] = DeliveryResult(Outcome.PERMANENT, str(exc)[:300])
    return out


def _deliver(
    db: sqlite_utils.Database,
    settings: Settings,
    period: str,
    due: datetime,
    now: datetime,
    todo: list[Target],
    report: DigestReport,
    *,
    environ: Mapping[str, str] | None,
    receivers: Mapping[str, Receiver] | None,
    rules: RuleSet | None,
) -> None:
    inputs = read_inputs(db, settings, due, now, rules)
    digests: dict[str, Digest] = {}
    notifiers = _receivers(settings, {t.receiver for t in todo}, db, environ, receivers)
    for target in todo:
        if target.audience not in digests:
            digests[target.audience] = build(inputs, target.team)
        notifier = notifiers[target.receiver]
        if isinstance(notifier, DeliveryResult):
            result = notifier
        else:
            result = _send_one(notifier, settings.receiver(target.receiver), target, digests[target.audience])
        outcome = _mark(db, period, target, result, now)
        report.deliveries.append(Delivery(target.audience, target.receiver, outcome, result.detail))
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "digest %s %s to %s: %s (%s)", period, target.audience, target.receiver, outcome, result.detail)


def send_due(
    db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    *,
    environ: Mapping[str, str] | None = None,
    receivers: Mapping[str, Receiver] | None = None,
    rules: RuleSet | None = None,
) -> DigestReport:
    """Send the digest if it is due and not yet sent: what the daemon calls on every tick.

    Cheap when there is nothing to do (reads the ``digests`` rows of the period). ``receivers``:
    the daemon's notifiers by name (else they are built here from ``settings``, reading their
    secrets from ``environ``); ``rules``: the running rules (else the last good ones in the store).
    """
    sched = schedule.from_settings(settings.digest)
    due = schedule.last_due(sched, now)
    period = schedule.period_key(due)
    report = DigestReport(period=period, due_at=due, next_due=schedule.next_due(sched, now))
    if not settings.digest.receivers:
        report.skipped = "no digest receivers configured ([digest] receivers)"
        return report
    targets, report.problems = plan(settings, data.known_teams(db) if settings.digest.team_recipients else {})
    rows = _rows(db, period)
    missing = [t for t in targets if (t.audience, t.receiver) not in rows]
    if missing and now - due > LATE_LIMIT:
        report.skipped = f"the digest due at {period} is more than {LATE_LIMIT} late; the next is due {report.next_due}"
        missing = []
    stale = db.conn.execute("SELECT COUNT(*) FROM digests WHERE state = 'pending' AND period < ?", (period,))
    if missing or stale.fetchone()[0]:
        _insert(db, period, missing, now, force=False)
        rows = _rows(db, period)
    todo = [t for t in targets if rows.get((t.audience, t.receiver), ("", 0))[0] == "pending"]
    report.already = [
        (t.audience, t.receiver, rows[(t.audience, t.receiver)][0])
        for t in targets
        if t not in todo and (t.audience, t.receiver) in rows
    ]
    if not todo:
        report.skipped = report.skipped or "already sent for this period"
        return report
    _deliver(db, settings, period, due, now, todo, report, environ=environ, receivers=receivers, rules=rules)
    return report


def send_now(
    db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    *,
    team: str | None = None,
    force: bool = False,
    environ: Mapping[str, str] | None = None,
    receivers: Mapping[str, Receiver] | None = None,
    rules: RuleSet | None = None,
) -> DigestReport:
    """Send the current period's digest now, due or not (``sentinel digest --send``): every configured
    audience, or only ``team``'s (an id or alias). Still once per period: what was sent (or failed
    for good) is left alone unless ``force``."""
    sched = schedule.from_settings(settings.digest)
    due = schedule.last_due(sched, now)
    period = schedule.period_key(due)
    report = DigestReport(period=period, due_at=due, next_due=schedule.next_due(sched, now))
    if not settings.digest.receivers:
        raise ConfigError("no digest receivers configured: set [digest] receivers to names of [[receivers]]")
    teams = data.known_teams(db)
    targets, report.problems = plan(settings, teams)
    if team is not None:
        team_id = resolve_team(teams, team)
        if team_id is None:
            raise ConfigError(f"no team {team!r} in the store (by id or alias)")
        targets = [t for t in targets if t.team == team_id]
        if not targets:
            raise ConfigError(f"no digest.team_recipients for team {team!r}, or no email receiver to send through")
    _insert(db, period, targets, now, force=force)
    rows = _rows(db, period)
    todo = [t for t in targets if rows[(t.audience, t.receiver)][0] == "pending"]
    report.already = [(t.audience, t.receiver, rows[(t.audience, t.receiver)][0]) for t in targets if t not in todo]
    if not todo:
        report.skipped = "already sent for this period (use --force to send it again)"
        return report
    _deliver(db, settings, period, due, now, todo, report, environ=environ, receivers=receivers, rules=rules)
    return report
