"""What the daemon shows about itself: Prometheus metrics, the `sentinel status` document, and a
small HTTP server for ``/metrics`` and ``/healthz``.

Everything here is read from the store, so a scrape and `sentinel status` see what the daemon
committed, whichever process asks. The daemon adds what only it knows to ``daemon_state``
(:func:`write_state`): its last tick, rule health and the next digest.

Metrics (one fresh registry per scrape; no global state)::

    sentinel_source_up{source}                                1 if the last poll succeeded
    sentinel_source_last_poll_timestamp_seconds{source}
    sentinel_source_last_success_timestamp_seconds{source}    (absent until a poll succeeds)
    sentinel_days_stored{source}                              UTC days of activity stored
    sentinel_alerts_firing{severity,kind}
    sentinel_silences_active
    sentinel_outbox_messages{state}                           every known state, 0 included
    sentinel_outbox_oldest_waiting_age_seconds                oldest pending/claimed message (0: none)
    sentinel_delivery_attempts_total{receiver,outcome}
    sentinel_last_tick_timestamp_seconds                      } from daemon_state; absent until
    sentinel_tick_duration_seconds                            } the daemon wrote them
    sentinel_tick_errors                                      }
    sentinel_rules_loaded / sentinel_rules_problems           }
    sentinel_rules_loaded_timestamp_seconds                   }
    sentinel_digest_next_timestamp_seconds                    }
    sentinel_digest_last_sent_timestamp_seconds               (digests table)
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import sqlite_utils
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import exposition as _exposition
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from rich.table import Table
from rich.text import Text

from sentinel.clock import Clock, utc_now
from sentinel.store import open_reader, open_store, read_snapshot, transaction
from sentinel.store import outbox as outbox_store
from sentinel.store import silences as silence_store
from sentinel.store import state as state_store

if TYPE_CHECKING:
    from sentinel.web import WebApp

log = logging.getLogger("sentinel.observe")

# The classic text format (what generate_latest writes for our names). prometheus_client ≥0.22 calls the
# 1.0.0 text format "latest", though it writes the same bytes for names like ours; 0.0.4 is what every
# Prometheus understands.
CONTENT_TYPE: str = getattr(_exposition, "CONTENT_TYPE_PLAIN_0_0_4", _exposition.CONTENT_TYPE_LATEST)

OUTBOX_STATES = ("pending", "claimed", "sent", "failed", "silenced", "inhibited")
_WAITING = ("pending", "claimed")
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


# --------------------------------------------------------------------------------------------- daemon_state
def write_state(db: sqlite_utils.Database, key: str, value: Mapping[str, Any], now: datetime) -> None:
    """Store ``value`` (JSON) under ``key`` in ``daemon_state``, in its own transaction."""
    text = json.dumps(dict(value), default=str, sort_keys=True)
    with transaction(db):
        db.conn.execute(
            "INSERT INTO daemon_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, text, now.isoformat()),
        )


def read_state(db: sqlite_utils.Database, key: str) -> dict[str, Any] | None:
    """The object stored under ``key``, or None if there is none (or it is not a JSON object)."""
    row = db.conn.execute("SELECT value FROM daemon_state WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        loaded = json.loads(row[0])
    except ValueError:
        log.debug("daemon_state %r is not JSON", key)
        return None
    return loaded if isinstance(loaded, dict) else None


# --------------------------------------------------------------------------------------------- one snapshot
def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ts(text: object) -> float | None:
    moment = _parse(text)
    return moment.timestamp() if moment else None


def _age(text: object, now: datetime) -> float | None:
    moment = _parse(text)
    return round((now - moment).total_seconds(), 3) if moment else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: object) -> int | None:
    """A count given as a number or as the list of what is counted."""
    if isinstance(value, list | tuple):
        return len(value)
    number = _number(value)
    return int(number) if number is not None else None


@dataclass(frozen=True)
class _Snapshot:
    sources: list[state_store.SourceStatus]
    firing: list[tuple[str, str, int]]  # severity, kind, count
    outbox: dict[str, int]
    oldest_waiting_at: str | None
    attempts: list[tuple[str, str, int]]  # receiver, outcome, count
    silences_active: int
    digest_last_sent_at: str | None
    tick: dict[str, Any] | None
    rules: dict[str, Any] | None
    digest: dict[str, Any] | None


def _snapshot(db: sqlite_utils.Database, now: datetime, sources: Iterable[str] = ()) -> _Snapshot:
    with read_snapshot(db):
        names = sorted(set(sources) | set(state_store.known_sources(db)))
        firing = [
            (str(sev), str(kind or ""), int(n))
            for sev, kind, n in db.conn.execute(
                "SELECT severity, json_extract(labels, '$.kind') AS kind, COUNT(*) FROM alerts "
                "WHERE status = 'firing' GROUP BY severity, kind ORDER BY severity, kind"
            )
        ]
        marks = ", ".join("?" * len(_WAITING))
        oldest = db.conn.execute(f"SELECT MIN(created_at) FROM outbox WHERE state IN ({marks})", _WAITING).fetchone()
        attempts = [
            (str(r), str(o), int(n))
            for r, o, n in db.conn.execute(
                "SELECT receiver, outcome, COUNT(*) FROM delivery_attempts GROUP BY receiver, outcome "
                "ORDER BY receiver, outcome"
            )
        ]
        sent = db.conn.execute("SELECT MAX(sent_at) FROM digests WHERE sent_at IS NOT NULL").fetchone()
        return _Snapshot(
            sources=[state_store.source_status(db, n) for n in names],
            firing=firing,
            outbox=outbox_store.depth(db),
            oldest_waiting_at=oldest[0] if oldest else None,
            attempts=attempts,
            silences_active=len(silence_store.active(db, now)),
            digest_last_sent_at=sent[0] if sent else None,
            tick=read_state(db, "tick"),
            rules=read_state(db, "rules"),
            digest=read_state(db, "digest"),
        )


# --------------------------------------------------------------------------------------------- metrics
class _StoreCollector:
    """A prometheus_client collector over one snapshot of the store."""

    def __init__(self, snap: _Snapshot, now: datetime) -> None:
        self.snap = snap
        self.now = now

    def collect(self) -> Iterable[Metric]:
        s = self.snap
        up = GaugeMetricFamily("sentinel_source_up", "1 if the source's last poll succeeded.", labels=["source"])
        polled = GaugeMetricFamily(
            "sentinel_source_last_poll_timestamp_seconds", "When the source was last polled.", labels=["source"]
        )
        success = GaugeMetricFamily(
            "sentinel_source_last_success_timestamp_seconds",
            "When a poll of the source last succeeded.",
            labels=["source"],
        )
        days = GaugeMetricFamily("sentinel_days_stored", "UTC days of activity stored per source.", labels=["source"])
        for src in s.sources:
            up.add_metric([src.source], 1.0 if state_store.is_up(src.state) else 0.0)
            days.add_metric([src.source], float(src.days_stored))
            if (t := _ts(src.state.last_poll_at)) is not None:
                polled.add_metric([src.source], t)
            if (t := _ts(src.state.last_success_at)) is not None:
                success.add_metric([src.source], t)
        yield from (up, polled, success, days)

        firing = GaugeMetricFamily(
            "sentinel_alerts_firing", "Alerts firing, by severity and kind.", labels=["severity", "kind"]
        )
        for severity, kind, n in s.firing:
            firing.add_metric([severity, kind], float(n))
        yield firing
        yield GaugeMetricFamily("sentinel_silences_active", "Silences active now.", value=float(s.silences_active))

        outbox = GaugeMetricFamily("sentinel_outbox_messages", "Outbox messages by state.", labels=["state"])
        for state in sorted(set(OUTBOX_STATES) | set(s.outbox)):
            outbox.add_metric([state], float(s.outbox.get(state, 0)))
        yield outbox
        waiting = _age(s.oldest_waiting_at, self.now)
        yield GaugeMetricFamily(
            "sentinel_outbox_oldest_waiting_age_seconds",
            "Age of the oldest message not yet sent (pending or claimed); 0 when none waits.",
            value=max(0.0, waiting or 0.0),
        )
        attempts = CounterMetricFamily(
            "sentinel_delivery_attempts", "Delivery attempts, by receiver and outcome.", labels=["receiver", "outcome"]
        )
        for receiver, outcome, n in s.attempts:
            attempts.add_metric([receiver, outcome], float(n))
        yield attempts

        tick = s.tick or {}
        if (t := _ts(tick.get("at"))) is not None:
            yield GaugeMetricFamily("sentinel_last_tick_timestamp_seconds", "When the last tick ran.", value=t)
        if (v := _number(tick.get("duration_s"))) is not None:
            yield GaugeMetricFamily("sentinel_tick_duration_seconds", "How long the last tick took.", value=v)
        if (c := _count(tick.get("errors"))) is not None:
            yield GaugeMetricFamily("sentinel_tick_errors", "Errors in the last tick.", value=float(c))

        rules = s.rules or {}
        if (c := _count(rules.get("rules"))) is not None:
            yield GaugeMetricFamily("sentinel_rules_loaded", "Rules running.", value=float(c))
        if (c := _count(rules.get("problems"))) is not None:
            yield GaugeMetricFamily("sentinel_rules_problems", "Problems in the rule files on disk.", value=float(c))
        if (t := _ts(rules.get("loaded_at"))) is not None:
            yield GaugeMetricFamily(
                "sentinel_rules_loaded_timestamp_seconds", "When the running rules were loaded.", value=t
            )

        digest = s.digest or {}
        if (t := _ts(digest.get("next_at"))) is not None:
            yield GaugeMetricFamily("sentinel_digest_next_timestamp_seconds", "When the next digest is due.", value=t)
        if (t := _ts(s.digest_last_sent_at)) is not None:
            yield GaugeMetricFamily(
                "sentinel_digest_last_sent_timestamp_seconds", "When a digest was last sent.", value=t
            )


def metrics_text(db: sqlite_utils.Database, now: datetime) -> bytes:
    """The store's state in the Prometheus text exposition format (see :data:`CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StoreCollector(_snapshot(db, now), now))
    return generate_latest(registry)


# --------------------------------------------------------------------------------------------- status
def status_doc(db: sqlite_utils.Database, now: datetime, *, sources: Iterable[str] = ()) -> dict[str, Any]:
    """What `sentinel status` shows (``--format json`` prints exactly this).

    ``sources`` adds configured sources that have not been polled yet to those the store knows."""
    s = _snapshot(db, now, sources)
    docs = []
    for r in s.sources:
        docs.append(
            {
                "source": r.source,
                "up": state_store.is_up(r.state),
                "last_poll_at": r.state.last_poll_at,
                "last_success_at": r.state.last_success_at,
                "lag_s": _age(r.state.last_success_at, now),
                "last_error": r.state.last_error,
                "last_error_at": r.state.last_error_at,
                "days_stored": r.days_stored,
                "final_days": r.final_days,
                "first_day": r.first_day,
                "last_day": r.last_day,
                "backfill_since": r.state.backfill_since,
                "backfill_cursor": r.state.backfill_cursor,
                "backfill_done_at": r.state.backfill_done_at,
                "api_calls": r.audit_calls,
            }
        )
    by_severity: dict[str, int] = {}
    for severity, _kind, n in sorted(s.firing, key=lambda f: (_SEVERITY_ORDER.get(f[0], len(_SEVERITY_ORDER)), f[0])):
        by_severity[severity] = by_severity.get(severity, 0) + n
    tick = dict(s.tick) if s.tick is not None else None
    if tick is not None:
        tick["age_s"] = _age(tick.get("at"), now)
    digest = dict(s.digest or {})
    if s.digest is not None or s.digest_last_sent_at is not None:
        digest.setdefault("next_at", None)
        if not digest.get("last_sent_at"):
            digest["last_sent_at"] = s.digest_last_sent_at
    return {
        "at": now.isoformat(),
        "sources": docs,
        "rules": s.rules,
        "tick": tick,
        "alerts_firing": by_severity,
        "silences_active": s.silences_active,
        "outbox": {state: s.outbox.get(state, 0) for state in sorted(set(OUTBOX_STATES) | set(s.outbox))},
        "outbox_oldest_waiting_at": s.oldest_waiting_at,
        "digest": digest or None,
    }


def _duration(seconds: object) -> str:
    value = _number(seconds)
    if value is None:
        return "-"
    if value < 0:
        return "in the future"
    whole = int(value)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // sub_size
            return f"{whole // size}{unit}" + (f" {rest}{sub}" if rest else "")
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def _counts(counts: Mapping[str, int]) -> str:
    shown = [f"{k} {v}" for k, v in counts.items() if v]
    return ", ".join(shown) if shown else "none"


def status_tables(doc: Mapping[str, Any]) -> list[Table]:
    """`sentinel status` as rich tables (sources, then the daemon), from :func:`status_doc`'s document."""
    sources = Table(title="Sentinel sources")
    for col in ("source", "up", "last success", "lag", "days stored", "range", "backfill", "last error"):
        sources.add_column(col)
    for r in doc.get("sources", []):
        backfill = "-"
        if r.get("backfill_since"):
            backfill = "done" if r.get("backfill_done_at") else f"at {r.get('backfill_cursor') or r['backfill_since']}"
        sources.add_row(
            Text(str(r["source"])),
            Text("yes", style="green") if r.get("up") else Text("no", style="red"),
            Text(str(r.get("last_success_at") or "never")),
            _duration(r.get("lag_s")),
            f"{r.get('days_stored', 0)} ({r.get('final_days', 0)} final)",
            f"{r.get('first_day')}..{r.get('last_day')}" if r.get("first_day") else "-",
            Text(backfill),
            Text(str(r.get("last_error") or "-")),
        )

    daemon = Table(title="Sentinel daemon", show_header=False)
    daemon.add_column("what", style="bold")
    daemon.add_column("state")
    tick = doc.get("tick")
    if tick:
        errors = tick.get("errors") or []
        line = f"{tick.get('at')} ({_duration(tick.get('age_s'))} ago, took {_duration(tick.get('duration_s'))})"
        if errors:
            line += f"; {len(errors)} error(s):\n" + "\n".join(f"  {e}" for e in errors)
        daemon.add_row("last tick", Text(line, style="yellow" if errors else ""))
    else:
        daemon.add_row("last tick", "never (is `sentinel run` running?)")
    rules = doc.get("rules")
    if rules:
        problems = rules.get("problems") or []
        count = _count(rules.get("files"))
        line = f"{rules.get('rules', '?')} rule(s)" + (f" in {count} file(s)" if count is not None else "")
        line += f", loaded at {rules.get('loaded_at') or 'never'}"
        if problems:
            line += f"; {len(problems)} problem(s) on disk, running the last good rules:\n"
            line += "\n".join(f"  {p}" for p in problems)
        daemon.add_row("rules", Text(line, style="red" if problems else ""))
    else:
        daemon.add_row("rules", "-")
    daemon.add_row("alerts firing", _counts(doc.get("alerts_firing", {})))
    daemon.add_row("silences active", str(doc.get("silences_active", 0)))
    outbox = _counts(doc.get("outbox", {}))
    if doc.get("outbox_oldest_waiting_at"):
        outbox += f" (oldest waiting since {doc['outbox_oldest_waiting_at']})"
    daemon.add_row("outbox", outbox)
    digest = doc.get("digest")
    if digest:
        daemon.add_row(
            "digest", f"next at {digest.get('next_at') or '-'}, last sent at {digest.get('last_sent_at') or 'never'}"
        )
    else:
        daemon.add_row("digest", "-")
    return [sources, daemon]


# --------------------------------------------------------------------------------------------- HTTP
Health = Callable[[], tuple[bool, str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], store_path: Path, healthy: Health, clock: Clock, web: WebApp | None = None
    ) -> None:
        self.store_path = store_path
        self.healthy = healthy
        self.clock = clock
        self.web = web
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is not worth a traceback on stderr.
        log.debug("HTTP request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "sentinel"
    sys_version = ""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._healthz()
        elif self.server.web is not None:
            self._web()
        else:
            self._answer(404, b"not found\n")

    def _other(self) -> None:
        """Any other method: the web view's answer (405: it is read-only; HEAD: a GET without its
        body); /metrics and /healthz, and everything when the view is off, answer as before."""
        if self.server.web is None or urlsplit(self.path).path in ("/metrics", "/healthz"):
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        self._web()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    def _web(self) -> None:
        web = self.server.web
        assert web is not None
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        db: sqlite_utils.Database | None = None
        try:
            # Credentials first; then a read-only connection: a page can create, migrate or change nothing.
            response = web.challenge(self.command, headers, self.server.clock())
            if response is None:
                db = open_reader(self.server.store_path)
                response = web.handle(self.command, parts.path, parts.query, headers, db, self.server.clock())
        except Exception as exc:  # a locked, missing or broken store: say so, keep serving
            log.warning("%s %s: cannot answer: %s", self.command, parts.path, exc)
            self._answer(500, f"cannot read the store: {exc}\n".encode())
            return
        finally:
            if db is not None:
                db.conn.close()
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _metrics(self) -> None:
        db: sqlite_utils.Database | None = None
        try:
            db = open_store(self.server.store_path)
            body = metrics_text(db, self.server.clock())
        except Exception as exc:  # a locked, missing or broken store: say so, keep serving
            log.warning("/metrics: cannot read the store: %s", exc)
            self._answer(500, f"cannot read the store: {exc}\n".encode())
            return
        finally:
            if db is not None:
                db.conn.close()
        self._answer(200, body, CONTENT_TYPE)

    def _healthz(self) -> None:
        try:
            ok, reason = self.server.healthy()
        except Exception as exc:
            ok, reason = False, f"health check failed: {type(exc).__name__}: {exc}"
        if ok:
            self._answer(200, b"ok\n")
        else:
            self._answer(503, f"{reason}\n".encode())

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


def _no_verdict() -> tuple[bool, str]:
    return True, "ok"


class HealthServer:
    """``GET /metrics`` and ``GET /healthz`` on ``host:port`` (port 0: a free one, see :attr:`port`),
    and with ``web`` the read-only web view (``sentinel.web``) on every other path.

    Each request opens its own connection to the store (SQLite connections stay in their thread);
    ``healthy`` is the daemon's verdict for /healthz: (ok, reason); without one, /healthz says ok.
    The web view's basic auth (if any) covers its pages, not /metrics and /healthz."""

    def __init__(
        self,
        store_path: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        healthy: Health | None = None,
        *,
        clock: Clock = utc_now,
        web: WebApp | None = None,
    ) -> None:
        self.store_path = Path(store_path)
        self.healthy: Health = healthy or _no_verdict
        self.web = web
        self.host = host
        self.requested_port = port
        self.clock = clock
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (after start()); the requested one before."""
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; OSError if the address cannot be bound."""
        if self._server is not None:
            return
        server = _Server((self.host, self.requested_port), self.store_path, self.healthy, self.clock, self.web)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="sentinel-http", daemon=True
        )
        self._thread.start()
        log.debug("serving /metrics and /healthz%s on %s", " and the web view" if self.web else "", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket (waits for the serving loop, at most about a second)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
