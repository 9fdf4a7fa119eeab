"""Command line: parse arguments, call a library function, turn SentinelError into a message + exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sentinel import __version__, logs
from sentinel.clock import utc_now
from sentinel.config import Settings, find_config, load_settings
from sentinel.errors import ConfigError, SentinelError
from sentinel.rules.loader import RuleSet
from sentinel.store import open_store

F = TypeVar("F", bound=Callable[..., Any])


def _width() -> int | None:
    """A terminal's own width; 120 columns for a pipe or a log (rich would assume 80 and wrap tables)."""
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120


out = Console(highlight=False, width=_width())
err = Console(stderr=True, highlight=False)


class _Group(click.Group):
    """Turns every SentinelError into one readable message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SentinelError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted: whatever was committed stays; a backfill resumes after its last whole chunk")
            sys.exit(130)


class _App:
    def __init__(self, config: Path | None) -> None:
        self.config_path = find_config(config)
        self._settings: Settings | None = None

    def rules(self, path: Path | None = None) -> RuleSet:
        """Rule files from --rules, else [rules] path; a missing default directory means no rules."""
        from sentinel.rules import loader

        target = path or self.settings.rules.resolved_path(self.config_path)
        if path is not None and not path.exists():
            raise ConfigError(f"--rules {path}: no such file or directory")
        return loader.load(target)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            logs.setup(self._settings.logging.level, self._settings.logging.format)
        return self._settings


pass_app = click.make_pass_decorator(_App)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    help="config.toml to read [default: $SENTINEL_CONFIG, ./config.toml, /etc/sentinel/config.toml].",
)
@click.version_option(__version__, prog_name="sentinel")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Sentinel watches the spend flowing through LiteLLM proxies and says when money goes where it should not.

    \b
    Try it with no setup:   sentinel demo
    Read a proxy:           sentinel sync --since 2026-01-01   (then plain `sentinel sync` to poll)
    See what is stored:     sentinel status
    Alert on it:            sentinel evaluate   (rules in rules/*.toml, receivers and routes in config.toml)
    """
    logs.setup()
    ctx.obj = _App(config)


def _parse_day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


def _rules_option(fn: F) -> F:
    return click.option(
        "--rules",
        type=click.Path(path_type=Path),
        help="Rule file or directory [default: rules.path from the config].",
    )(fn)


def _db_option(fn: F) -> F:
    return click.option(
        "--db",
        type=click.Path(path_type=Path, dir_okay=False),
        help="SQLite store to use [default: store.path from the config].",
    )(fn)


@main.command(short_help="Read daily spend from the configured proxies into the store.")
@click.option("--since", callback=_parse_day, metavar="DATE", help="Backfill every UTC day from DATE to today.")
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@_db_option
@pass_app
def sync(app: _App, since: date | None, names: tuple[str, ...], db: Path | None) -> None:
    """Read daily spend from every configured proxy into the store.

    Without --since: poll (re-read the last few days, which still change, and fill any gap).
    With --since: backfill in chunks, resumable after a crash or Ctrl-C.
    """
    from sentinel import privacy
    from sentinel.sync import open_client, sync_source

    settings = app.settings
    sources = [settings.source(n) for n in names] if names else list(settings.sources)
    if not sources:
        raise ConfigError(
            f"no [[sources]] configured ({app.config_path or 'no config file found'}); "
            "see config.example.toml, or try `sentinel demo`"
        )
    store = open_store(db or settings.store.resolved_path())
    failed = 0
    for src in sources:
        now = utc_now()
        try:
            client = open_client(src, settings.sync, store, privacy=privacy.from_settings(settings.privacy))
        except ConfigError as exc:
            failed += 1
            err.print(f"[red]{escape(src.name)}:[/] {escape(str(exc))}", soft_wrap=True)
            continue
        with client, _progress(src.name, since) as progress:
            result = sync_source(store, client, settings.sync, now, since=since, progress=progress)
        if result.error:
            failed += 1
            err.print(f"[red]{escape(src.name)}: sync failed:[/] {escape(result.error)}", soft_wrap=True)
        else:
            out.print(
                f"{src.name}: {result.mode} {result.start}..{result.end}: {result.days} days, {result.rows} rows, "
                f"{result.calls} calls, {result.bytes / 1e6:.1f} MB in {result.seconds:.1f}s"
            )
    if failed:
        sys.exit(5)


class _progress:
    """A rich progress bar (days, ETA) on a terminal; a log line per chunk otherwise."""

    def __init__(self, name: str, since: date | None) -> None:
        self.name = name
        self.enabled = since is not None
        self.bar: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> Callable[[int, int, int, float], None] | None:
        if not self.enabled:
            return None
        if err.is_terminal:
            self.bar = Progress(
                TextColumn(f"backfill {self.name}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("days"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err,
            )
            self.bar.start()
        return self.update

    def update(self, done: int, total: int, chunk: int, seconds: float) -> None:
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("backfill", total=total, completed=done - chunk)
            self.bar.update(self.task, completed=done, total=total)
        else:
            err.print(f"backfill {self.name}: {done}/{total} days ({chunk} in {seconds:.1f}s)")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@main.command(short_help="Sources (last poll, lag, errors), rules, alerts, outbox and the next digest.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def status(app: _App, fmt: str, db: Path | None) -> None:
    """What Sentinel is doing: per source the last poll, the last success and the lag since, days
    stored and the last error; the rules loaded (and any problem); alerts firing; the outbox; the
    last tick of `sentinel run` and the next digest."""
    from sentinel.observe import status_doc, status_tables

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    doc = status_doc(store, utc_now(), sources=[s.name for s in settings.sources])
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    for table in status_tables(doc):
        out.print(table)


@main.command(short_help="Serve a LiteLLM-compatible API over synthetic traffic.")
@click.option("--port", type=int, default=4000, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--users", type=int, default=40, show_default=True)
@click.option("--teams", type=int, default=5, show_default=True)
@click.option("--days", type=int, default=90, show_default=True, help="Days of history, ending today (UTC).")
@click.option("--api-key", default="sk-sim-master", show_default=True, help="The bearer key it accepts.")
@click.option("--access-log", type=click.Path(path_type=Path, dir_okay=False), help="Append requests as JSON lines.")
@click.option("--now", "now_iso", hidden=True, help="Pin the simulated clock (ISO time, UTC); for tests.")
@click.option("--latency", type=float, default=0.0, hidden=True, help="Seconds added to every answer; for tests.")
def simulate(
    port: int,
    seed: int,
    users: int,
    teams: int,
    days: int,
    api_key: str,
    access_log: Path | None,
    now_iso: str | None,
    latency: float,
) -> None:
    """Serve a LiteLLM-compatible API over synthetic, seeded traffic (for trying Sentinel out).

    Only 127.0.0.1 is bound. Point a [[sources]] entry at it with the --api-key value.
    """
    from datetime import UTC, datetime

    from sentinel.simulator import Faults, TrafficConfig, serve_forever

    now = datetime.fromisoformat(now_iso).astimezone(UTC) if now_iso else None
    cfg = TrafficConfig(seed=seed, users=users, teams=teams, days=days, now=now)
    faults = Faults()
    faults.latency_s = latency
    serve_forever("127.0.0.1", port, cfg, api_key=api_key, access_log=access_log, faults=faults)


@main.command(short_help="Simulator + sync + summary, with no setup.")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help="Keep the store here [default: temporary].")
@click.option("--days", type=int, default=90, show_default=True)
@click.option("--users", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--serve/--no-serve",
    default=None,
    help="Keep serving the web view of the demo's data until Ctrl-C [default: when run in a terminal].",
)
def demo(db: Path | None, days: int, users: int, seed: int, serve: bool | None) -> None:
    """Start the built-in simulator, sync its history into SQLite and show what was stored, then the
    URL of the web view over it (served until Ctrl-C in a terminal). No setup needed."""
    from sentinel.cli_web import demo_web
    from sentinel.demo import example_rules, print_summary, run_demo

    summary = run_demo(db=db, days=days, users=users, seed=seed)
    print_summary(summary, out)
    demo_web(
        summary.db_path, serve=sys.stdout.isatty() if serve is None else serve, kept=db is not None, rules=example_rules
    )


def _anomaly_table(records: Sequence[Mapping[str, Any]], title: str, aliases: dict[str, dict[str, str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("day", "left"),
        ("kind", "left"),
        ("entity", "left"),
        ("", "left"),
        ("observed", "right"),
        ("expected", "right"),
        ("impact", "right"),
        ("change", "right"),
        ("days", "right"),
        ("why", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in records:
        kind = str(r["entity_type"])
        ident = str(r["entity_id"])
        name = aliases.get(kind, {}).get(ident) or (ident[:12] + "…" if kind == "key" and len(ident) > 16 else ident)
        pct = r.get("pct_change")
        change = "new" if pct is None else f"{float(pct):+.0%}"
        top = r.get("contributors") or []
        why = ", ".join(f"{c['type']} {str(c['id'])[:24]} {float(c['delta_usd']):+,.2f}" for c in top[:2])
        if r.get("notes"):
            why = "; ".join([*map(str, r["notes"]), why]) if why else "; ".join(map(str, r["notes"]))
        episode = r.get("episode") or {}
        table.add_row(
            str(r["date"]) + (" (so far)" if r.get("partial_day") else ""),
            kind,
            escape(name),
            "▲" if r["direction"] == "up" else "▼",
            f"${float(r['observed']):,.2f}",
            f"${float(r['expected']):,.2f}",
            f"{float(r['impact_usd']):+,.2f}",
            change,
            str(episode.get("days", 1)),
            escape(why),
        )
    return table


def _aliases(store: Any) -> dict[str, dict[str, str]]:
    from sentinel.store import entities as entity_store

    return {
        "user": entity_store.aliases(store, "users"),
        "team": entity_store.aliases(store, "teams"),
        "key": entity_store.aliases(store, "keys"),
    }


@main.command(short_help="List the anomalies in the stored data as of now.")
@click.option("--source", help="Only this source [default: all, summed].")
@click.option("--lookback", type=int, default=7, show_default=True, help="Days of complete history to report.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_db_option
@pass_app
def detect(app: _App, source: str | None, lookback: int, fmt: str, db: Path | None) -> None:
    """Run detection over the stored data as of now.

    Reports the anomaly episodes of the last --lookback complete UTC days and, once enough of the
    day has passed, today's spend so far against the share of a normal day expected by now.
    """
    from sentinel.detect.engine import detect_now

    store = open_store(db or app.settings.store.resolved_path())
    records = detect_now(store, utc_now(), source=source, lookback_days=lookback)
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        out.print(f"No anomalies in the last {lookback} days.")
        return
    out.print(_anomaly_table(records, f"Anomalies, last {lookback} days", _aliases(store)))


@main.command(short_help="Replay anomaly detection and budget alerts over a past period.")
@click.option("--since", callback=_parse_day, required=True, metavar="DATE", help="First UTC day to replay.")
@click.option("--until", callback=_parse_day, metavar="DATE", help="Last UTC day [default: yesterday].")
@click.option("--source", help="Only this source [default: all, summed].")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@_rules_option
@_db_option
@pass_app
def backtest(
    app: _App, since: date, until: date | None, source: str | None, fmt: str, rules: Path | None, db: Path | None
) -> None:
    """Replay detection and budget alerts as if each day were today (each day sees only data up to itself).

    One record per anomaly episode, at its onset, and one per budget alert (a threshold, the soft
    budget or a forecast breach, once per budget window). Proxy budgets are replayed with their
    current limits and with spend summed from daily activity. `--format jsonl` prints one JSON
    object per line (fields in the README under "Anomaly records" and "Budget alerts").
    """
    from datetime import timedelta

    from sentinel.budget.engine import backtest as budget_backtest
    from sentinel.budget.specs import policy_from
    from sentinel.detect.engine import HISTORY_DAYS, load
    from sentinel.detect.engine import backtest as run_backtest

    store = open_store(db or app.settings.store.resolved_path())
    last = until or (utc_now().date() - timedelta(days=1))
    if last < since:
        raise click.BadParameter("--until is before --since")
    data = load(store, since - timedelta(days=HISTORY_DAYS), last, source)
    records = run_backtest(data, since, last)
    budget_alerts = budget_backtest(store, since, last, policy_from(app.settings), app.rules(rules), source=source)
    if fmt == "jsonl":
        merged = sorted([*records, *budget_alerts], key=lambda r: (str(r["date"]), str(r["kind"])))
        for r in merged:
            click.echo(json.dumps(r, separators=(",", ":")))
        return
    out.print(_anomaly_table(records, f"Backtest {since}..{last}: {len(records)} anomaly episodes", _aliases(store)))
    out.print(_budget_alert_table(budget_alerts, f"Budget alerts {since}..{last}: {len(budget_alerts)}"))


def _budget_alert_table(records: Sequence[Mapping[str, Any]], title: str) -> Table:
    from sentinel.budget.evaluate import describe

    table = Table(title=title, title_justify="left")
    for col in ("when (UTC)", "signal", "alert", "drivers"):
        table.add_column(col)
    for r in records:
        drivers = ", ".join(
            f"{d['type']} {str(d['id'])[:20]} ${float(d['spend_usd']):,.2f}" for d in list(r.get("drivers") or [])[:3]
        )
        table.add_row(
            str(r["detected_at"])[:16].replace("T", " "),
            str(r["signal"]),
            escape(describe(dict(r))),
            escape(drivers),
        )
    return table


@main.command(short_help="Every budget: spent, limit, forecast at window end, breach ETA.")
@click.option("--source", help="Only this source's budgets (and rule budgets on it).")
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(["state", "used", "spent", "limit", "eta", "forecast", "window-end", "name"]),
    default="state",
    show_default=True,
    help="Order of the rows (state: exceeded, at risk, soft exceeded, ok; then by % used).",
)
@click.option("--limit", "max_rows", type=int, help="Show at most this many rows.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--alerts",
    is_flag=True,
    help="Also evaluate thresholds and forecasts now, remember what fired, and print the new alerts "
    "(each fires once per budget window, as the daemon does).",
)
@_rules_option
@_db_option
@pass_app
def budgets(
    app: _App,
    source: str | None,
    sort_by: str,
    max_rows: int | None,
    fmt: str,
    alerts: bool,
    rules: Path | None,
    db: Path | None,
) -> None:
    """Every budget Sentinel watches, as of now.

    \b
    Proxy budgets: the max and soft budgets of teams, users and keys, with the proxy's own spend
    counter for the current window (read at the last sync).
    Rule budgets: [[budget]] tables in the rule files, with spend summed from daily activity.

    The forecast carries each entity's weekly spending pattern, at its current level, to the end
    of the window, with an interval, the chance of reaching the limit before the reset, and when
    that would happen.
    """
    from sentinel.budget import report
    from sentinel.budget.engine import check, context, statuses, with_drivers
    from sentinel.budget.evaluate import describe
    from sentinel.budget.specs import policy_from

    settings = app.settings
    store = open_store(db or settings.store.resolved_path())
    now = utc_now()
    ctx = context(store, now)
    current = statuses(store, now, policy_from(settings), app.rules(rules), source=source, ctx=ctx)
    fired = check(store, current, now, ctx) if alerts else []
    rows = report.sort(current, sort_by)[: max_rows or None]
    if fmt == "json":
        rows = with_drivers(store, rows, now, ctx)
        doc: dict[str, Any] = {"as_of": now.isoformat(), "budgets": [report.to_json(s) for s in rows]}
        if alerts:
            doc["alerts"] = fired
        click.echo(json.dumps(doc, indent=2))
        return
    if not current:
        out.print("No budgets: the proxies' teams, users and keys have none, and no rule file sets one.")
    else:
        out.print(report.table(rows, f"Budgets as of {now:%Y-%m-%d %H:%M} UTC ({len(current)} in all)"))
    if alerts:
        if not fired:
            out.print("No new budget alerts (each fires once per budget window).")
        for a in fired:
            out.print(f"[bold]{escape(str(a['signal']))}[/]: {escape(describe(a))}")


@main.group(short_help="Check and test the rule files.")
def rules() -> None:
    """Rule files (rules/*.toml): typed, versioned, checked before they are used."""


@rules.command("check", short_help="Report every problem in the rule files, or say they are valid.")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@pass_app
def rules_check(app: _App, path: Path | None) -> None:
    """Load every rule file under PATH (a file or a directory of *.toml) [default: rules.path from the
    config] and report every problem at once, each with its file, line, rule and field.

    Exit status 0 when all files are valid, 2 when any is not (so it can gate a deploy).
    """
    from sentinel.rules import loader

    target = path or app.settings.rules.resolved_path(app.config_path)
    if not target.exists():
        raise ConfigError(f"{target}: no such file or directory")
    found, problems = loader.check(target)
    for problem in problems:
        err.print(escape(str(problem)), soft_wrap=True)
    if problems:
        err.print(f"{len(problems)} problem(s) in {len(found.files)} file(s)")
        sys.exit(2)
    counts = {
        "anomaly": len(found.anomalies),
        "budget": len(found.budgets),
        "threshold": len(found.thresholds),
        "absence": len(found.absences),
    }
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no rules"
    out.print(f"{len(found.files)} file(s), {len(found)} rule(s) ({kinds}): all valid")


# The alerting commands (evaluate, deliver, alerts, silence, notify, rules test), the digest, the
# service (run) and the web view (web) live in their own modules, which register their commands on `main`.
from sentinel import cli_alerting, cli_digest, cli_purge, cli_quality, cli_report, cli_run, cli_web  # noqa: E402,F401
