"""`sentinel web`: the read-only web view over a store until Ctrl-C, and the demo's view of its data.

Thin like the rest of the CLI: the view is ``sentinel.web``, served by ``observe.HealthServer``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import click

from sentinel.cli import _App, _db_option, _rules_option, err, main, pass_app
from sentinel.clock import Clock, fixed, utc_now
from sentinel.errors import ConfigError
from sentinel.observe import HealthServer
from sentinel.rules.loader import RuleSet


def serve_until_interrupted(server: HealthServer) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM, then stop serving. The handlers are set here, since a
    process started in the background may have inherited SIGINT ignored."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    click.echo("stopped")


def _rules_once(load: Callable[[], RuleSet]) -> Callable[[], RuleSet]:
    """Load the rule files the first time budgets need them (only when no evaluation is kept)."""
    loaded: list[RuleSet] = []

    def rules() -> RuleSet:
        if not loaded:
            loaded.append(load())
        return loaded[0]

    return rules


@main.command(short_help="Serve the read-only web view over a store until Ctrl-C.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option(
    "--now",
    "now_iso",
    metavar="ISO",
    help="Show the store as of this UTC moment (2026-11-26T15:30) instead of the clock: for a store of past data.",
)
@_rules_option
@_db_option
@pass_app
def web(app: _App, host: str, port: int, now_iso: str | None, rules: Path | None, db: Path | None) -> None:
    """Serve the read-only web view of a store (the daemon serves it with [daemon] web = true):

    \b
    /                 spend per day with the baseline band, by provider, by team, top users and models
    /team/ID, /user/ID, /model/ID, /key/HASH
                      an entity's series, contributors, anomaly alerts and budget runway
    /anomalies        anomaly alerts, firing and resolved, with their impact
    /budgets          every budget: spent, limit, used, reset, forecast, breach chance

    Prints the URL, then serves until Ctrl-C. The first time a store is served, two indexes the view
    reads by are added to it (seconds on a big store); no data is ever written. With [daemon]
    web_user set in the config, pages ask for that user and its password (basic auth).
    """
    from sentinel.web import WebApp, is_loopback

    path = db or app.settings.store.resolved_path()
    if not path.is_file():
        raise ConfigError(
            f"no store at {path}: sync one (`sentinel sync`), or keep the demo's (`sentinel demo --db PATH`)"
        )
    clock: Clock = utc_now
    if now_iso:
        try:
            moment = datetime.fromisoformat(now_iso)
        except ValueError:
            raise click.BadParameter(f"{now_iso!r} is not an ISO-8601 moment", param_hint="--now") from None
        clock = fixed(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    _prepare(path)  # migrate and index now, not on the first page
    view = WebApp.from_settings(app.settings, _rules_once(lambda: app.rules(rules)))
    if view.username is None and not is_loopback(host):
        err.print(f"[yellow]warning:[/] serving on {host} without basic auth: whoever reaches it can read the spend")
    server = HealthServer(path, host, port, clock=clock, web=view)
    try:
        server.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None
    click.echo(f"Web view of {path}: {server.url}/ (Ctrl-C to stop)")
    serve_until_interrupted(server)


def _prepare(path: Path) -> None:
    from sentinel.web import prepare_store

    seconds = prepare_store(path)
    if seconds is not None and seconds >= 1:
        click.echo(f"Built the web view's indexes in {seconds:.0f} s (once for this store; syncs keep them).")


def demo_web(path: Path, *, serve: bool, kept: bool, rules: Callable[[], RuleSet]) -> None:
    """After `sentinel demo`: the web view over its store, served until Ctrl-C (``serve``) or not."""
    from sentinel.web import WebApp

    _prepare(path)
    server = HealthServer(path, "127.0.0.1", 0, web=WebApp(rules=_rules_once(rules)))
    server.start()
    url = f"{server.url}/"
    if serve:
        click.echo(f"\nWeb view of the demo's data: {url} (serving until Ctrl-C)")
        serve_until_interrupted(server)
        return
    server.stop()
    click.echo(
        f"\nWeb view of the demo's data: {url} (not kept running without a terminal: "
        f"run `sentinel demo --serve`, or `sentinel web --db {path}` to browse this store)"
    )
    if not kept:
        click.echo("The store is in a temporary directory; `sentinel demo --db demo.db` keeps it where you choose.")
