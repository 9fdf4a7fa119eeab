"""`sentinel run`: the loop as a library.

    run_forever(flags)                       signal handlers only set flags (stop, reload)
      └ every poll_every (+ jitter): run_once(now)
            1 poll      every source (one failing never stops the others; its error is kept)
            2 rules     pick up edited rule files (a bad edit keeps the running rules + operator alert)
            3 alerting  evaluate (anomalies with today's fits, budgets, thresholds, absences) → route
                        → alert state + outbox in one transaction → deliver
            4 digest    when due, once per period
            5 purge     once per UTC day, what [retention] no longer keeps (retention.scheduled)
            6 state     what `sentinel status` and /metrics show
        between polls, every deliver_every: deliver what is due (retries, group intervals)
        sleeps are sliced to a second, so SIGTERM is handled within one; the watchdog is pinged
      └ stop: finish the step, deliver what is due for up to shutdown_grace, STOPPING=1, exit 0

`run_once(now)` is what tests and `sentinel run --once` call.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sentinel import privacy, sdnotify
from sentinel.alerting import CycleReport, Routing, run_cycle, source_health
from sentinel.clock import utc_now, utc_today
from sentinel.config import Settings, load_settings, parse_duration
from sentinel.digest.send import DigestReport, send_due
from sentinel.errors import ConfigError, SentinelError
from sentinel.notify.model import Alert, Receiver
from sentinel.notify.pipeline import deliver
from sentinel.notify.receivers import build_all
from sentinel.observe import read_state, write_state
from sentinel.rules import evaluate as ev
from sentinel.rules.reload import RuleReloader
from sentinel.rules.schema import AbsenceRule
from sentinel.store import open_store, retention, transaction
from sentinel.store import state as state_store
from sentinel.sync import open_client, sync_source

log = logging.getLogger("sentinel.daemon")

SOURCE_RULE = "sentinel-source"  # the operator alert for a source that stopped answering
CONFIG_RULE = "sentinel-config"  # the operator alert for a config reload that failed


@dataclass
class Flags:
    """Set by signal handlers, read by the loop; nothing else happens in a handler."""

    stop: bool = False
    reload: bool = False


def install_signal_handlers(flags: Flags) -> None:
    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        flags.stop = True

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        flags.reload = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)


@dataclass
class TickReport:
    at: datetime
    duration_s: float = 0.0
    polled: dict[str, str] = field(default_factory=dict)  # source -> "ok" or its error
    alerting: CycleReport | None = None
    digest: DigestReport | None = None
    purged: retention.Counts | None = None  # the day's scheduled purge, on the tick that ran it
    errors: list[str] = field(default_factory=list)


class Daemon:
    """One Sentinel service: its settings, store, rules, receivers and the steps of a tick."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        *,
        clock: Callable[[], datetime] = utc_now,
        environ: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config_path = config_path
        self.clock = clock
        self.environ = dict(environ) if environ is not None else None
        self.rng = rng or random.Random()
        self.settings = settings
        self.store = open_store(settings.store.resolved_path(self.environ))
        self.notifier = sdnotify.Notifier.from_env(self.environ)
        self.ready = False
        self._next_ping = 0.0
        self.config_problem: str | None = None
        self.config_failed_since: datetime | None = None
        self.last_tick: TickReport | None = None
        # Anomaly episodes of the complete days, reused by the ticks of a day (see alerting.evaluate).
        self.memo: dict[tuple[object, ...], list[dict[str, object]]] = {}
        self.reloader = RuleReloader(settings.rules.resolved_path(config_path), db=self.store).start(clock())
        self._apply(settings)

    def _apply(self, settings: Settings) -> None:
        """Build what depends on the settings (receivers read their secrets now); the receivers
        they replace close their connections."""
        receivers: dict[str, Receiver] = build_all(settings.receivers, self._audit, self.environ)
        routing = Routing.from_settings(settings)
        for old in getattr(self, "receivers", {}).values():
            close = getattr(old, "close", None)
            if callable(close):
                close()
        self.receivers, self.routing, self.settings = receivers, routing, settings

    def _audit(self, record: Any) -> None:
        state_store.record_audit(self.store, record)

    # ------------------------------------------------------------------------------------------ one tick
    def run_once(self, now: datetime | None = None) -> TickReport:
        moment = now or self.clock()
        began = time.monotonic()
        report = TickReport(moment)
        for src in self.settings.sources:
            report.polled[src.name] = self._poll(src.name, moment)
            self.alive()
        self.reloader.poll(moment)
        try:
            report.alerting = run_cycle(
                self.store,
                self.settings,
                self.reloader.rules,
                self.receivers,
                moment,
                extra=self.operator_alerts(moment),
                memo=self.memo,
            )
            report.errors += report.alerting.evaluation.errors
            if report.alerting.delivery:
                report.errors += report.alerting.delivery.errors
        except Exception as exc:  # the store locked, or a bug: say so, keep the loop, try again next tick
            report.errors.append(f"alerting: {type(exc).__name__}: {exc}")
            log.exception("alerting failed")
        self.alive()
        report.digest = self._digest(moment, report)
        report.purged = self._purge(moment, report)
        _release_memory()
        report.duration_s = round(time.monotonic() - began, 3)
        report.errors += [f"source {n}: {e}" for n, e in report.polled.items() if e != "ok"]
        self.last_tick = report
        try:
            self._write_state(report)
        except Exception as exc:  # status is a view: a locked store must not stop the loop
            log.error("could not record the tick for `sentinel status`: %s", exc)
        return report

    def _poll(self, name: str, now: datetime) -> str:
        src = self.settings.source(name)
        try:
            client = open_client(
                src,
                self.settings.sync,
                self.store,
                self.environ,
                privacy=privacy.from_settings(self.settings.privacy, self.environ),
            )
        except ConfigError as exc:  # its key cannot be read: the source is down as far as we can tell
            with transaction(self.store):
                state_store.mark_error(self.store, name, now, str(exc))
            return str(exc)
        state = state_store.get_state(self.store, name)
        since = None
        if state.backfill_since and not state.backfill_done_at:
            since = datetime.fromisoformat(state.backfill_since).date()  # resume the unfinished backfill
        elif not state_store.source_status(self.store, name).days_stored:
            since = utc_today(now) - timedelta(days=self.settings.daemon.initial_backfill_days - 1)
        try:
            with client:
                result = sync_source(self.store, client, self.settings.sync, now, since=since, progress=self.alive)
        except Exception as exc:  # one source never stops the others
            log.exception("source %s: poll failed", name)
            return f"{type(exc).__name__}: {exc}"
        return result.error or "ok"

    def alive(self, *_progress: object) -> None:
        """Tell systemd we are alive: the watchdog from long steps too (a backfill's chunks), and
        before the first READY, more time to start (a first backfill can take minutes)."""
        if time.monotonic() < self._next_ping:
            return
        interval = self.notifier.watchdog_interval() or 30.0
        self._next_ping = time.monotonic() + interval
        self.notifier.watchdog()
        if not self.ready:
            self.notifier.extend_timeout(4 * interval)

    def operator_alerts(self, now: datetime) -> list[Alert]:
        """Sentinel about itself: rule files that do not load, a config reload that failed, and
        sources unreachable or without new data for longer than source_stale_after."""
        out = list(self.reloader.operator_alerts(now))
        stale = AbsenceRule.model_validate(
            {
                "name": SOURCE_RULE,
                "entity": "source",
                "for": self.settings.daemon.source_stale_after,
                "severity": "critical",
            }
        )
        configured = {s.name for s in self.settings.sources}
        health = [h for h in source_health(self.store) if h.source in configured]
        for alert in ev.source_absence_alerts(stale, health, now):
            out.append(
                replace(alert, labels={**alert.labels, "kind": "operator"}, record={**alert.record, "kind": "operator"})
            )
        if self.config_problem:
            out.append(
                ev.operator_alert(
                    CONFIG_RULE,
                    str(self.config_path),
                    f"config reload failed, still running the previous config: {self.config_problem}",
                    self.config_failed_since or now,
                    now,
                    {"problem": self.config_problem},
                )
            )
        return out

    def _digest(self, now: datetime, report: TickReport) -> DigestReport | None:
        """The weekly digest when it is due (once per period, across restarts)."""
        try:
            sent = send_due(
                self.store,
                self.settings,
                now,
                environ=self.environ,
                receivers=self.receivers,
                rules=self.reloader.rules,
            )
        except Exception as exc:  # a digest that fails never stops the alerting
            report.errors.append(f"digest: {type(exc).__name__}: {exc}")
            log.exception("digest failed")
            return None
        report.errors += [f"digest: {p}" for p in sent.problems]
        last = self.store.conn.execute("SELECT MAX(sent_at) FROM digests WHERE state = 'sent'").fetchone()[0]
        write_state(
            self.store,
            "digest",
            {"next_at": sent.next_due.isoformat() if sent.next_due else None, "last_sent_at": last},
            now,
        )
        return sent

    def _purge(self, now: datetime, report: TickReport) -> retention.Counts | None:
        """The [retention] policy, on the first tick of each UTC day (the day is kept in daemon_state)."""
        if not self.settings.retention.scheduled:
            return None
        today = utc_today(now).isoformat()
        try:
            last = read_state(self.store, "purge")
            if last is not None and last.get("day") == today:
                return None
            counts = retention.purge_policy(self.store, now, self.settings.retention)
            write_state(self.store, "purge", {"day": today, "at": now.isoformat(), "deleted": counts.deleted}, now)
        except Exception as exc:  # a purge that fails never stops the loop; the next tick tries again
            report.errors.append(f"purge: {type(exc).__name__}: {exc}")
            log.exception("purge failed")
            return None
        if counts.total:
            gone = ", ".join(f"{n} {table}" for table, n in counts.deleted.items() if n)
            log.info("retention: purged %d rows (%s)", counts.total, gone)
        return counts

    def _write_state(self, report: TickReport) -> None:
        r = self.reloader
        write_state(
            self.store,
            "tick",
            {"at": report.at.isoformat(), "duration_s": report.duration_s, "errors": report.errors[:20]},
            report.at,
        )
        write_state(
            self.store,
            "rules",
            {
                "loaded_at": r.loaded_at.isoformat() if r.loaded_at else None,
                "files": [str(f) for f in r.rules.files],
                "rules": len(r.rules),
                "problems": [str(p) for p in r.problems],
            },
            report.at,
        )

    # ------------------------------------------------------------------------------------------ reload
    def reload(self, now: datetime) -> bool:
        """SIGHUP: read the config and the rules again; swap only what is valid."""
        self.notifier.reloading()
        swapped = False
        try:
            fresh = load_settings(self.config_path)
            self._apply(fresh)
            self.config_problem, self.config_failed_since = None, None
            swapped = True
            log.info("config reloaded from %s", self.config_path)
        except SentinelError as exc:  # ConfigError, or a receiver secret that cannot be read
            self.config_problem = str(exc)
            self.config_failed_since = self.config_failed_since or now
            log.error("config reload failed, keeping the running config: %s", exc)
        self.reloader.path = self.settings.rules.resolved_path(self.config_path)
        if self.reloader.poll(now, force=True):
            log.info("rules reloaded: %d rule(s)", len(self.reloader.rules))
        elif self.reloader.problems:
            log.error("rule files do not load, keeping the running rules: %s", self.reloader.problems[0])
        self.notifier.ready(self._status_line())
        return swapped

    def _status_line(self) -> str:
        t = self.last_tick
        if t is None:
            return "starting"
        firing = t.alerting.firing if t.alerting else 0
        bad = [n for n, e in t.polled.items() if e != "ok"]
        return f"last tick {t.at:%H:%M:%S} UTC, {firing} alert(s) firing" + (
            f", failing: {', '.join(bad)}" if bad else ""
        )

    def healthy(self) -> tuple[bool, str]:
        """For /healthz: the last tick is no older than two poll intervals."""
        if self.last_tick is None:
            return False, "no tick yet"
        age = self.clock() - self.last_tick.at
        limit = 2 * parse_duration(self.settings.daemon.poll_every) + timedelta(minutes=1)
        if age > limit:
            return False, f"last tick {age.total_seconds():.0f} s ago"
        return True, "ok"

    # ------------------------------------------------------------------------------------------ the loop
    def run_forever(self, flags: Flags, *, sleep: Callable[[float], None] = time.sleep) -> int:
        d = self.settings.daemon
        next_poll = self.clock()
        next_deliver = next_poll
        while not flags.stop:
            now = self.clock()
            if flags.reload:
                flags.reload = False
                self.reload(now)
            if now >= next_poll:
                report = self.run_once(now)
                jitter = self.rng.uniform(0, parse_duration(d.poll_jitter).total_seconds())
                next_poll = now + parse_duration(d.poll_every) + timedelta(seconds=jitter)
                next_deliver = now + parse_duration(d.deliver_every)
                if not self.ready:
                    self.notifier.ready(self._status_line())
                    self.ready = True
                else:
                    self.notifier.status(self._status_line())
                for error in report.errors:
                    log.warning("%s", error)
            elif now >= next_deliver:
                self._deliver(now)
                next_deliver = now + parse_duration(d.deliver_every)
            self.alive()
            sleep(1.0)
        self.notifier.stopping()
        self._drain()
        return 0

    def _deliver(self, now: datetime) -> None:
        try:
            deliver(self.store, self.receivers, self.settings.delivery, self.routing.inhibit, now)
        except SentinelError as exc:
            log.error("delivery failed: %s", exc)

    def _drain(self) -> None:
        """On stop: deliver what is due, for at most shutdown_grace; the rest stays queued."""
        deadline = time.monotonic() + parse_duration(self.settings.daemon.shutdown_grace).total_seconds()
        while time.monotonic() < deadline:
            report = deliver(self.store, self.receivers, self.settings.delivery, self.routing.inhibit, self.clock())
            if not (report.sent or report.retried):
                break
        self.store.conn.close()


def _release_memory() -> None:
    """Hand the tick's freed memory back to the system. A tick builds large frames and matrices
    and frees them; glibc keeps the freed pages in its arenas, so without this the resident size
    of a steady daemon stays at its peak."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
