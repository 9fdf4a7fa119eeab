"""A LiteLLM-compatible HTTP server on 127.0.0.1 over a `TrafficModel` (stdlib `ThreadingHTTPServer`).

Request path: scripted fault -> latency -> method/route -> auth -> DB/error faults -> role scope -> handler
-> malformed fault. Every request, whatever its outcome, lands in the access log (never with credentials).
"""

from __future__ import annotations

import builtins
import random
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from sentinel.simulator.api import ApiError, DailyActivity, Params, detail_error, proxy_error
from sentinel.simulator.management import Management
from sentinel.simulator.roles import MASTER, Caller, Scoped, scope
from sentinel.simulator.spendlogs import SpendLogs
from sentinel.simulator.traffic import Snapshot, TrafficModel

__all__ = ["AccessRecord", "Caller", "Faults", "SimulatorServer"]

Scripted = tuple[int, Any, dict[str, str] | None]  # (status, JSON body or raw bytes, extra headers)
Body = list[bytes]
DB_DOWN = "DB not connected. This endpoint needs a database; set DATABASE_URL to a PostgreSQL connection string."
ANALYTICS_FAILURE = "Failed to fetch analytics: Can't reach database server at `db:5432` (P1001)"


@dataclass
class Faults:
    """Knobs for misbehaviour; change them at any time from any thread."""

    error_rate: float = 0.0  # random 500 "Failed to fetch analytics"
    latency_s: float = 0.0
    malformed_rate: float = 0.0  # 200 with a truncated JSON body
    unstable_order: bool = False  # pre-#30164 pagination: a date's rows come back in any order per query
    db_connected: bool = True
    grow_today_per_request: timedelta | None = None  # each daily-activity request first advances the clock
    clock_skew_s: float = 0.0  # the `Date` response header runs this far ahead of the real clock (<0: behind)
    store_prompts: bool = False  # store_prompts_in_spend_logs: /spend/logs/v2 rows carry the request text
    script: deque[Scripted] = field(default_factory=deque)  # served FIFO before normal handling
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def push(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.script.append((status, body, headers))

    def next_scripted(self) -> Scripted | None:
        with suppress(IndexError):
            return self.script.popleft()
        return None

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def request_rng(self) -> random.Random:
        """A per-request RNG drawn from the seeded stream, so shuffles are reproducible per test."""
        with self._lock:
            return random.Random(self._rng.getrandbits(64))


@dataclass(frozen=True)
class AccessRecord:
    at: datetime
    method: str
    path: str
    query: dict[str, str]
    status: int
    bytes: int

    def to_json(self) -> builtins.bytes:  # the field `bytes` shadows the builtin inside the class
        return orjson.dumps(
            {
                "at": self.at.isoformat(),
                "method": self.method,
                "path": self.path,
                "query": self.query,
                "status": self.status,
                "bytes": self.bytes,
            }
        )


_DAILY = (
    "/user/daily/activity",
    "/user/daily/activity/aggregated",
    "/team/daily/activity",
    "/team/daily/activity/aggregated",
)
_READINESS = "/health/readiness"


def _json(value: Any) -> Body:
    return [value if isinstance(value, bytes) else orjson.dumps(value)]


class _App:
    """Routing, auth and faults; independent of the socket layer."""

    def __init__(
        self,
        model: TrafficModel,
        api_key: str | None,
        faults: Faults,
        live_clock: bool,
        callers: Mapping[str, Caller] | None = None,
    ) -> None:
        self.model, self.api_key, self.faults, self.live_clock = model, api_key, faults, live_clock
        self.callers = dict(callers or {})
        if api_key is not None and api_key in self.callers:
            raise ValueError("a caller key must differ from the master key")
        self.teams = {u.user_id: u.teams for u in model.users}  # a caller's teams, for its scope
        self.daily = DailyActivity(model)
        self.management = Management(model, self.callers)
        self.spend_logs = SpendLogs(model)
        self.routes: dict[str, Callable[[Scoped, Snapshot], Body]] = {
            "/user/daily/activity": lambda r, s: [self.daily.paginated("user", r.params, s, self._shuffle(), r.owner)],
            "/user/daily/activity/aggregated": lambda r, s: [self.daily.aggregated("user", r.params, s, r.owner)],
            "/team/daily/activity": lambda r, s: [self.daily.paginated("team", r.params, s, self._shuffle(), r.owner)],
            "/team/daily/activity/aggregated": lambda r, s: [self.daily.aggregated("team", r.params, s, r.owner)],
            "/user/info": lambda r, s: _json(self.management.user_info(r.params, r.caller)),
            "/user/list": lambda r, s: _json(self.management.user_list(r.params)),
            "/team/list": lambda r, s: _json(self.management.team_list(r.params)),
            "/v2/team/list": lambda r, s: _json(self.management.v2_team_list(r.params)),
            "/key/list": lambda r, s: _json(self.management.key_list(r.params)),
            "/spend/logs/v2": lambda r, s: _json(
                self.spend_logs.query(r.params, s, r.owner, prompts=self.faults.store_prompts)
            ),
        }

    def _shuffle(self) -> random.Random | None:
        return self.faults.request_rng() if self.faults.unstable_order else None

    def _authenticate(self, headers: dict[str, str]) -> Caller:
        """Key lookup in LiteLLM's order (API.md §7); failures are 401 ProxyException bodies."""
        if self.api_key is None:
            return MASTER  # no master key configured: dev mode, everything is accepted as the admin
        key: str | None
        if "x-litellm-api-key" in headers:
            key = headers["x-litellm-api-key"]
            key = key[7:] if key.lower().startswith("bearer ") else key
        elif "authorization" in headers:
            value = headers["authorization"]
            if value.startswith(("Bearer ", "bearer ")):
                key = value[7:]
            elif value.startswith("Basic "):
                key = value[6:]
            else:
                raise proxy_error(
                    401,
                    "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
                    "auth_error",
                    "None",
                )
        else:
            key = next(
                (
                    headers[h]
                    for h in ("api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key")
                    if h in headers
                ),
                None,
            )
        if not key or not key.strip():
            raise proxy_error(401, "Authentication Error, No api key passed in.", "auth_error", "None")
        key = key.strip()
        if key == self.api_key:
            return MASTER
        caller = self.callers.get(key)
        if caller is None:
            raise proxy_error(401, "Authentication Error, Invalid API key provided.", "token_not_found_in_db", "key")
        return caller

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, Body, dict[str, str]]:
        scripted = self.faults.next_scripted()
        if scripted is not None:
            status, body, extra = scripted
            return (
                status,
                [b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)],
                dict(extra or {}),
            )
        if self.faults.latency_s > 0:
            time.sleep(self.faults.latency_s)
        try:
            return self._route(method, path, query, headers)
        except ApiError as e:
            return e.status, _json(e.body), dict(e.headers)
        except Exception as e:  # a simulator bug: answer like an unhandled FastAPI error, and say so on stderr
            traceback.print_exc()
            return 500, _json({"detail": {"error": f"simulator error: {e!r}"}}), {}

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, Body, dict[str, str]]:
        if method != "GET":
            return 405, _json({"detail": "Method Not Allowed"}), {"allow": "GET"}
        if path == _READINESS:
            if self.faults.db_connected:
                return 200, _json({"status": "healthy", "db": "connected"}), {}
            return 503, _json({"status": "healthy", "db": "Not connected"}), {}
        handler = self.routes.get(path)
        if handler is None:
            return 404, _json({"detail": "Not Found"}), {}
        caller = self._authenticate(headers)
        if not self.faults.db_connected:
            if path == "/spend/logs/v2":
                raise proxy_error(401, "Prisma Client is not initialized", "auth_error", "None")
            raise detail_error(400, DB_DOWN)
        if self.faults.roll(self.faults.error_rate):
            raise detail_error(500, ANALYTICS_FAILURE)
        if self.live_clock:
            self.model.catch_up(datetime.now(UTC))
        step = self.faults.grow_today_per_request
        if step is not None and path in _DAILY:
            self.model.advance_by(step)
        scoped = scope(path, Params(query), caller, self.teams.get(caller.user_id, ()))
        body = handler(scoped, self.model.snapshot())
        if self.faults.roll(self.faults.malformed_rate):
            whole = b"".join(body)
            return 200, [whole[: max(1, len(whole) // 2)]], {}
        return 200, body, {}


class _Handler(BaseHTTPRequestHandler):
    server_version = "uvicorn"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end on their own
    app: _App
    owner: SimulatorServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out as separate writes; without this, Nagle + delayed ACK add ~40 ms per answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)  # drain a request body so the connection stays usable
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.app.handle(self.command, parts.path, query, headers)
        size = sum(len(chunk) for chunk in body)
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(size))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            for chunk in body:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self.owner.record(AccessRecord(datetime.now(UTC), self.command, parts.path, query, status, size))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header: a proxy host whose clock is off by `Faults.clock_skew_s`."""
        if timestamp is None:
            timestamp = time.time() + self.app.faults.clock_skew_s
        return super().date_time_string(timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the access log replaces stderr logging


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client hanging up is not worth a traceback
        super().handle_error(request, client_address)


class SimulatorServer:
    """`with SimulatorServer(model).running() as url: ...` serves the model until the block ends."""

    def __init__(
        self,
        model: TrafficModel,
        api_key: str | None = "sk-sim-master",
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: Path | None = None,
        live_clock: bool = False,
        callers: Mapping[str, Caller] | None = None,
    ) -> None:
        """`callers`: keys other than the master key, each authenticating as a user with a role (roles.py)."""
        self.model = model
        self.faults = faults or Faults()
        self.host, self.port = host, port
        self.access_log_path = access_log
        self._app = _App(model, api_key, self.faults, live_clock, callers)
        self._log: list[AccessRecord] = []
        self._log_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def access_log(self) -> list[AccessRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_access_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def record(self, entry: AccessRecord) -> None:
        with self._log_lock:
            self._log.append(entry)
            if self.access_log_path is not None:
                with self.access_log_path.open("ab") as f:
                    f.write(entry.to_json() + b"\n")

    def start(self) -> str:
        if self._httpd is not None:
            return self.url
        handler = type("Handler", (_Handler,), {"app": self._app, "owner": self})
        httpd = _HTTPServer((self.host, self.port), handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="sentinel-simulator", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Blocking variant for the CLI; Ctrl-C stops it."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @contextmanager
    def running(self) -> Iterator[str]:
        url = self.start()
        try:
            yield url
        finally:
            self.stop()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
