"""Read-only client for one LiteLLM proxy: endpoints, pagination, error classes, retries.

Only GETs on the allowlisted read endpoints leave through the egress guard (sentinel.egress).
Errors are classified once, here (API.md §7): 401/403/400/422 and "DB not connected" become
operator errors and are not retried; timeouts, connection errors, 429 (honouring Retry-After) and
5xx are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar, cast

import httpx
import orjson
import tenacity

from sentinel.errors import (
    AuthenticationFailed,
    MalformedResponse,
    PermissionDenied,
    ProxyHasNoDatabase,
    ProxyUnavailable,
    RequestRejected,
    SourceError,
)
from sentinel.models import Budget, DailyActivity, Grain, KeyRecord, TeamRecord, UserRecord
from sentinel.privacy import IDENTITY, Pseudonymizer
from sentinel.source.parse import ActivityFold, decode_page
from sentinel.source.schema import ActivityPage, UserBreakdown

log = logging.getLogger(__name__)

Route = Literal["user", "team"]

# Substrings LiteLLM uses, across versions and routes, when it runs without a database.
_NO_DB_MARKERS = (
    "db not connected",
    "database not connected",
    "no db connected",
    "no connected db",
    "prisma client is not initialized",
    "no_db_connection",
)
_MAX_PAGES = 100_000  # a runaway has_more must not loop forever
_PREFETCH = 2  # pages in flight while one is folded

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """How to read (from SyncSettings; kept separate so the client does not import config)."""

    prefer_aggregated: bool = True
    page_size: int = 1000
    api_key_limit: int = 1000
    max_attempts: int = 5
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0


@dataclass(frozen=True)
class Probe:
    status: int
    body: Any  # the decoded JSON, or None
    error: SourceError | None  # the classified error of a status >= 400
    server_date: datetime | None  # the proxy's Date header (1 s resolution)
    local_mid: datetime  # our clock half-way through the round trip

    @property
    def skew_s(self) -> float | None:
        """How far the proxy's clock is ahead of ours (negative: behind)."""
        return None if self.server_date is None else (self.server_date - self.local_mid).total_seconds()


@dataclass
class CallStats:
    calls: int = 0
    bytes: int = 0
    retries: int = 0


@dataclass
class _Capabilities:
    # Learnt per run: an old proxy lacks /aggregated (404); a big one has more keys than the cap.
    aggregated: dict[str, bool] = field(default_factory=lambda: {"user": True, "team": True})
    keys_exceed_cap: bool = False
    v2_team_list: bool = True


class LiteLLMClient:
    def __init__(
        self,
        name: str,
        http: httpx.Client,
        policy: ClientPolicy = ClientPolicy(),
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self._http = http
        self.policy = policy
        self._sleep = sleep
        self._caps = _Capabilities()
        self.stats = CallStats()
        # What sync applies to this proxy's answers before storing them (sentinel.privacy); kept
        # here so every caller that reads a source applies the same transform.
        self.privacy: Pseudonymizer = IDENTITY
        self._lock = threading.Lock()  # stats are updated from prefetch threads

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LiteLLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport -------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET a JSON body with retries; raises a classified SourceError."""
        return self.fetch(path, params, _json_body)

    def fetch(self, path: str, params: Mapping[str, str | int] | None, decode: Callable[[bytes], T]) -> T:
        """GET and decode with retries; a body that fails to decode is retried like a 5xx."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, SourceError) and e.retryable),
            stop=tenacity.stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return cast(T, retrying(self._fetch_once, path, params, decode))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        # Exponential backoff plus up to one initial step of random jitter, so pods do not retry in step.
        policy = self.policy
        backoff = (
            tenacity.wait_exponential(multiplier=policy.retry_initial_s, max=policy.retry_max_s)
            + tenacity.wait_random(0, policy.retry_initial_s)
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # The proxy said how long to wait; never sooner, and never absurdly long.
            return float(max(backoff, min(retry_after, 300.0)))
        return float(backoff)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        with self._lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("%s; retry %d in %.1fs", exc, state.attempt_number, wait)

    def _send(self, path: str, params: Mapping[str, str | int] | None) -> httpx.Response:
        """One GET, counted; a failure to get any answer is ProxyUnavailable."""
        try:
            response = self._http.get(path, params=dict(params or {}))
        except httpx.TimeoutException:
            raise ProxyUnavailable(f"source {self.name!r}: {path} timed out", source=self.name) from None
        except httpx.TransportError as exc:
            raise ProxyUnavailable(
                f"source {self.name!r}: cannot reach the proxy ({type(exc).__name__})", source=self.name
            ) from None
        with self._lock:
            self.stats.calls += 1
            self.stats.bytes += len(response.content)
        return response

    def _fetch_once(self, path: str, params: Mapping[str, str | int] | None, decode: Callable[[bytes], T]) -> T:
        response = self._send(path, params)
        if response.status_code >= 400:
            raise self._classify(path, response)
        try:
            return decode(response.content)
        except MalformedResponse as exc:
            raise MalformedResponse(
                f"source {self.name!r}: {path} answered {response.status_code} with a body that is not the "
                f"expected JSON ({len(response.content)} bytes): {exc}",
                source=self.name,
                status=response.status_code,
            ) from None

    def _classify(self, path: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        kind, message = _error_text(response)
        lowered = f"{kind} {message}".lower()
        where = f"source {self.name!r}: GET {path} -> {status}"
        if any(marker in lowered for marker in _NO_DB_MARKERS):
            return ProxyHasNoDatabase(
                f"{where}: the proxy has no database connected, so it keeps no spend history "
                f"({message}). Set DATABASE_URL on the proxy.",
                source=self.name,
                status=status,
            )
        if status == 401 and not kind and "admin" in lowered:
            # A known key whose role may not read this: some routes answer 401 with a plain detail
            # ("Only admin users can query all teams ... Your user role=internal_user"), not an auth error.
            return PermissionDenied(
                f"{where}: the key's user may not read this ({message}). Give it the proxy_admin_viewer role.",
                source=self.name,
                status=status,
            )
        if status == 401:
            return AuthenticationFailed(
                f"{where}: authentication failed ({message or kind}). Check the key this source reads "
                "(api_key_env / api_key_credential): it must be a proxy_admin_viewer key or the master key.",
                source=self.name,
                status=status,
            )
        if status == 403:
            return PermissionDenied(
                f"{where}: the key is not allowed to read this ({message or kind}). Give its user the "
                "proxy_admin_viewer role.",
                source=self.name,
                status=status,
            )
        if status == 429 or status >= 500:
            return ProxyUnavailable(
                f"{where}: {message or 'proxy error'}",
                source=self.name,
                status=status,
                retry_after=_retry_after(response),
            )
        return RequestRejected(
            f"{where}: the proxy rejected the request: {message or kind}", source=self.name, status=status
        )

    # ---- daily activity --------------------------------------------------------------------

    def daily_activity(
        self, route: Route, start: date, end: date, *, unsettled: frozenset[date] = frozenset()
    ) -> DailyActivity:
        """Every fact of ``route`` for the UTC days start..end (inclusive), merged across pages.

        ``unsettled`` days (today, and yesterday shortly after midnight) still grow; on the
        paginated route they are read one day per scan, so rows inserted meanwhile cannot shift
        the offsets of settled days.
        """
        calls0, bytes0 = self.stats.calls, self.stats.bytes
        fold = ActivityFold(route, self.name)
        done = False
        if (
            self.policy.prefer_aggregated
            and self._caps.aggregated[route]
            and not (route == "user" and self._caps.keys_exceed_cap)
        ):
            done = self._aggregated(route, start, end, fold)
        if not done:
            fold = ActivityFold(route, self.name)
            settled_ranges, single_days = _split_unsettled(start, end, unsettled)
            for lo, hi in settled_ranges:
                self._paginated(route, lo, hi, fold)
            for day in single_days:
                self._paginated(route, day, day, fold)
        days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
        all_facts = fold.facts()
        facts = [f for f in all_facts if start <= f.date <= end]
        if len(facts) != len(all_facts):
            # Seen with the `timezone` parameter bug (#27780): never store a day we did not ask for.
            log.warning("source %s: %s activity returned days outside %s..%s; ignored", self.name, route, start, end)
        return DailyActivity(
            dates=days,
            facts=tuple(facts),
            keys=tuple(fold.keys.values()),
            aliases=dict(fold.aliases),
            bytes_read=self.stats.bytes - bytes0,
            calls=self.stats.calls - calls0,
        )

    def capabilities(self) -> dict[str, object]:
        """What this proxy turned out to serve, to remember across processes."""
        return {
            "aggregated_user": self._caps.aggregated["user"],
            "aggregated_team": self._caps.aggregated["team"],
            "keys_exceed_cap": self._caps.keys_exceed_cap,
            "v2_team_list": self._caps.v2_team_list,
        }

    def restore_capabilities(self, known: Mapping[str, object]) -> None:
        self._caps.aggregated["user"] = bool(known.get("aggregated_user", True))
        self._caps.aggregated["team"] = bool(known.get("aggregated_team", True))
        self._caps.keys_exceed_cap = bool(known.get("keys_exceed_cap", False))
        self._caps.v2_team_list = bool(known.get("v2_team_list", True))

    @property
    def reads_keys_by_page(self) -> bool:
        """True once the per-key detail has to come from the paginated route (many calls a day)."""
        return not self.policy.prefer_aggregated or not self._caps.aggregated["user"] or self._caps.keys_exceed_cap

    def day_totals(self, start: date, end: date) -> dict[date, tuple[float, ...]] | None:
        """Each day's proxy-wide counters in one small call (aggregated route, smallest per-key maps).

        None when the proxy has no aggregated route. Used to check whether settled days changed
        before paying for a page-by-page re-read of them.
        """
        if not self.policy.prefer_aggregated:
            return None
        page = self._aggregated_page("user", start, end, 1)
        if page is None:
            return None
        fold = ActivityFold("user", self.name)
        fold.add_page(page)
        return {f.date: f.metrics for f in fold.facts() if f.grain is Grain.TOTAL and start <= f.date <= end}

    def _decoder(self, route: Route) -> Callable[[bytes], ActivityPage]:
        return lambda body: decode_page(route, body)

    def _aggregated_page(self, route: Route, start: date, end: date, limit: int) -> ActivityPage | None:
        """One aggregated answer, or None when this proxy does not serve the route (remembered)."""
        if not self._caps.aggregated[route]:
            return None
        params: dict[str, str | int] = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "api_key_limit": limit,
        }
        try:
            return self.fetch(f"/{route}/daily/activity/aggregated", params, self._decoder(route))
        except RequestRejected as exc:
            if exc.status != 404:
                raise
        log.info("source %s: /%s/daily/activity/aggregated not served; reading page by page", self.name, route)
        self._caps.aggregated[route] = False
        return None

    def _aggregated(self, route: Route, start: date, end: date, fold: ActivityFold) -> bool:
        # The team route is only stored per team, so ask it for the smallest per-key maps.
        limit = self.policy.api_key_limit if route == "user" else 1
        page = self._aggregated_page(route, start, end, limit)
        if page is None:
            return False
        if route == "user" and _keys_truncated(page, limit):
            # Per-key maps are capped at the top `limit` keys; only the paginated route is complete.
            log.info("source %s: more than %d keys in range; reading per-key detail page by page", self.name, limit)
            self._caps.keys_exceed_cap = True
            return False
        fold.add_page(page)
        return True

    def _paginated(self, route: Route, start: date, end: date, fold: ActivityFold) -> None:
        """All pages of one scan. Page 1 says how many there are; the rest are fetched a few at a
        time while earlier ones are folded, so the proxy's query time overlaps our parsing."""
        base: dict[str, str | int] = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "page_size": self.policy.page_size,
        }
        decode = self._decoder(route)
        path = f"/{route}/daily/activity"
        first = self.fetch(path, {**base, "page": 1}, decode)
        fold.add_page(first)
        if not first.metadata.has_more:
            return
        total = max(first.metadata.total_pages or 0, 2)
        with ThreadPoolExecutor(max_workers=_PREFETCH, thread_name_prefix=f"fetch-{self.name}") as pool:

            def submit(n: int) -> Future[ActivityPage]:
                return pool.submit(self.fetch, path, {**base, "page": n}, decode)

            pending = deque(submit(n) for n in range(2, min(total, 1 + _PREFETCH) + 1))
            next_no = 2 + len(pending)
            while pending:
                page = pending.popleft().result()
                fold.add_page(page)
                if next_no <= total:
                    pending.append(submit(next_no))
                    next_no += 1
                elif not pending and page.metadata.has_more:
                    # The table grew past the page count page 1 reported: read on until has_more ends.
                    if next_no > _MAX_PAGES:
                        raise MalformedResponse(
                            f"source {self.name!r}: {route} activity never stopped paging", source=self.name
                        )
                    pending.append(submit(next_no))
                    next_no += 1

    # ---- entities and budgets ---------------------------------------------------------------

    def users(self) -> list[UserRecord]:
        out: list[UserRecord] = []
        for row in self._pages("/user/list", "users", {"page_size": 100}, "page"):
            uid = row.get("user_id")
            if not uid:
                continue
            teams = row.get("teams") or []
            out.append(
                UserRecord(
                    user_id=str(uid),
                    alias=_opt_str(row.get("user_alias")),
                    role=_opt_str(row.get("user_role")),
                    teams=tuple(str(t) for t in teams if t),
                    budget=_budget(row, soft=None),
                )
            )
        return out

    def teams(self) -> list[TeamRecord]:
        rows: list[Mapping[str, Any]]
        if self._caps.v2_team_list:
            try:
                rows = list(self._pages("/v2/team/list", "teams", {"page_size": 100}, "page"))
            except RequestRejected as exc:
                if exc.status != 404:
                    raise
                self._caps.v2_team_list = False
        if not self._caps.v2_team_list:
            body = self.get("/team/list")
            if not isinstance(body, list):
                raise MalformedResponse(f"source {self.name!r}: /team/list is not a JSON array", source=self.name)
            rows = [r for r in body if isinstance(r, Mapping)]
        out: list[TeamRecord] = []
        for row in rows:
            tid = row.get("team_id")
            if not tid:
                continue
            members = row.get("members_with_roles") or []
            member_ids = tuple(str(m.get("user_id")) for m in members if isinstance(m, Mapping) and m.get("user_id"))
            admins = tuple(
                str(m.get("user_id"))
                for m in members
                if isinstance(m, Mapping) and m.get("user_id") and m.get("role") == "admin"
            )
            limits = row.get("budget_limits") or []
            out.append(
                TeamRecord(
                    team_id=str(tid),
                    alias=_opt_str(row.get("team_alias")),
                    members=member_ids,
                    admins=admins,
                    budget=_budget(row, soft=row.get("soft_budget")),
                    budget_limits=tuple(dict(x) for x in limits if isinstance(x, Mapping)),
                )
            )
        return out

    def keys(self) -> list[KeyRecord]:
        out: list[KeyRecord] = []
        params: dict[str, str | int] = {"size": 100, "return_full_object": "true"}
        for row in self._pages("/key/list", "keys", params, "page", page_total="total_pages"):
            token = row.get("token")
            if not token:
                continue
            table = row.get("litellm_budget_table")
            # A key's soft budget lives in its budget table (API.md §5.1), not on the key row.
            soft = table.get("soft_budget") if isinstance(table, Mapping) else None
            out.append(
                KeyRecord(
                    token=str(token),
                    alias=_opt_str(row.get("key_alias")),
                    user_id=_opt_str(row.get("user_id")),
                    team_id=_opt_str(row.get("team_id")),
                    blocked=bool(row.get("blocked")),
                    budget=_budget(row, soft=soft if soft is not None else row.get("soft_budget")),
                )
            )
        return out

    def readiness(self) -> Mapping[str, Any]:
        body = self.get("/health/readiness")
        return body if isinstance(body, Mapping) else {}

    def probe(self, path: str, params: Mapping[str, str | int] | None = None) -> Probe:
        """One GET, no retries, for `sentinel doctor`: the answer or its classified error, and the
        proxy's clock (its Date header) against ours at the middle of the round trip."""
        sent = datetime.now(UTC)
        response = self._send(path, params)
        received = datetime.now(UTC)
        server_date = None
        if response.headers.get("date"):
            from email.utils import parsedate_to_datetime

            try:
                server_date = parsedate_to_datetime(response.headers["date"])
            except (TypeError, ValueError):
                server_date = None
        error = self._classify(path, response) if response.status_code >= 400 else None
        body: Any = None
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        return Probe(response.status_code, body, error, server_date, sent + (received - sent) / 2)

    def _pages(
        self,
        path: str,
        items: str,
        params: Mapping[str, str | int],
        page_param: str,
        page_total: str = "total_pages",
    ) -> Iterator[Mapping[str, Any]]:
        page = 1
        while page <= _MAX_PAGES:
            body = self.get(path, {**params, page_param: page})
            if not isinstance(body, Mapping) or not isinstance(body.get(items), list):
                raise MalformedResponse(f"source {self.name!r}: {path} has no {items!r} list", source=self.name)
            rows = body[items]
            for row in rows:
                if isinstance(row, Mapping):
                    yield row
            total = body.get(page_total)
            if not rows or not isinstance(total, int) or page >= total:
                return
            page += 1


def _split_unsettled(start: date, end: date, unsettled: frozenset[date]) -> tuple[list[tuple[date, date]], list[date]]:
    ranges: list[tuple[date, date]] = []
    singles: list[date] = []
    lo: date | None = None
    day = start
    while day <= end:
        if day in unsettled:
            if lo is not None:
                ranges.append((lo, day - timedelta(days=1)))
                lo = None
            singles.append(day)
        elif lo is None:
            lo = day
        day += timedelta(days=1)
    if lo is not None:
        ranges.append((lo, end))
    return ranges, singles


def _keys_truncated(page: ActivityPage, limit: int) -> bool:
    total = page.metadata.total_api_keys
    if total is not None:
        return total > limit
    # Older aggregated routes do not report the total: a map filled exactly to the cap is suspect.
    seen: set[str] = set()
    for result in page.results:
        breakdown = result.breakdown
        if isinstance(breakdown, UserBreakdown) and breakdown.api_keys:
            seen.update(breakdown.api_keys)
    return len(seen) >= limit


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(str(exc)) from None


def _error_text(response: httpx.Response) -> tuple[str, str]:
    """(type, message) from either error family; never the raw body beyond 300 chars."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "", response.text[:300].strip()
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):  # family A: ProxyException
            return str(err.get("type") or ""), str(err.get("message") or "")[:300]
        detail = body.get("detail")
        if isinstance(detail, Mapping):  # family B
            return "", str(detail.get("error") or detail)[:300]
        if isinstance(detail, str):
            return "", detail[:300]
        if isinstance(detail, list):  # family C: FastAPI validation
            msgs = [
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                for d in detail
                if isinstance(d, Mapping)
            ]
            return "validation", "; ".join(msgs)[:300]
    return "", str(body)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _opt_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_utc(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _budget(row: Mapping[str, Any], *, soft: Any) -> Budget:
    return Budget(
        max_budget=_opt_float(row.get("max_budget")),
        soft_budget=_opt_float(soft),
        spend=_opt_float(row.get("spend")),
        budget_duration=_opt_str(row.get("budget_duration")),
        budget_reset_at=parse_utc(row.get("budget_reset_at")),
    )
