"""The only place an httpx client is built.

Every request to a LiteLLM proxy passes a guard before it leaves the process: the method must be
GET, the host must be the configured proxy's, and the path must be one of the read endpoints
Sentinel uses. Each request, refused or sent, answered or failed, is handed to an audit sink.
Secrets are redacted from everything the guard records or raises.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from sentinel import __version__
from sentinel.errors import EgressRefused

# The read endpoints Sentinel may call (API.md §1, §2, §3, §4.2, §5.1, §7). Nothing else.
PROXY_READ_PATHS: frozenset[str] = frozenset(
    {
        "/user/daily/activity",
        "/user/daily/activity/aggregated",
        "/team/daily/activity",
        "/team/daily/activity/aggregated",
        "/user/info",
        "/user/list",
        "/team/list",
        "/v2/team/list",
        "/key/list",
        "/spend/logs/v2",
        "/health/readiness",
    }
)

_RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{4,}")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    source: str
    method: str
    path: str
    query: str
    status: int | None  # None: refused or no answer
    duration_ms: float
    bytes: int
    outcome: str  # "ok", "http_error", "refused", or the exception class name


AuditSink = Callable[[AuditRecord], None]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret, and anything shaped like a raw LiteLLM key, with ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _RAW_KEY.sub("sk-***", text)


class GuardedTransport(httpx.BaseTransport):
    """Enforces the allowlist and writes the audit record around an inner transport."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        source: str,
        base_url: str,
        allowed_paths: frozenset[str],
        audit: AuditSink,
        secrets: tuple[str, ...],
    ) -> None:
        parts = urlsplit(base_url)
        self._inner = inner
        self._source = source
        self._scheme = parts.scheme
        self._netloc = parts.netloc.lower()
        self._base_path = parts.path.rstrip("/")  # a proxy mounted under a prefix, e.g. /litellm
        self._allowed = allowed_paths
        self._audit = audit
        self._secrets = secrets

    def _relative_path(self, request: httpx.Request) -> str | None:
        path = request.url.path
        if self._base_path:
            if not path.startswith(self._base_path + "/"):
                return None
            path = path[len(self._base_path) :]
        return path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        query = redact(request.url.query.decode("ascii", "replace"), self._secrets)
        path = redact(request.url.path, self._secrets)
        relative = self._relative_path(request)
        netloc = request.url.netloc.decode("ascii", "replace").lower()
        refusal = None
        if request.method != "GET":
            refusal = f"method {request.method} is not allowed (Sentinel only reads)"
        elif request.url.scheme != self._scheme or netloc != self._netloc:
            refusal = f"host {netloc} is not the configured proxy"
        elif relative is None or relative not in self._allowed:
            refusal = f"path {path} is not on the read-only allowlist"
        if refusal:
            self._record(request.method, path, query, None, started, 0, "refused")
            raise EgressRefused(f"source {self._source!r}: refused to send {request.method} {path}: {refusal}")
        try:
            response = self._inner.handle_request(request)
            body = response.read()  # whole body now, so size and timing are exact
        except Exception as exc:
            self._record(request.method, path, query, None, started, 0, type(exc).__name__)
            raise
        outcome = "ok" if response.status_code < 400 else "http_error"
        self._record(request.method, path, query, response.status_code, started, len(body), outcome)
        return response

    def _record(
        self, method: str, path: str, query: str, status: int | None, started: float, size: int, outcome: str
    ) -> None:
        self._audit(
            AuditRecord(
                at=datetime.now(UTC),
                source=self._source,
                method=method,
                path=path,
                query=query,
                status=status,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
                bytes=size,
                outcome=outcome,
            )
        )

    def close(self) -> None:
        self._inner.close()


def proxy_client(
    *,
    source: str,
    base_url: str,
    api_key: str,
    audit: AuditSink,
    timeout_s: float = 30.0,
    verify: bool | str = True,
    allowed_paths: frozenset[str] = PROXY_READ_PATHS,
    inner: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The httpx client for one LiteLLM proxy: bearer auth, timeouts, allowlist, audit."""
    transport = GuardedTransport(
        inner or httpx.HTTPTransport(verify=verify, retries=0),
        source=source,
        base_url=base_url,
        allowed_paths=allowed_paths,
        audit=audit,
        secrets=(api_key,),
    )
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": f"litellm-sentinel/{__version__}"},
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        transport=transport,
        follow_redirects=False,  # a redirect could leave the allowlisted host
    )
