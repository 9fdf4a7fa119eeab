"""The only place an httpx client is built.

Every request to a LiteLLM proxy passes a guard before it leaves the process: the method must be
GET, the host must be the configured proxy's, and the path must be one of the read endpoints
Sentinel uses. Each request, refused or sent, answered or failed, is handed to an audit sink.
Secrets are redacted from everything the guard records or raises.

Notifications leave through a second guard, :class:`OutboundGuard`: a POST to one of the origins
(scheme, host, port) the configured receivers name, and nowhere else; no redirects. The Slack and
webhook receivers send through :func:`outbound_client`; anything that must do its own HTTP can
call :meth:`OutboundGuard.check` before sending and :meth:`OutboundAttempt.finish` after. Email is
SMTP, not HTTP: its host comes straight from the config and it does not pass through here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from sentinel import __version__
from sentinel.errors import ConfigError, EgressRefused

if TYPE_CHECKING:
    from sentinel.config import ReceiverSettings

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


# ------------------------------------------------------------------------------------ notifications
Origin = tuple[str, str, int]  # (scheme, host, port): where a receiver may POST
_DEFAULT_PORTS = {"http": 80, "https": 443}
SECRET_PATH = "/***"  # what the audit log shows of a URL that is itself a secret


def origin_of(url: str) -> Origin:
    """The (scheme, host, port) of an http(s) URL, lower-cased, with the default port filled in.

    Raises :class:`EgressRefused` for anything else (another scheme, no host, a bad port); the
    message never repeats the URL, which may be a secret."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise EgressRefused("the URL has an invalid port") from None
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise EgressRefused("only http:// and https:// URLs with a host can be sent to")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _show(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


@dataclass(slots=True)
class OutboundAttempt:
    """One POST the guard let through: call :meth:`finish` (or :meth:`failed`) once it is answered."""

    audit: AuditSink
    source: str
    method: str
    path: str
    started: float = field(default_factory=time.monotonic)
    done: bool = False

    def finish(self, status: int | None, size: int, outcome: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        if outcome is None:
            outcome = "ok" if status is not None and status < 400 else "http_error"
        self.audit(
            AuditRecord(
                at=datetime.now(UTC),
                source=self.source,
                method=self.method,
                path=self.path,
                query="",  # never logged: a query string can carry a token
                status=status,
                duration_ms=round((time.monotonic() - self.started) * 1000, 3),
                bytes=size,
                outcome=outcome,
            )
        )

    def failed(self, exc: BaseException) -> None:
        self.finish(None, 0, type(exc).__name__)


class OutboundGuard:
    """The allowlist of origins receivers may POST to. Immutable; shared by every receiver."""

    def __init__(self, origins: Iterable[Origin]) -> None:
        self.origins: frozenset[Origin] = frozenset((s.lower(), h.lower(), p) for s, h, p in origins)

    def allows(self, url: str) -> bool:
        try:
            return origin_of(url) in self.origins
        except EgressRefused:
            return False

    def check(
        self,
        url: str,
        *,
        source: str,
        audit: AuditSink,
        method: str = "POST",
        secret_url: bool = False,
        secrets: Iterable[str] = (),
    ) -> OutboundAttempt:
        """Allow the request or refuse it (audited, then :class:`EgressRefused`), before any socket opens.

        ``secret_url``: the URL itself is a credential (a Slack incoming webhook); its path is
        recorded as ``/***``. The query string is never recorded."""
        secrets = tuple(secrets)
        path = SECRET_PATH if secret_url else redact(urlsplit(url).path or "/", secrets)
        refusal = None
        if method != "POST":
            refusal = f"method {method} is not allowed (receivers only POST)"
        else:
            try:
                origin = origin_of(url)
            except EgressRefused as exc:
                refusal = str(exc)
            else:
                if origin not in self.origins:
                    refusal = f"{_show(origin)} is not the origin of a configured receiver"
        attempt = OutboundAttempt(audit=audit, source=source, method=method, path=path)
        if refusal:
            attempt.finish(None, 0, "refused")
            raise EgressRefused(redact(f"{source}: refused to send {method} {path}: {refusal}", secrets))
        return attempt


def allowed_origins(
    receivers: Iterable[ReceiverSettings], environ: Mapping[str, str] | None = None
) -> frozenset[Origin]:
    """Every origin the configured receivers may POST to: a Slack receiver's ``api_url`` (bot mode)
    or its incoming-webhook URL, and a webhook receiver's URL. Email (SMTP) and files have none.

    Reads the URL secrets now; raises :class:`sentinel.errors.ConfigError` if one cannot be read
    or is not an http(s) URL with a host."""
    from sentinel.config import SlackReceiver, WebhookReceiver

    env = None if environ is None else dict(environ)
    found: set[Origin] = set()
    for receiver in receivers:
        url: str | None = None
        if isinstance(receiver, SlackReceiver):
            hook = receiver.webhook_url(env)
            url = hook.get_secret_value() if hook is not None else receiver.api_url
        elif isinstance(receiver, WebhookReceiver):
            url = receiver.target(env).get_secret_value()
        if url is not None:
            try:
                found.add(origin_of(url))
            except EgressRefused as exc:  # the message never repeats the URL
                raise ConfigError(f"receiver {receiver.name!r}: {exc}") from None
    return frozenset(found)


class OutboundTransport(httpx.BaseTransport):
    """Asks the guard before each request and writes the audit record after it."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        guard: OutboundGuard,
        source: str,
        audit: AuditSink,
        secrets: tuple[str, ...],
        secret_url: bool,
    ) -> None:
        self._inner = inner
        self._guard = guard
        self._source = source
        self._audit = audit
        self._secrets = secrets
        self._secret_url = secret_url

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = self._guard.check(
            str(request.url),
            source=self._source,
            audit=self._audit,
            method=request.method,
            secret_url=self._secret_url,
            secrets=self._secrets,
        )
        try:
            response = self._inner.handle_request(request)
            body = response.read()
        except Exception as exc:
            attempt.failed(exc)
            raise
        attempt.finish(response.status_code, len(body))
        return response

    def close(self) -> None:
        self._inner.close()


def outbound_client(
    guard: OutboundGuard,
    receiver_name: str,
    secrets: Iterable[str],
    timeout_s: float,
    *,
    audit: AuditSink,
    secret_url: bool = False,
    verify: bool | str = True,
    inner: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The httpx client a receiver POSTs through: allowlisted origins only, no redirects, audited
    as ``receiver:<name>``; ``secrets`` are redacted from what is recorded or raised."""
    transport = OutboundTransport(
        inner or httpx.HTTPTransport(verify=verify, retries=0),
        guard=guard,
        source=f"receiver:{receiver_name}",
        audit=audit,
        secrets=tuple(s for s in secrets if s),
        secret_url=secret_url,
    )
    return httpx.Client(
        headers={"User-Agent": f"litellm-sentinel/{__version__}"},
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        transport=transport,
        follow_redirects=False,  # a redirect could leave the allowlisted origin
    )
