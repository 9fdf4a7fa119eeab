"""`sentinel report`: where the money went, grouped any way, against the period before.

Thin like the rest of the CLI: parse, call ``sentinel.report``, print.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from sentinel.cli import _App, _db_option, _parse_day, main, out, pass_app
from sentinel.clock import utc_now, utc_today
from sentinel.errors import ConfigError
from sentinel.store import open_store


def _parse_by(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    from sentinel.report import DIMENSIONS

    dims = tuple(d.strip() for d in value.split(",") if d.strip())
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise click.BadParameter("a dimension is named twice")
    if sum(d in ("day", "week", "month") for d in dims) > 1:
        raise click.BadParameter("at most one of day, week, month")
    return dims


def _parse_last(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    found = re.fullmatch(r"(\d+)(d|w)", value.strip())
    if not found or int(found.group(1)) < 1:
        raise click.BadParameter(f"{value!r} is not a span like 7d or 4w")
    return int(found.group(1)) * (7 if found.group(2) == "w" else 1)


@main.command(short_help="Spend, tokens and requests for a period, grouped, with the change.")
@click.option("--since", callback=_parse_day, metavar="DATE", help="First UTC day of the period.")
@click.option("--until", callback=_parse_day, metavar="DATE", help="Last UTC day [default: yesterday].")
@click.option("--last", "last_days", callback=_parse_last, metavar="SPAN", help="The SPAN (7d, 4w) ending --until.")
@click.option(
    "--by",
    callback=_parse_by,
    default="provider",
    show_default=True,
    metavar="DIMS",
    help="Group by any of provider, model, team, user, key and one of day, week, month (comma-separated).",
)
@click.option("--source", metavar="NAME", help="Only this proxy [default: all, summed].")
@click.option("--limit", type=int, default=25, show_default=True, help="Rows in the table (csv and json: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def report(
    app: _App,
    since: date | None,
    until: date | None,
    last_days: int | None,
    by: tuple[str, ...],
    source: str | None,
    limit: int,
    fmt: str,
    db: Path | None,
) -> None:
    """Spend (USD), tokens (prompt, completion, cache read, cache write) and requests for a period,
    grouped by any of provider, model, team, user and key, and by day, week or month; with the
    spend of the period of the same length just before and the change, and the effective price per
    million tokens (spend ÷ prompt and completion tokens), so a model switch or a price change shows.
    Largest spend first.

    The period is --since..--until, or --last 7d ending --until (yesterday: complete days), or the
    last 7 complete days. Examples: `sentinel report --last 30d --by team,model`,
    `sentinel report --since 2026-11-01 --by day --format csv`.

    Pairs the proxy does not report together (a team's models, a user's models) come from the
    per-key detail and each key's current owner and team.
    """
    from sentinel import report as rep

    today = utc_today(utc_now())
    end = until or today - timedelta(days=1)
    if since is not None and last_days is not None:
        raise ConfigError("give --since or --last, not both")
    start = since or end - timedelta(days=(last_days or 7) - 1)
    if start > end:
        raise ConfigError(f"the period is empty: {start} is after {end}")
    period = rep.Period(start, end)
    store = open_store(db or app.settings.store.resolved_path())
    frame, grain = rep.build(store, period, by, source)
    rows = rep.records(frame, by, rep.names(store))
    if fmt == "csv":
        click.echo(rep.to_csv(rows), nl=False)
        return
    if fmt == "json":
        click.echo(rep.to_json(period, by, grain, rows))
        return
    previous = period.previous()
    title = f"{period.since}..{period.until} ({period.days} days) vs {previous.since}..{previous.until}" + (
        f", source {source}" if source else ""
    )
    table = Table(*(by or ("whole proxy",)), "spend", "before", "change", "prompt", "completion", "cache read",
                  "cache write", "requests", "$/1M tok", title=escape(title))  # fmt: skip
    for row in rows[:limit]:
        labels = [escape(str(row.get(f"{d}_name") or row[d])) for d in by] or ["all"]
        change = row["change_pct"]
        table.add_row(
            *labels,
            f"${row['spend']:,.2f}",
            "—" if row["previous_spend"] is None else f"${row['previous_spend']:,.2f}",
            "—" if change is None else f"{change:+.0f}%",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['cache_read_input_tokens']:,}",
            f"{row['cache_creation_input_tokens']:,}",
            f"{row['api_requests']:,}",
            "—" if row["usd_per_1m_tokens"] is None else f"${row['usd_per_1m_tokens']:,.2f}",
        )
    out.print(table)
    total = sum(float(str(r["spend"])) for r in rows)
    more = f" ({len(rows) - limit} more rows: --limit, or --format csv)" if len(rows) > limit else ""
    out.print(f"total ${total:,.2f} in {len(rows)} group(s){more}")
