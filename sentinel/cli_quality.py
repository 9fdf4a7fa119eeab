"""Trust in the data: `sentinel doctor`, `sentinel reconcile`, `sentinel pseudonym`.

Thin like the rest of the CLI: parse, call the library (``sentinel.doctor``, ``sentinel.reconcile``,
``sentinel.privacy``), print.
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from sentinel.cli import _App, _db_option, _parse_day, err, main, out, pass_app
from sentinel.clock import utc_now, utc_today
from sentinel.config import Settings, SourceSettings
from sentinel.errors import ConfigError
from sentinel.store import open_store

_MARK = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "cyan", "skip": "dim"}


def _sources(settings: Settings, name: str | None) -> list[SourceSettings]:
    if name is not None:
        return [settings.source(name)]
    if not settings.sources:
        raise ConfigError("no [[sources]] configured; see config.example.toml, or try `sentinel demo`")
    return list(settings.sources)


@main.command(short_help="Check a proxy end to end: answers, key, scope, data completeness.")
@click.option("--source", "name", metavar="NAME", help="Only this source [default: every configured source].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def doctor(app: _App, name: str | None, fmt: str, db: Path | None) -> None:
    """Check that Sentinel can read each source, and that the data it would watch is complete.

    In order: the proxy answers (/health/readiness) and its clock agrees with this host's; it has
    a database; the key authenticates, is a read-only proxy_admin_viewer key (the master key works
    but is more than Sentinel needs) and can read every kind of data Sentinel uses; there was
    traffic recently; spend is attributed to more than one user (else keys lack user_id); no model
    logs tokens at $0 (missing from the price map); which providers and models are seen; the oldest
    day the proxy holds. Each check says what it found and, when something is wrong, the fix.

    Read-only: every request is a GET on the allowlist and is written to the audit log.

    Exit status 0 when no check fails (warnings allowed), 1 when one does.
    """
    from sentinel import doctor as diag
    from sentinel import privacy
    from sentinel.sync import open_client

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    reports = []
    for src in _sources(settings, name):
        try:
            client = open_client(src, settings.sync, store, privacy=privacy.from_settings(settings.privacy))
        except ConfigError as exc:
            report = diag.Report(src.name, src.url, [diag.Check("configuration", "fail", str(exc))])
        else:
            if fmt == "table":
                out.print(f"[bold]{escape(src.name)}[/] {escape(src.url)}")
            with client:
                report = diag.diagnose(
                    client,
                    src.url,
                    settings.quality,
                    backfill_days=settings.daemon.initial_backfill_days,
                    now=utc_now(),
                    on_check=_print_check if fmt == "table" else None,
                )
        if fmt == "table" and report.checks and report.checks[0].name == "configuration":
            _print_check(report.checks[0])
        reports.append(report)
    failed = [r.source for r in reports if r.failed]
    if fmt == "json":
        click.echo(json.dumps({"ok": not failed, "sources": [r.to_json() for r in reports]}, indent=2))
    else:
        verdict = (
            f"[bold red]{len(failed)} source(s) with a failed check: {', '.join(failed)}[/]"
            if failed
            else ("[green]no check failed[/]")
        )
        out.print(verdict)
    if failed:
        sys.exit(1)


def _print_check(check: object) -> None:
    from sentinel.doctor import Check

    assert isinstance(check, Check)
    label = f"{check.verdict.upper() if check.verdict == 'fail' else check.verdict:<5}"
    out.print(
        f"  [{_MARK[check.verdict]}]{label}[/] [bold]{escape(check.name)}[/]: {escape(check.finding)}", soft_wrap=True
    )
    if check.fix and check.verdict in ("warn", "fail"):
        out.print(f"        fix: {escape(check.fix)}", soft_wrap=True, style="dim")


@main.command(short_help="Compare stored days with the proxy's current answers.")
@click.option("--since", callback=_parse_day, required=True, metavar="DATE", help="First UTC day to compare.")
@click.option("--until", callback=_parse_day, metavar="DATE", help="Last UTC day [default: yesterday].")
@click.option("--source", "name", metavar="NAME", help="Only this source [default: every configured source].")
@click.option(
    "--tolerance", type=float, default=0.01, show_default=True, help="Spend differences up to this (USD) are equal."
)
@click.option("--fix", is_flag=True, help="Read the days that differ into the store again (a normal sync of them).")
@click.option("--limit", type=int, default=30, show_default=True, help="Rows of differences shown in the table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def reconcile(
    app: _App,
    since: date,
    until: date | None,
    name: str | None,
    tolerance: float,
    fix: bool,
    limit: int,
    fmt: str,
    db: Path | None,
) -> None:
    """Read SINCE..UNTIL again from each proxy (without storing it) and report every stored counter
    set that differs from the proxy's current answer, per day, grain (total, user, team, model,
    provider, key ...) and entity: spend differing by more than --tolerance, any request count, or
    rows only one side has.

    A day can change after Sentinel read it (a late flush, dropped batches, a proxy-side backfill);
    the daemon notices the changes of the trailing days it re-reads, this checks any range.

    Exit status 0 when everything matches, 1 when something differs (after --fix: what differed).
    """
    from sentinel import privacy
    from sentinel import reconcile as rec
    from sentinel.sync import open_client, sync_range

    settings = app.settings
    today = utc_today(utc_now())
    end = until or today - timedelta(days=1)
    if since > end:
        raise ConfigError(f"--since {since} is after the last day compared ({end})")
    store = open_store(db or settings.store.resolved_path())
    results = []
    for src in _sources(settings, name):
        with open_client(src, settings.sync, store, privacy=privacy.from_settings(settings.privacy)) as client:
            result = rec.reconcile(store, client, since, end, tolerance_usd=tolerance)
            if fix and result.differences:
                for lo, hi in rec.day_runs(result.days_changed()):
                    sync_range(store, client, lo, hi, utc_now(), settings.sync)
        results.append(result)
    differing = sum(len(r.differences) for r in results)
    if fmt == "json":
        doc = [
            {
                "source": r.source,
                "since": r.start.isoformat(),
                "until": r.end.isoformat(),
                "rows_compared": r.rows_compared,
                "days_changed": r.days_changed(),
                "differences": [d.to_json() for d in r.differences],
                "fixed": fix,
            }
            for r in results
        ]
        click.echo(json.dumps(doc, indent=2))
    else:
        for r in results:
            _print_result(r, limit, fix)
    if differing:
        sys.exit(1)


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def _print_result(result: object, limit: int, fixed: bool) -> None:
    from sentinel.reconcile import Result

    assert isinstance(result, Result)
    span = f"{result.start}..{result.end}"
    if not result.differences:
        out.print(
            f"[green]{escape(result.source)}: {span} matches the proxy[/] ({result.rows_compared:,} rows compared)"
        )
        return
    days = result.days_changed()
    out.print(
        f"[bold yellow]{escape(result.source)}: {len(result.differences)} difference(s) on {len(days)} day(s) "
        f"of {span}[/] ({result.rows_compared:,} rows compared)"
        + (" — read into the store again" if fixed else " — `--fix` reads them again")
    )
    table = Table("date", "grain", "entity", "stored", "proxy now", "Δ", "requests (stored → now)")
    shown = sorted(result.differences, key=lambda d: (d.grain != "total", -abs(d.delta_usd)))[:limit]
    for d in sorted(shown, key=lambda d: (d.date, d.grain != "total", -abs(d.delta_usd))):
        entity = d.entity + (f" / {d.detail}" if d.detail else "")
        table.add_row(
            d.date,
            d.grain,
            escape(entity or "(whole proxy)"),
            _money(d.stored_usd),
            _money(d.proxy_usd),
            f"{d.delta_usd:+,.4f}",
            f"{d.stored_requests if d.stored_requests is not None else '—'} → "
            f"{d.proxy_requests if d.proxy_requests is not None else '—'}",
        )
    out.print(table)
    if len(result.differences) > limit:
        err.print(f"({len(result.differences) - limit} more; --limit or --format json shows them)")


@main.command(short_help="Show the opaque id a user is stored under ([privacy] pseudonymize_users).")
@click.argument("user_ids", nargs=-1, required=True, metavar="USER_ID...")
@pass_app
def pseudonym(app: _App, user_ids: tuple[str, ...]) -> None:
    """Print the pseudonym each USER_ID is stored, alerted and reported under, using the configured
    pseudonym key (only someone holding that key can link the two)."""
    from sentinel import privacy

    transform = privacy.from_settings(app.settings.privacy)
    if not transform.active:
        raise ConfigError("[privacy] pseudonymize_users is off: users are stored under their own ids")
    for user_id in user_ids:
        out.print(f"{escape(user_id)}\t{transform.user(user_id)}")
