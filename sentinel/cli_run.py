"""`sentinel run`: the long-running service (or one tick of it with --once)."""

from __future__ import annotations

import logging
import sys

import click
from rich.markup import escape

from sentinel.cli import _App, err, main, out, pass_app
from sentinel.errors import ConfigError

log = logging.getLogger("sentinel.daemon")


@main.command(short_help="Run as a service: poll, detect, alert and send digests until stopped.")
@click.option("--once", is_flag=True, help="Run one tick (poll, evaluate, deliver, digest if due) and exit.")
@pass_app
def run(app: _App, once: bool) -> None:
    """Run Sentinel as a service (systemd: packaging/sentinel.service).

    \b
    Every [daemon] poll_every (15m): poll every source, pick up edited rule files, evaluate the
    rules, route and deliver alerts, and send the digest when it is due; between polls, deliver
    what is due every deliver_every. SIGHUP reloads the config and the rules (a bad one keeps the
    old, and raises an operator alert); SIGTERM or Ctrl-C finishes the step, delivers what is due
    for up to shutdown_grace, and exits 0. With [daemon] metrics_port, /metrics and /healthz are
    served on 127.0.0.1, and with [daemon] web = true the read-only web view too (changes to those
    settings take a restart).

    Exit status of --once: 0, or 1 if a source, a rule or a delivery failed.
    """
    from sentinel.daemon import Daemon, Flags, install_signal_handlers

    daemon = Daemon(app.settings, app.config_path)
    if once:
        report = daemon.run_once()
        polled = ", ".join(f"{n}: {escape(e)}" for n, e in report.polled.items()) or "no sources configured"
        cycle = report.alerting
        firing = f"{cycle.firing} firing, {cycle.new} new, {cycle.resolved} resolved" if cycle else "not evaluated"
        out.print(f"tick at {report.at:%Y-%m-%d %H:%M:%S} UTC in {report.duration_s:.1f}s: {polled}; alerts {firing}")
        for problem in report.errors:
            err.print(f"[red]problem:[/] {escape(problem)}", soft_wrap=True)
        sys.exit(1 if report.errors else 0)
    flags = Flags()
    install_signal_handlers(flags)
    server = None
    d = app.settings.daemon
    if d.metrics_port:
        from sentinel.observe import HealthServer

        web = None
        if d.web:
            from sentinel.web import WebApp, is_loopback, prepare_store

            if d.web_user is None and not is_loopback(d.metrics_host):
                log.warning(
                    "the web view on %s has no basic auth: whoever reaches it can read the spend", d.metrics_host
                )

            prepare_store(app.settings.store.resolved_path())  # its indexes, built once (seconds on a big store)
            # The running rules (they reload on SIGHUP) evaluate budgets only until a tick has kept them.
            web = WebApp.from_settings(app.settings, lambda: daemon.reloader.rules)
        server = HealthServer(
            app.settings.store.resolved_path(), d.metrics_host, d.metrics_port, daemon.healthy, web=web
        )
        try:
            server.start()
        except OSError as exc:
            raise ConfigError(
                f"daemon.metrics_port: cannot listen on {d.metrics_host}:{d.metrics_port}: {exc}"
            ) from None
        log.info("serving /metrics and /healthz on http://%s:%d", d.metrics_host, server.port)
        if web is not None:
            log.info("serving the web view on http://%s:%d/", d.metrics_host, server.port)
    try:
        code = daemon.run_forever(flags)
    finally:
        if server is not None:
            server.stop()
    log.info("stopped")
    sys.exit(code)
