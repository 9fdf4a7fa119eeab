"""The web view's router: one request in, one response out, with no server in sight.

``WebApp.handle(method, path, query, headers, store, now)`` is the whole view; the HTTP server
(``observe.HealthServer``) only opens the store for each request and writes the answer. Routes
(GET and HEAD only; every other method is 405, and nothing here writes to the store)::

    /                       overview: totals, spend per day with the baseline band, by provider,
                            by team, top users and models            ?days=30 (default) | 90 | 400
    /team/<id>              a team: its series, users, keys, models, anomalies, budgets   ?days=
    /user/<id>              a user: series, keys, models, teams, anomalies, budgets       ?days=
    /model/<id>             a model (id percent-encoded: /model/openai%2Fgpt-4o)          ?days=
    /key/<hash>             a key: series, models, owner and team, anomalies, budgets      ?days=
    /anomalies              anomaly alerts: state, entity, start and end, impact  ?state=firing|resolved
    /budgets                every budget: spent, limit, used, reset, forecast, breach chance, runway
                                                     ?state=exceeded|at_risk|soft_exceeded|ok

Every answer carries a Content-Security-Policy that allows no script, no outside resource and no
framing. With credentials set, every page asks for HTTP basic auth (compared in constant time).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import sqlite_utils
from pydantic import SecretStr

from sentinel import privacy
from sentinel.budget import snapshot
from sentinel.budget.model import STATES
from sentinel.budget.specs import Policy, policy_from
from sentinel.config import Settings
from sentinel.digest.build import BudgetLine
from sentinel.errors import SentinelError
from sentinel.rules.loader import RuleSet
from sentinel.web import data, pages, queries

log = logging.getLogger("sentinel.web")

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)
ALLOWED = ("GET", "HEAD")
REALM = "Sentinel"
ANOMALY_STATES = ("all", "firing", "resolved")
BUDGET_STATES = ("all", *STATES)
_CACHE_MINUTES = 10  # budgets evaluated for a page (no kept evaluation) are reused this long


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _BadRequest(Exception):
    pass


class WebApp:
    """The read-only web view. ``username``/``password``: HTTP basic auth for every page (None: none).
    ``rules`` and ``policy`` evaluate budgets when no alerting cycle has kept an evaluation in the
    store (``budget.snapshot``); such an evaluation is reused for a few minutes while the store
    does not change."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        policy: Policy | None = None,
        rules: Callable[[], RuleSet] = RuleSet.empty,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("basic auth needs both a user name and a password")
        self.username = username
        self.password = password
        self.policy = policy or Policy()
        self.rules = rules
        self._lock = threading.Lock()
        self._computed: tuple[tuple[object, ...], datetime, list[BudgetLine]] | None = None

    @staticmethod
    def from_settings(
        settings: Settings, rules: Callable[[], RuleSet] = RuleSet.empty, environ: dict[str, str] | None = None
    ) -> WebApp:
        """The view as [daemon] configures it: basic auth with web_user and its password (read now:
        ConfigError if it cannot be), budgets evaluated with [budgets] and the rules (their user ids
        pseudonymized as [privacy] stores them) when none is kept."""
        d = settings.daemon
        transform = privacy.from_settings(settings.privacy, environ)

        def stored_rules() -> RuleSet:  # as the alerting cycle reads them: naming users as the store does
            return privacy.rules_for(rules(), transform)

        return WebApp(
            username=d.web_user, password=d.web_password(environ), policy=policy_from(settings), rules=stored_rules
        )

    # ------------------------------------------------------------------------------------ the entry
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        store: sqlite_utils.Database,
        now: datetime,
    ) -> Response:
        """Answer one request. ``path`` is the raw (still percent-encoded) path, ``query`` the raw
        query string, ``headers`` the request headers (any case)."""
        verb = method.upper()
        refused = self.challenge(verb, headers, now)
        if refused is not None:
            return refused
        if verb not in ALLOWED:
            body = pages.error(405, "Method not allowed", "This view is read-only: only GET and HEAD.", now)
            return self._page(405, body, "GET", (("Allow", ", ".join(ALLOWED)),))
        missing = queries.missing_indexes(store)
        if missing:  # every way of serving a store prepares it; reading without them would take seconds a page
            text = (
                f"This store lacks the web view's indexes ({', '.join(missing)}): serve it with "
                "`sentinel web --db PATH` or the daemon's [daemon] web = true, which build them once."
            )
            return self._page(503, pages.error(503, "Store not prepared", text, now), verb)
        try:
            status, body = self._route(path, parse_qs(query, keep_blank_values=True), store, now)
        except _BadRequest as exc:
            status, body = 400, pages.error(400, "Bad request", str(exc), now)
        except (SentinelError, sqlite3.Error) as exc:
            log.warning("web view: cannot read the store: %s", exc)
            status, body = 500, pages.error(500, "Cannot read the store", str(exc), now)
        return self._page(status, body, verb)

    def challenge(self, method: str, headers: Mapping[str, str], now: datetime) -> Response | None:
        """The 401 answer to a request without the right credentials (None: let it in). The server
        asks this before it opens the store, so a stranger's request touches nothing."""
        if self._authorized(headers):
            return None
        return self._page(
            401,
            pages.error(401, "Sign in", "This Sentinel web view needs a user name and password.", now),
            method.upper(),
            (("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),),
        )

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.username is None or self.password is None:
            return True
        given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password.get_secret_value().encode())
        return bool(sep) and user_ok and password_ok

    @staticmethod
    def _page(status: int, html: str, verb: str, extra: tuple[tuple[str, str], ...] = ()) -> Response:
        body = html.encode()
        headers = (
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *SECURITY_HEADERS,
            *extra,
        )
        return Response(status, headers, b"" if verb == "HEAD" else body)

    # ------------------------------------------------------------------------------------ the routes
    def _route(
        self, path: str, query: Mapping[str, list[str]], store: sqlite_utils.Database, now: datetime
    ) -> tuple[int, str]:
        parts = path.split("/")[1:] if path.startswith("/") else []
        if parts == [""]:
            ov = data.overview(store, now, _days(query), self._budgets)
            return 200, pages.overview(ov, now)
        if parts == ["anomalies"]:
            return 200, pages.anomalies(data.anomaly_list(store, _choice(query, "state", ANOMALY_STATES)), now)
        if parts == ["budgets"]:
            state = _choice(query, "state", BUDGET_STATES)
            listed = data.budget_list(store, now, self._budgets, state, _page(query))
            return 200, pages.budgets(listed, now)
        if len(parts) >= 2 and parts[0] in data.KINDS:
            kind = parts[0]
            # One percent-encoded segment is the canonical form; "/model/openai/gpt-4o" is read as one id too.
            ident = "/".join(unquote(p) for p in parts[1:])
            page = data.entity(store, now, kind, ident, _days(query), self._budgets) if ident else None
            if page is None:
                return 404, pages.error(404, "Not found", f"The store knows no {kind} {ident!r}.", now)
            return 200, pages.entity(page, now)
        return 404, pages.error(404, "Not found", "There is no such page in this view.", now)

    def _budgets(self, store: sqlite_utils.Database, now: datetime) -> data.Budgets:
        """The evaluation the last alerting cycle kept; else every budget evaluated now, and reused
        for a few minutes while the store does not change (it takes seconds on a big proxy)."""
        kept_at = snapshot.evaluated_at(store)
        if kept_at is not None and kept_at <= now:  # a later one (a view of the past: --now) would be the future
            return data.Budgets(kept_at, now, db=store)
        key: tuple[Any, ...] = (
            _store_file(store),
            data.store_signature(store),
            now.replace(minute=now.minute - now.minute % _CACHE_MINUTES, second=0, microsecond=0),
        )
        with self._lock:
            cached = self._computed
        if cached is not None and cached[0] == key:
            return data.Budgets(cached[1], now, lines=cached[2])
        lines = data.evaluate_budgets(store, now, self.policy, self.rules())
        with self._lock:
            self._computed = (key, now, lines)
        return data.Budgets(now, now, lines=lines)


def _store_file(store: sqlite_utils.Database) -> str:
    row = store.conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row else ""


def _days(query: Mapping[str, list[str]]) -> int:
    given = query.get("days")
    if not given:
        return data.DEFAULT_DAYS
    text = given[-1].strip()
    if not text.isdigit() or int(text) not in data.PERIODS:
        raise _BadRequest(f"days must be one of {', '.join(map(str, data.PERIODS))}")
    return int(text)


def _page(query: Mapping[str, list[str]]) -> int:
    given = query.get("page")
    if not given:
        return 1
    text = given[-1].strip()
    if not text.isdigit() or int(text) < 1:
        raise _BadRequest("page must be a number from 1")
    return int(text)


def _choice(query: Mapping[str, list[str]], name: str, allowed: tuple[str, ...]) -> str:
    given = query.get(name)
    if not given:
        return allowed[0]
    value = given[-1].strip()
    if value not in allowed:
        raise _BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return value


_default = WebApp()


def handle(
    method: str, path: str, query: str, headers: Mapping[str, str], store: sqlite_utils.Database, now: datetime
) -> Response:
    """The view without basic auth (see :meth:`WebApp.handle`)."""
    return _default.handle(method, path, query, headers, store, now)
