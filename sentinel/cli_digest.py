"""`sentinel digest`: preview the weekly digest in a file, print it, or send it now.

Thin like the rest of the CLI: parse, call ``sentinel.digest.send``, print.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

from sentinel.cli import _App, _db_option, _rules_option, err, main, out, pass_app
from sentinel.clock import utc_now
from sentinel.store import open_store


def _parse_at(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command(short_help="Preview the weekly digest (HTML file or text), or send it now.")
@click.option(
    "--preview",
    "preview_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Write the digest as one HTML file (charts inlined) to look at in a browser.",
)
@click.option("--send", is_flag=True, help="Send the current period's digest now to [digest] receivers, due or not.")
@click.option("--force", is_flag=True, help="With --send: send it again even if it was already sent this period.")
@click.option("--team", metavar="TEAM", help="One team's digest (team id or alias) instead of the whole proxy's.")
@click.option("--at", "at", callback=_parse_at, hidden=True, help="Pretend it is this time (ISO, UTC); for tests.")
@_rules_option
@_db_option
@pass_app
def digest(
    app: _App,
    preview_path: Path | None,
    send: bool,
    force: bool,
    team: str | None,
    at: datetime | None,
    rules: Path | None,
    db: Path | None,
) -> None:
    """The weekly digest of the last period: the 7 UTC days before the last scheduled time
    ([digest] schedule and timezone; default Mondays 09:00 UTC).

    \b
    --preview PATH   write it as a standalone HTML file (charts as data: URIs)
    --send           email it (HTML, text and inline charts) and post the short version to Slack,
                     to the receivers in [digest] receivers, plus each team in team_recipients;
                     still once per period (the daemon's and yours count alike) unless --force
    neither          print the plain-text version

    Exit status 1 if a send failed.
    """
    from sentinel.digest import render
    from sentinel.digest.send import compose, send_now, write_preview

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    now = at or utc_now()
    rule_set = app.rules(rules)
    if force and not send:
        raise click.UsageError("--force goes with --send")
    if preview_path is not None or not send:
        built = compose(store, settings, now, team=team, rules=rule_set)
        if preview_path is not None:
            size = write_preview(preview_path, built)
            out.print(
                f"Wrote the digest of {built.period_start} to {built.period_end} ({built.title}) to "
                f"{escape(str(preview_path))} ({size / 1024:.0f} KB); open it in a browser.",
                soft_wrap=True,
            )
        elif not send:
            click.echo(render.text(built), nl=False)
    if not send:
        return
    report = send_now(store, settings, now, team=team, force=force, rules=rule_set)
    for d in report.deliveries:
        colour = {"sent": "green", "retry": "yellow"}.get(d.outcome, "red")
        out.print(
            f"[{colour}]{d.outcome}[/] {escape(d.audience)} digest to {escape(d.receiver)}: {escape(d.detail)}",
            soft_wrap=True,
        )
    for audience, receiver, state in report.already:
        out.print(f"already {state}: {escape(audience)} digest to {escape(receiver)} for the period of {report.period}")
    if report.skipped:
        out.print(escape(report.skipped))
    for p in report.problems:
        err.print(f"[red]problem:[/] {escape(p)}", soft_wrap=True)
    if report.failed or report.retrying:
        sys.exit(1)
