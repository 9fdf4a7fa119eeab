"""`sentinel doctor`: can Sentinel read this proxy, and is the data it would watch complete?

Each check gives a verdict (ok, warn, fail, info, skip), what it found, and the fix. The checks run
in order and a failure that makes the rest meaningless (no answer, a rejected key) skips them. Every
request goes through the same read-only, audited client as a poll; the proxy's answers are judged
by pure functions (shared with the daemon's data checks in :mod:`sentinel.quality`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sentinel import quality
from sentinel.config import QualitySettings
from sentinel.errors import (
    AuthenticationFailed,
    PermissionDenied,
    ProxyHasNoDatabase,
    ProxyUnavailable,
    SourceError,
)
from sentinel.models import DailyActivity, Grain
from sentinel.source.litellm import LiteLLMClient, Probe

Verdict = Literal["ok", "warn", "fail", "info", "skip"]
MASTER_USER_ID = "default_user_id"  # whom LiteLLM attributes the master key's calls to (litellm_proxy_admin_name)
VIEWER_ROLE = "proxy_admin_viewer"
SKEW_WARN_S = 60.0
SKEW_FAIL_S = 900.0
HISTORY_PROBE_DAYS = 3 * 366  # how far back the oldest day is looked for
THIN_HISTORY_DAYS = 28  # seasonal baselines want four weeks

VIEWER_HOWTO = (
    "Create a read-only user and key with the master key: POST /user/new "
    '{"user_id": "sentinel", "user_role": "proxy_admin_viewer"}, then POST /key/generate {"user_id": "sentinel"}; '
    "point api_key_env (or api_key_credential) of this source at the new key."
)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    finding: str
    fix: str = ""
    details: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.name,
            "verdict": self.verdict,
            "finding": self.finding,
            "fix": self.fix,
            "details": dict(self.details),
        }


@dataclass
class Report:
    source: str
    url: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.verdict == "fail" for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "url": self.url,
            "ok": not self.failed,
            "checks": [c.to_json() for c in self.checks],
        }


# ---------------------------------------------------------------------------------------------- verdicts
def clock_check(skew_s: float | None) -> Check:
    if skew_s is None:
        return Check("clock", "skip", "the proxy sent no Date header; clock skew not measured")
    ahead = "ahead of" if skew_s > 0 else "behind"
    finding = f"the proxy's clock is {abs(skew_s):.0f} s {ahead} this host's"
    fix = (
        "Run time synchronisation (chrony or systemd-timesyncd) on both hosts: days are UTC days on the "
        "proxy, and Sentinel decides from its own clock when a day is final and how much of today has passed."
    )
    if abs(skew_s) > SKEW_FAIL_S:
        return Check("clock", "fail", finding, fix, {"skew_s": round(skew_s, 1)})
    if abs(skew_s) > SKEW_WARN_S:
        return Check("clock", "warn", finding, fix, {"skew_s": round(skew_s, 1)})
    return Check(
        "clock",
        "ok",
        finding if abs(skew_s) >= 2 else "in step with this host (within 2 s)",
        details={"skew_s": round(skew_s, 1)},
    )


def database_check(readiness: Probe) -> Check:
    body = readiness.body if isinstance(readiness.body, Mapping) else {}
    db = body.get("db")
    if db is None:
        return Check(
            "database",
            "info",
            "/health/readiness does not say whether a database is connected",
            details={"status": readiness.status},
        )
    if str(db).lower() == "connected":
        return Check("database", "ok", "a database is connected (spend is recorded)", details={"db": db})
    return Check(
        "database",
        "fail",
        f"the proxy has no working database (readiness: db={db!r}, HTTP {readiness.status}): it keeps no spend history",
        "Set DATABASE_URL on the proxy to a PostgreSQL database and restart it.",
        {"db": db, "status": readiness.status},
    )


def role_check(user_id: str | None, role: str | None) -> Check:
    details = {"user_id": user_id, "role": role}
    if user_id == MASTER_USER_ID:
        return Check(
            "key role",
            "warn",
            "this is the proxy's master key: it can create keys, change budgets and spend money; Sentinel needs "
            "only to read",
            VIEWER_HOWTO,
            details,
        )
    if role == VIEWER_ROLE:
        return Check("key role", "ok", f"a read-only proxy_admin_viewer key (user {user_id})", details=details)
    if role == "proxy_admin":
        return Check(
            "key role",
            "warn",
            f"a proxy_admin key (user {user_id}): it can change the proxy; Sentinel needs only to read",
            VIEWER_HOWTO,
            details,
        )
    return Check(
        "key role",
        "fail",
        f"the key's user {user_id} has role {role or 'unknown'}: it sees only its own spend, not the whole proxy",
        "Give that user the proxy_admin_viewer role, or use a key of such a user. " + VIEWER_HOWTO,
        details,
    )


def traffic_check(activity: DailyActivity, first: date, today: date) -> Check:
    per_day: dict[date, tuple[float, int]] = {}
    for f in activity.facts:
        if f.grain == Grain.TOTAL:
            spend, requests = per_day.get(f.date, (0.0, 0))
            per_day[f.date] = (spend + f.spend, requests + int(f.metrics[5]))
    requests = sum(r for _, r in per_day.values())
    spend = sum(s for s, _ in per_day.values())
    days = (today - first).days + 1
    if requests == 0:
        return Check(
            "recent traffic",
            "fail",
            f"no requests recorded in the last {days} days",
            "Send a request through the proxy. If traffic does flow, the proxy is not recording it: check that "
            "spend tracking is on (its database is writable, disable_spend_logs is not set for the daily tables) "
            "and look for update_spend errors in the proxy's log.",
            {"days": days},
        )
    last = max(d for d, (_, r) in per_day.items() if r > 0)
    details = {"requests": requests, "spend_usd": round(spend, 2), "last_day": last.isoformat(), "days": days}
    if (today - last).days >= 2:
        return Check(
            "recent traffic",
            "warn",
            f"{requests:,} requests (${spend:,.2f}) in the last {days} days, but none since {last}",
            "If traffic still flows, the proxy stopped recording it: check its database writes and log.",
            details,
        )
    return Check(
        "recent traffic", "ok", f"{requests:,} requests, ${spend:,.2f} in the last {days} days", details=details
    )


def attribution_check(activity: DailyActivity, threshold: float) -> Check:
    users: dict[str, float] = {}
    keys: set[str] = set()
    for f in activity.facts:
        if f.grain == Grain.USER:
            users[f.entity_id] = users.get(f.entity_id, 0.0) + f.spend
        elif f.grain == Grain.KEY and f.spend > 0:
            keys.add(f.entity_id)
    spread = quality.attribution_of(users.items(), len(keys))
    details = {
        "users": spread.users,
        "keys": len(keys),
        "top": spread.top,
        "top_share": round(spread.top_share, 4),
        "unassigned_share": round(spread.unassigned_share, 4),
    }
    if spread.total_usd <= 0:
        return Check("attribution", "skip", "no spend to attribute", details=details)
    fix = (
        'Create keys with a user_id (POST /key/generate {"user_id": ...}) or set it on existing keys '
        "(/key/update); until then, alert per key and per team instead of per user."
    )
    if spread.concentrated(threshold):
        if spread.unassigned_share >= threshold:
            what = f"{spread.unassigned_share:.0%} of spend comes from keys with no user_id"
        else:
            what = f"{spread.top_share:.0%} of spend is attributed to one user ({spread.top}) across {len(keys)} keys"
        return Check(
            "attribution", "fail", f"{what}: per-user alerts and budgets cannot tell people apart", fix, details
        )
    if spread.unassigned_share >= 0.5:
        return Check(
            "attribution",
            "warn",
            f"{spread.unassigned_share:.0%} of spend comes from keys with no user_id",
            fix,
            details,
        )
    if spread.users <= 1:
        return Check("attribution", "info", f"all spend is one user's ({spread.top}), through one key", details=details)
    return Check(
        "attribution",
        "ok",
        f"spend is spread over {spread.users} users (the largest holds {spread.top_share:.0%})",
        details=details,
    )


def pricing_check(activity: DailyActivity) -> Check:
    per_model: dict[str, list[float]] = {}
    for f in activity.facts:
        if f.grain == Grain.MODEL:
            acc = per_model.setdefault(f.entity_id, [0.0, 0.0, 0.0])
            acc[0] += f.spend
            acc[1] += f.metrics[1] + f.metrics[2]  # prompt + completion tokens
            acc[2] += f.metrics[6]  # successful requests
    unpriced = sorted(m for m, (spend, tokens, ok) in per_model.items() if quality.unpriced(spend, tokens, ok))
    if not per_model:
        return Check("pricing", "skip", "no model traffic to check")
    if unpriced:
        tokens = {m: int(per_model[m][1]) for m in unpriced}
        return Check(
            "pricing",
            "fail",
            f"{len(unpriced)} model(s) logged tokens with $0 spend (missing from the proxy's price map): "
            + ", ".join(f"{m} ({tokens[m]:,} tokens)" for m in unpriced),
            "Give each model input_cost_per_token and output_cost_per_token under model_info in the proxy's "
            "config.yaml (or upgrade LiteLLM's price map); until then their spend is invisible to budgets and alerts.",
            {"unpriced": unpriced, "tokens": tokens},
        )
    return Check(
        "pricing",
        "ok",
        f"every model with tokens has a price ({len(per_model)} models)",
        details={"models": len(per_model)},
    )


def inventory_check(activity: DailyActivity) -> Check:
    def spend_of(grain: Grain) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in activity.facts:
            if f.grain == grain:
                out[f.entity_id] = out.get(f.entity_id, 0.0) + f.spend
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    providers, models = spend_of(Grain.PROVIDER), spend_of(Grain.MODEL)
    if not providers:
        return Check("inventory", "skip", "no providers seen")
    shown = ", ".join(f"{p} ${s:,.2f}" for p, s in providers.items())
    return Check(
        "inventory",
        "info",
        f"{len(providers)} provider(s): {shown}; {len(models)} model(s)",
        details={"providers": {k: round(v, 2) for k, v in providers.items()}, "models": sorted(models)},
    )


def history_check(oldest: date | None, today: date, backfill_days: int) -> Check:
    if oldest is None:
        return Check("history", "info", f"no day with data in the last {HISTORY_PROBE_DAYS} days")
    days = (today - oldest).days + 1
    details = {"oldest_day": oldest.isoformat(), "days": days}
    if days < THIN_HISTORY_DAYS:
        return Check(
            "history",
            "warn",
            f"the oldest day with data is {oldest} ({days} days): baselines are thin until four weeks are recorded, "
            "so anomalies are judged with wide intervals meanwhile",
            details=details,
        )
    note = f"; a first start backfills {backfill_days} days" if backfill_days < days else ""
    return Check("history", "info", f"the oldest day with data is {oldest} ({days} days){note}", details=details)


# ---------------------------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class _Endpoint:
    label: str
    path: str
    params: Mapping[str, str | int]
    fallback: tuple[str, Mapping[str, str | int]] | None = None  # on 404 (an older proxy)


def _endpoints(today: date) -> list[_Endpoint]:
    day = {"start_date": today.isoformat(), "end_date": today.isoformat()}
    return [
        _Endpoint(
            "user activity",
            "/user/daily/activity/aggregated",
            {**day, "api_key_limit": 1},
            ("/user/daily/activity", {**day, "page_size": 1}),
        ),
        _Endpoint(
            "team activity",
            "/team/daily/activity/aggregated",
            {**day, "api_key_limit": 1},
            ("/team/daily/activity", {**day, "page_size": 1}),
        ),
        _Endpoint("users", "/user/list", {"page": 1, "page_size": 1}),
        _Endpoint("teams", "/v2/team/list", {"page": 1, "page_size": 1}, ("/team/list", {})),
        _Endpoint("keys", "/key/list", {"page": 1, "size": 1, "return_full_object": "true"}),
    ]


def scope_check(client: LiteLLMClient, today: date) -> Check:
    refused: list[str] = []
    read: list[str] = []
    for ep in _endpoints(today):
        probe = client.probe(ep.path, ep.params)
        if probe.status == 404 and ep.fallback is not None:
            probe = client.probe(*ep.fallback)
        if probe.error is None:
            read.append(ep.label)
        else:
            refused.append(f"{ep.label} ({probe.error})")
    if refused:
        return Check(
            "read scope",
            "fail",
            f"{len(refused)} of {len(refused) + len(read)} reads refused: " + "; ".join(refused),
            "Sentinel reads with a proxy_admin_viewer key (or the master key). " + VIEWER_HOWTO,
            {"refused": refused, "read": read},
        )
    return Check("read scope", "ok", f"reads all {len(read)} kinds of data Sentinel uses", details={"read": read})


def oldest_day(client: LiteLLMClient, today: date, span_days: int = HISTORY_PROBE_DAYS) -> date | None:
    """The first UTC day with any row, by bisection over row counts of the paginated route (one
    small page per probe, ~11 probes for three years), not by reading the history."""
    lo = today - timedelta(days=span_days - 1)

    def any_rows(start: date, end: date) -> bool:
        body = client.get(
            "/user/daily/activity", {"start_date": start.isoformat(), "end_date": end.isoformat(), "page_size": 1}
        )
        results = body.get("results") if isinstance(body, Mapping) else None
        return bool(results)

    if not any_rows(lo, today):
        return None
    first, last = lo, today  # invariant: the oldest day with rows is in first..last
    while first < last:
        mid = first + timedelta(days=(last - first).days // 2)
        if any_rows(first, mid):
            last = mid
        else:
            first = mid + timedelta(days=1)
    return first


# ---------------------------------------------------------------------------------------------- the run
def diagnose(
    client: LiteLLMClient,
    url: str,
    settings: QualitySettings,
    *,
    backfill_days: int = 90,
    now: datetime | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> Report:
    """Run every check against one source, in order."""
    report = Report(client.name, url)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()

    def add(check: Check) -> None:
        report.checks.append(check)
        if on_check is not None:
            on_check(check)

    def skip_rest(names: Sequence[str], why: str) -> None:
        for name in names:
            add(Check(name, "skip", f"not checked: {why}"))

    rest = [
        "authentication",
        "key role",
        "read scope",
        "recent traffic",
        "attribution",
        "pricing",
        "inventory",
        "history",
    ]
    try:
        readiness = client.probe("/health/readiness")
    except ProxyUnavailable as exc:
        add(
            Check(
                "reachable",
                "fail",
                str(exc),
                f"Check that the proxy runs and that {url} is its address (url of this source), and any firewall.",
            )
        )
        skip_rest(["clock", "database", *rest], "the proxy does not answer")
        return report
    version = readiness.body.get("litellm_version") if isinstance(readiness.body, Mapping) else None
    add(
        Check(
            "reachable",
            "ok",
            f"the proxy answers (HTTP {readiness.status}" + (f", LiteLLM {version}" if version else "") + ")",
            details={"status": readiness.status, "version": version},
        )
    )
    add(clock_check(readiness.skew_s))
    database = database_check(readiness)
    add(database)

    who = client.probe("/user/info")
    if isinstance(who.error, AuthenticationFailed):
        add(
            Check(
                "authentication",
                "fail",
                f"the proxy rejected the key (HTTP {who.status})",
                "Check the key this source reads (api_key_env / api_key_credential): it must be a key the proxy "
                "knows, not blocked or expired. " + VIEWER_HOWTO,
                {"error": str(who.error)},
            )
        )
        skip_rest(rest[1:], "the key is rejected")
        return report
    if isinstance(who.error, ProxyHasNoDatabase):
        if database.verdict != "fail":
            add(Check("database", "fail", str(who.error), "Set DATABASE_URL on the proxy and restart it."))
        skip_rest(rest, "the proxy has no database")
        return report
    if who.error is not None and not isinstance(who.error, PermissionDenied):
        add(Check("authentication", "fail", str(who.error)))
        skip_rest(rest[1:], "the key could not be checked")
        return report
    body: Mapping[str, Any] = who.body if isinstance(who.body, Mapping) else {}
    raw_info = body.get("user_info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    user_id = _text(body.get("user_id")) or _text(info.get("user_id"))
    role = _text(info.get("user_role"))
    add(
        Check(
            "authentication", "ok", f"the key authenticates (user {user_id or 'unknown'})", details={"user_id": user_id}
        )
    )
    add(role_check(user_id, role))
    scope = scope_check(client, today)
    add(scope)
    if scope.verdict == "fail" and "user activity" not in str(scope.details.get("read", "")):
        skip_rest(rest[3:], "daily activity cannot be read")
        return report

    first = today - timedelta(days=settings.recent_days - 1)
    try:
        activity = client.daily_activity("user", first, today)
    except SourceError as exc:
        add(Check("recent traffic", "fail", f"reading the last {settings.recent_days} days failed: {exc}"))
        skip_rest(rest[4:], "daily activity could not be read")
        return report
    add(traffic_check(activity, first, today))
    add(attribution_check(activity, settings.single_user_share))
    add(pricing_check(activity))
    add(inventory_check(activity))
    try:
        add(history_check(oldest_day(client, today), today, backfill_days))
    except SourceError as exc:
        add(Check("history", "skip", f"the oldest day could not be found: {exc}"))
    return report


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
