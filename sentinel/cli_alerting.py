"""Alerting commands: evaluate, deliver, alerts, silence, notify test, rules test.

Thin like the rest of the CLI: parse, call the library (``sentinel.alerting``, ``notify``,
``route``, ``rules.testing``), print.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from sentinel.cli import _App, _db_option, _rules_option, err, main, out, pass_app, rules
from sentinel.clock import utc_now
from sentinel.config import Settings, parse_duration
from sentinel.notify.model import Receiver
from sentinel.store import open_store


def _receivers(settings: Settings, store: Any) -> dict[str, Receiver]:
    from sentinel.notify.receivers import build_all
    from sentinel.store.state import record_audit

    return build_all(settings.receivers, lambda record: record_audit(store, record))


@main.command(short_help="Evaluate every rule now, queue notifications and deliver them.")
@click.option("--source", help="Only this source [default: all, summed].")
@click.option("--no-send", is_flag=True, help="Queue notifications but do not deliver them (see `sentinel deliver`).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_rules_option
@_db_option
@pass_app
def evaluate(app: _App, source: str | None, no_send: bool, fmt: str, rules: Path | None, db: Path | None) -> None:
    """Run one alerting cycle, as the daemon does on every tick: evaluate the anomaly, budget,
    threshold and absence rules over the stored data; new, still-firing and resolved alerts are
    routed to receivers and queued in the store (in one transaction), then delivered.

    Rules come from rules.path in the config; if an edit there does not load, the last rules that
    did (kept in the store) run instead, and a critical operator alert names the problem.

    Exit status 0 even when alerts fire; 1 if a rule file or a rule failed or a delivery failed for
    good; 2 if the rule files have never loaded.
    """
    from sentinel.alerting import run_cycle
    from sentinel.rules.reload import RuleReloader

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    now = utc_now()
    receivers = _receivers(settings, store)
    if rules is not None:  # an explicit path: exactly those files, or an error
        current, operator = app.rules(rules), []
    else:
        # The configured rules: a broken edit runs the last good rules kept in the store, and says so.
        target = settings.rules.resolved_path(app.config_path)
        reloader = RuleReloader(target, db=store).start(now)
        current, operator = reloader.rules, reloader.operator_alerts(now)
    report = run_cycle(store, settings, current, receivers, now, source=source, send=not no_send, extra=operator)
    from sentinel.store import alerts as alert_store

    firing = sorted(alert_store.load(store, status="firing").values(), key=lambda a: (a.severity, a.rule))
    problems = report.evaluation.errors + (report.delivery.errors if report.delivery else [])
    problems += [str(a.summary) for a in operator]
    if fmt == "json":
        doc = {
            "as_of": now.isoformat(),
            "firing": [_alert_doc(a) for a in firing],
            "new": report.new,
            "resolved": report.resolved,
            "queued": report.queued,
            "delivery": vars(report.delivery) if report.delivery else None,
            "errors": problems,
        }
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        out.print(_alerts_table(firing, f"Firing at {now:%Y-%m-%d %H:%M} UTC: {len(firing)}"))
        d = report.delivery
        sent = f"; sent {d.alerts_sent} in {d.sent} message(s), {d.retried} to retry" if d else ""
        out.print(f"{report.new} new, {report.resolved} resolved, {report.queued} notice(s) queued{sent}")
        if not settings.route.receiver and not settings.route.routes:
            out.print("No receivers configured ([route] receiver): alerts are kept in the store, nothing is sent.")
        for p in problems:
            err.print(f"[red]problem:[/] {escape(p)}", soft_wrap=True)
    if problems:
        sys.exit(1)


@main.command(short_help="Deliver what is queued in the outbox.")
@_db_option
@pass_app
def deliver(app: _App, db: Path | None) -> None:
    """Send every notification that is due (retries included), without evaluating rules."""
    from sentinel.alerting import Routing
    from sentinel.notify.pipeline import deliver as run

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    routing = Routing.from_settings(settings)
    report = run(store, _receivers(settings, store), settings.delivery, routing.inhibit, utc_now())
    out.print(
        f"sent {report.alerts_sent} notice(s) in {report.sent} message(s); {report.retried} to retry, "
        f"{report.failed} failed, {report.muted} muted"
    )
    for p in report.errors:
        err.print(f"[red]problem:[/] {escape(p)}", soft_wrap=True)
    if report.failed:
        sys.exit(1)


def _alert_doc(a: Any) -> dict[str, object]:
    from sentinel.notify.render import alert_json

    return alert_json(a)


def _alerts_table(alerts: list[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("since (UTC)", "severity", "rule", "alert"):
        table.add_column(col)
    for a in alerts:
        table.add_row(f"{a.starts_at:%m-%d %H:%M}", a.severity, escape(a.rule), escape(a.summary))
    return table


@main.command(short_help="List firing (and recently resolved) alerts and the outbox.")
@click.option("--all", "show_all", is_flag=True, help="Also resolved alerts.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def alerts(app: _App, show_all: bool, fmt: str, db: Path | None) -> None:
    """The alerts the last evaluation left firing, and what the outbox holds per state."""
    from sentinel.store import alerts as alert_store
    from sentinel.store import outbox

    store = open_store(db or app.settings.store.resolved_path())
    found = alert_store.load(store, status=None if show_all else "firing").values()
    listed = sorted(found, key=lambda a: (a.status, a.starts_at))
    depth = outbox.depth(store)
    if fmt == "json":
        click.echo(json.dumps({"alerts": [_alert_doc(a) for a in listed], "outbox": depth}, indent=2, default=str))
        return
    out.print(_alerts_table(listed, f"{'Alerts' if show_all else 'Firing alerts'}: {len(listed)}"))
    out.print("outbox: " + (", ".join(f"{n} {state}" for state, n in sorted(depth.items())) or "empty"))


# ---------------------------------------------------------------------------------------------- silences
@main.group(short_help="Mute alerts that match labels, for a while.")
def silence() -> None:
    """Silences mute alerts whose labels match every matcher (label="value", label!="value",
    label=~"regex", label!~"regex") from a start to an end. Muted alerts are still evaluated and
    kept; they are sent when the silence ends if they still fire."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", "-d", default="2h", show_default=True, help="How long: 30m, 4h, 2d.")
@click.option("--author", "-a", required=True, help="Who is silencing (shown in `silence list`).")
@click.option("--comment", "-m", required=True, help="Why.")
@click.option("--start", "start_iso", metavar="TIME", help="Start later (ISO time, UTC) [default: now].")
@_db_option
@pass_app
def silence_add(
    app: _App,
    matchers: tuple[str, ...],
    duration: str,
    author: str,
    comment: str,
    start_iso: str | None,
    db: Path | None,
) -> None:
    """Add a silence, e.g.

    \b
      sentinel silence add 'team="team-search"' 'kind="anomaly"' -d 4h -a ana -m "load test until 18:00"
    """
    from sentinel.route.silences import new
    from sentinel.store import silences as silence_store

    now = utc_now()
    try:
        length = parse_duration(duration)
        start = _utc(datetime.fromisoformat(start_iso)) if start_iso else now
        created = new(list(matchers), author, comment, start, start + length, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    store = open_store(db or app.settings.store.resolved_path())
    silence_store.add(store, created)
    matchers_text = " ".join(str(m) for m in created.matchers)
    out.print(f"silence {created.id} until {created.ends_at:%Y-%m-%d %H:%M} UTC: {escape(matchers_text)}")


def _utc(moment: datetime) -> datetime:
    """A time given without a zone is UTC (as every time Sentinel prints)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired silences.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def silence_list(app: _App, show_all: bool, fmt: str, db: Path | None) -> None:
    """Silences that are active or pending (--all: expired too)."""
    from sentinel.store import silences as silence_store

    now = utc_now()
    store = open_store(db or app.settings.store.resolved_path())
    listed = [s for s in silence_store.all_(store) if show_all or s.state(now) != "expired"]
    if fmt == "json":
        docs = [
            {
                "id": s.id,
                "state": s.state(now),
                "matchers": [str(m) for m in s.matchers],
                "author": s.author,
                "comment": s.comment,
                "starts_at": s.starts_at.isoformat(),
                "ends_at": s.ends_at.isoformat(),
                "created_at": s.created_at.isoformat(),
            }
            for s in listed
        ]
        click.echo(json.dumps(docs, indent=2))
        return
    table = Table(title=f"Silences: {len(listed)}", title_justify="left")
    for col in ("id", "state", "matchers", "until (UTC)", "author", "comment"):
        table.add_column(col)
    for s in listed:
        table.add_row(
            s.id,
            s.state(now),
            escape(" ".join(str(m) for m in s.matchers)),
            f"{s.ends_at:%Y-%m-%d %H:%M}",
            escape(s.author),
            escape(s.comment),
        )
    out.print(table)


@silence.command("expire")
@click.argument("silence_id")
@_db_option
@pass_app
def silence_expire(app: _App, silence_id: str, db: Path | None) -> None:
    """End a silence now (an id or a unique prefix of one)."""
    from sentinel.store import silences as silence_store

    store = open_store(db or app.settings.store.resolved_path())
    try:
        found = silence_store.get(store, silence_id)
        ended = silence_store.expire(store, found.id, utc_now())
    except (KeyError, ValueError) as exc:
        raise click.BadParameter(str(exc).strip("'\""), param_hint="SILENCE_ID") from None
    out.print(f"silence {ended.id} expired at {ended.ends_at:%Y-%m-%d %H:%M} UTC")


# ---------------------------------------------------------------------------------------------- notify
@main.group(short_help="Check the receivers.")
def notify() -> None:
    """Receivers: where alerts go (Slack, email, webhooks, JSON lines files)."""


@notify.command("test")
@click.argument("receiver")
@_db_option
@pass_app
def notify_test(app: _App, receiver: str, db: Path | None) -> None:
    """Send a test message to RECEIVER now and say how it went (exit 1 if it failed)."""
    from sentinel.notify.model import Alert, Notification

    settings = app.settings
    settings.receiver(receiver)  # a clear error for an unknown name
    store = open_store(db or settings.store.resolved_path())
    target = _receivers(settings, store)[receiver]
    now = utc_now()
    alert = Alert(
        fingerprint="test",
        status="firing",
        rule="sentinel-test",
        severity="info",
        summary=f"Test message from Sentinel to receiver {receiver}: delivery works.",
        labels={"kind": "test", "rule": "sentinel-test", "severity": "info"},
        starts_at=now,
        record={"kind": "test", "detected_at": now.isoformat()},
    )
    result = target.send(Notification(receiver, "test", {}, (alert,), now, test=True))
    if result.ok:
        out.print(f"receiver {receiver}: sent ({escape(result.detail or 'ok')})")
        return
    err.print(f"[red]receiver {receiver}: {result.outcome.value}:[/] {escape(result.detail)}", soft_wrap=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------- rules test
@rules.command("test", short_help="Run rule unit tests (input series and the alerts expected).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False))
def rules_test(files: tuple[Path, ...]) -> None:
    """Run the unit tests in each FILE: daily series given per entity, the rules under test, and the
    alerts expected to fire at given times. On a failure, the difference between the alerts expected
    and those that fired is shown. Exit status 1 if any test fails, 2 if a file is invalid.
    """
    from sentinel.rules import testing

    failed = 0
    for file in files:
        for result in testing.run_file(file):
            if result.ok:
                out.print(f"[green]PASS[/] {escape(str(file))}: {escape(result.name)}")
            else:
                failed += 1
                out.print(f"[red]FAIL[/] {escape(str(file))}: {escape(result.name)}")
                out.print(escape(result.diff))
    if failed:
        err.print(f"{failed} test(s) failed")
        sys.exit(1)
