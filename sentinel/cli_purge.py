"""`sentinel purge`: apply the retention policy now, delete old daily facts, or erase users.

Thin like the rest of the CLI: parse, call ``sentinel.store.retention``, print the rows per table.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from sentinel.cli import _App, _db_option, _parse_day, err, main, out, pass_app
from sentinel.clock import utc_now, utc_today
from sentinel.store import open_store, retention


@main.command(short_help="Delete what [retention] no longer keeps, old daily facts, or users' rows.")
@click.option(
    "--before",
    callback=_parse_day,
    metavar="DATE",
    help="Delete the daily facts (and days read, intraday totals) of every UTC day before DATE; "
    "DATE is kept, and may be yesterday at the latest.",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="ID",
    help="Erase this user's rows everywhere (repeatable): a deletion request.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def purge(app: _App, before: date | None, users: tuple[str, ...], dry_run: bool, fmt: str, db: Path | None) -> None:
    """Delete rows from the store and say how many went, per table. Try --dry-run first: it counts
    the same rows and deletes nothing.

    \b
      sentinel purge                           apply the [retention] policy now
      sentinel purge --before 2025-01-01       daily facts of the UTC days before 2025-01-01
      sentinel purge --user alice --dry-run    what erasing user alice would delete

    With no option: the [retention] policy, as `sentinel run` applies it once a UTC day. Daily
    facts, days read and intraday totals older than `daily_facts` (default 13mo); audit rows older
    than `audit_log`; alerts resolved longer ago than `alerts`, with their delivered messages and
    delivery attempts, finished digests and the signals of budget windows that ended then. Alerts
    still firing and messages still waiting are never deleted.

    --before DATE deletes daily facts, days read and intraday totals only.

    --user ID erases one user (a deletion request): their daily facts; their user row; the keys
    they own, with those keys' facts; alerts about them or their keys, with every message and
    delivery attempt about those alerts; their and their keys' budget signals; audit rows of
    requests that named them. They are taken out of every team's members and admins and out of
    the fitted baselines. ID is the id the proxy uses; with [privacy] pseudonymize_users it is also
    matched by its pseudonym (a "u-..." pseudonym works as well). The proxy keeps its own data:
    delete the user there too, or the next sync reads back the days the proxy still holds.

    --before and --user cannot be combined: one is housekeeping, the other an erasure.

    Exit status 0 (also when nothing matched), 2 for a refused purge or a bad option.
    """
    if before is not None and users:
        raise click.UsageError("--before and --user cannot be combined; run them one after the other")
    settings = app.settings
    now = utc_now()
    if before is not None:
        retention.check_before(before, utc_today(now))
    store = open_store(db or settings.store.resolved_path())
    if users:
        from sentinel.privacy import from_settings

        pseudonymizer = from_settings(settings.privacy)
        results = {u: retention.purge_user(store, u, dry_run=dry_run, pseudonymizer=pseudonymizer) for u in users}
        _report(fmt, "user", results, dry_run, {})
        for user, counts in results.items():
            if not counts.total and not counts.total_updated:
                err.print(f"no rows matched user {escape(user)} (nor its pseudonym)", soft_wrap=True)
        return
    if before is not None:
        counts = retention.purge_before(store, before, dry_run=dry_run)
        _report(fmt, "before", {"rows": counts}, dry_run, {"before": before.isoformat()})
        return
    cut = retention.cutoffs(settings.retention, utc_today(now))
    counts = retention.purge_policy(store, now, settings.retention, dry_run=dry_run)
    kept = {"daily_facts": cut.daily_facts, "audit_log": cut.audit_log, "alerts": cut.alerts}
    _report(fmt, "policy", {"rows": counts}, dry_run, {"kept_from": {k: v.isoformat() for k, v in kept.items()}})


def _report(fmt: str, mode: str, results: dict[str, retention.Counts], dry_run: bool, extra: dict[str, object]) -> None:
    deleted = sum(c.total for c in results.values())
    updated = sum(c.total_updated for c in results.values())
    if fmt == "json":
        doc: dict[str, object] = {"mode": mode, "dry_run": dry_run, **extra}
        if mode == "user":
            doc["users"] = [{"user": u, **c.to_json()} for u, c in results.items()]
        else:
            doc.update(results["rows"].to_json())
        doc["total_deleted"], doc["total_updated"] = deleted, updated
        click.echo(json.dumps(doc, indent=2))
        return
    title = {"policy": "Retention policy", "before": f"Daily facts before {extra.get('before')}", "user": "Erase users"}
    table = Table(title=title[mode] + (" (dry run)" if dry_run else ""), title_justify="left")
    table.add_column("table")
    names = list(results)
    for name in names:
        table.add_column(
            escape(name) if mode == "user" else ("would delete" if dry_run else "deleted"), justify="right"
        )
    first = next(iter(results.values()))
    for name in first.deleted:
        table.add_row(name, *(f"{results[n].deleted.get(name, 0):,}" for n in names))
    for name in first.updated:
        table.add_row(f"{name} (rewritten)", *(f"{results[n].updated.get(name, 0):,}" for n in names))
    out.print(table)
    kept = extra.get("kept_from")
    if isinstance(kept, dict):
        out.print("keeps from: " + ", ".join(f"{k} {v}" for k, v in kept.items()))
    rewritten = f", {updated:,} rewritten" if updated else ""
    if dry_run:
        out.print(f"dry run: nothing deleted ({deleted:,} rows would be deleted{rewritten})")
    else:
        out.print(f"deleted {deleted:,} rows{rewritten}")
