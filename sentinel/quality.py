"""Is the data complete? Checks over the stored data that run with every evaluation.

Each is a few grouped queries, so it runs every tick, and what it finds is an operator alert
(rule ``sentinel-data``, ``kind="operator"``, label ``check``):

- ``outage``: a source whose running total stopped growing across every provider while its usual
  day expected spend (the proxy's logging broke, or it stopped answering with data). The spell is
  kept (``data_outages``) and the drop anomalies and spend absences it would cause are not raised.
- ``unpriced``: a model with tokens but $0 spend on the recent days (missing from the proxy's price
  map: its spend is invisible to budgets and anomalies).
- ``attribution``: one user (or the "Unassigned" bucket of keys without a user) holds nearly all of
  the recent spend, so per-user alerts cannot work.
- ``revision``: a day already final whose total changed when it was read again.

`sentinel doctor` runs the same checks (``unpriced``, ``attribution``) against the proxy's answers.
Numbers and decisions are pure functions; :func:`assess` is the I/O edge.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

import sqlite_utils

from sentinel.config import QualitySettings, parse_duration
from sentinel.detect.intraday import learn_profile, share_at
from sentinel.models import Grain
from sentinel.notify.model import Alert
from sentinel.privacy import UNASSIGNED
from sentinel.rules.evaluate import fingerprint
from sentinel.store import facts as fact_store
from sentinel.store import state as state_store

QUALITY_RULE = "sentinel-data"
LEVEL_DAYS = 14  # complete days whose median total is a source's usual day
QUIET_LOOKBACK_DAYS = 14  # how far back a quiet spell is traced
MIN_EXPECTED_REQUESTS = 20.0  # silence where fewer requests were expected proves nothing (e^-20 by chance)


# ---------------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Unpriced:
    model: str
    tokens: int
    requests: int
    first_date: date


@dataclass(frozen=True)
class Attribution:
    total_usd: float
    users: int  # entities with spend, the unassigned bucket excluded
    top: str  # the entity with the most spend ("Unassigned" for keys without a user)
    top_share: float
    unassigned_share: float
    keys: int = 0  # keys with spend

    def concentrated(self, threshold: float) -> bool:
        """Per-user alerting cannot work: keys without a user hold the spend, or one user does
        although several keys spend (one person with one key is a personal proxy, not a fault)."""
        if self.total_usd <= 0:
            return False
        return self.unassigned_share >= threshold or (self.top_share >= threshold and self.keys > 1)


@dataclass(frozen=True)
class Outage:
    source: str
    started_at: datetime  # the last growth of the running total before it stopped
    ended_at: datetime | None = None
    expected_usd: float = 0.0  # what the usual day would have added since started_at
    providers: int = 0  # providers with spend before it

    def days(self, today: date) -> set[date]:
        last = (self.ended_at or datetime.combine(today, time(), UTC)).date()
        first = self.started_at.date()
        return {first + timedelta(days=i) for i in range((max(last, first) - first).days + 1)}


@dataclass
class Assessment:
    alerts: list[Alert] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)  # stored and current, for suppression
    opened: list[Outage] = field(default_factory=list)  # to store
    closed: list[Outage] = field(default_factory=list)  # to mark ended


# ---------------------------------------------------------------------------------------------- pure
def attribution_of(spend_by_user: Iterable[tuple[str, float]], keys: int) -> Attribution:
    rows = [(u, s) for u, s in spend_by_user if s > 0]
    total = sum(s for _, s in rows)
    if total <= 0:
        return Attribution(0.0, 0, "", 0.0, 0.0, keys)
    unassigned = sum(s for u, s in rows if u in UNASSIGNED)
    top, top_spend = max(rows, key=lambda r: r[1])
    named = sum(1 for u, _ in rows if u not in UNASSIGNED)
    top_name = "Unassigned" if top in UNASSIGNED else top
    return Attribution(total, named, top_name, top_spend / total, unassigned / total, keys)


def unpriced(spend: float, tokens: float, successful_requests: float) -> bool:
    """Requests that went through and used tokens, but cost nothing: a model missing from the
    proxy's price map (failed requests cost nothing for a good reason)."""
    return tokens > 0 and successful_requests > 0 and abs(spend) < 1e-12


def last_growth(snapshots: Sequence[tuple[datetime, float, int | None]]) -> datetime | None:
    """When the running total last grew: a snapshot (taken_at, spend, requests) above the one
    before it on the same UTC day, or a day's first snapshot with anything in it."""
    latest: datetime | None = None
    previous: tuple[date, float, int] | None = None
    for at, spend, requests in sorted(snapshots, key=lambda s: s[0]):
        reqs = requests or 0
        day = at.date()
        grew = (
            (spend > 0 or reqs > 0)
            if previous is None or previous[0] != day
            else (spend > previous[1] + 1e-9 or reqs > previous[2])
        )
        if grew:
            latest = at
        previous = (day, spend, reqs)
    return latest


def expected_between(level_usd: float, profile: list[float] | None, start: datetime, end: datetime) -> float:
    """The usual day's spend between two instants, following the day's profile across midnights."""
    if end <= start or level_usd <= 0:
        return 0.0
    total = 0.0
    cursor = start
    while cursor < end:
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(), UTC)
        stop = min(end, next_midnight)
        share_stop = 1.0 if stop == next_midnight else share_at(profile, stop)
        total += level_usd * max(0.0, share_stop - share_at(profile, cursor))
        cursor = stop
    return total


def quiet_since(
    day_requests: Mapping[date, int],
    snapshots: Sequence[tuple[datetime, float, int | None]],
    today: date,
) -> datetime | None:
    """Since when nothing was recorded: the last growth of the running total, else the end of the
    last day with requests (tracing back over quiet days). None: no snapshot shows growth today
    (not polled yet today), or nothing was recorded in the whole lookback.

    Snapshots are taken of today only; a day read again after midnight may have grown after its
    last snapshot, and then it was recording until its end."""
    grown = last_growth(snapshots)
    if day_requests.get(today, 0) > 0:
        return grown if grown is not None and grown.date() == today else None
    day = today - timedelta(days=1)
    for _ in range(QUIET_LOOKBACK_DAYS):
        total = day_requests.get(day, 0)
        if total > 0:
            midnight = datetime.combine(day + timedelta(days=1), time(), UTC)
            last = [r for at, _, r in snapshots if at.date() == day]
            if grown is not None and grown.date() == day and last and last[-1] is not None and last[-1] >= total:
                return grown
            return midnight
        day -= timedelta(days=1)
    return None


def outage_now(
    source: str,
    now: datetime,
    since: datetime | None,
    level: tuple[float, float],
    profile: list[float] | None,
    providers: int,
    settings: QualitySettings,
) -> Outage | None:
    """A quiet spell long enough, and against enough expected spend and requests, to be a fault.

    ``level``: the usual day's (spend, requests). Until the intraday profile is learnt (a few days
    of polls), a quiet night cannot be told from an outage: only a whole day of silence counts.
    Silence where few requests were expected is no evidence either (MIN_EXPECTED_REQUESTS)."""
    least = (
        parse_duration(settings.outage_after)
        if profile is not None
        else max(parse_duration(settings.outage_after), timedelta(days=1))
    )
    if since is None or now - since < least:
        return None
    spend, requests = level
    expected = expected_between(spend, profile, since, now)
    if expected < max(settings.outage_min_expected_usd, 1e-9):
        return None
    if expected_between(requests, profile, since, now) < MIN_EXPECTED_REQUESTS:
        return None
    return Outage(source, since, None, round(expected, 2), providers)


def suppressed(alert: Alert, outages: Sequence[Outage], today: date) -> bool:
    """A drop anomaly or a spend absence on a day a source recorded nothing: the logging, not the
    spend, stopped. (Sources summed together — label source "" — are covered by any outage.)"""
    kind = alert.labels.get("kind")
    if kind == "anomaly" and alert.labels.get("direction") != "down":
        return False
    if kind not in ("anomaly", "absence") or alert.labels.get("entity_type") == "source":
        return False
    src = alert.labels.get("source", "")
    record_day = alert.record.get("date")
    if kind == "absence":
        quiet = alert.record.get("quiet_since")
        record_day = quiet if quiet is not None else record_day
    if record_day is None:
        return False
    day = date.fromisoformat(str(record_day))
    return any(src in ("", o.source) and day in o.days(today) for o in outages)


def _operator(
    check: str,
    subject: str,
    severity: str,
    summary: str,
    starts: datetime,
    now: datetime,
    record: Mapping[str, object],
    source: str,
) -> Alert:
    return Alert(
        fingerprint=fingerprint("operator", QUALITY_RULE, check, source, subject),
        status="firing",
        rule=QUALITY_RULE,
        severity=severity,
        summary=summary,
        labels={
            "kind": "operator",
            "rule": QUALITY_RULE,
            "severity": severity,
            "entity_type": "sentinel",
            "check": check,
            "source": source,
        },
        starts_at=starts,
        record={"kind": "operator", "check": check, "source": source, **record, "detected_at": now.isoformat()},
    )


def outage_alert(o: Outage, now: datetime) -> Alert:
    across = f"across all {o.providers} providers" if o.providers > 1 else "at all"
    return _operator(
        "outage",
        "",
        "critical",
        f"source {o.source}: no spend recorded {across} since {o.started_at:%Y-%m-%d %H:%M} UTC, while about "
        f"${o.expected_usd:,.2f} was expected: the proxy's spend logging looks broken (check its database "
        "writes and logs); drop alerts for this source are held back meanwhile",
        o.started_at,
        now,
        {"started_at": o.started_at.isoformat(), "expected_usd": o.expected_usd, "providers": o.providers},
        o.source,
    )


def unpriced_alert(source: str, u: Unpriced, days: int, now: datetime) -> Alert:
    return _operator(
        "unpriced",
        u.model,
        "warning",
        f"source {source}: model {u.model} logged {u.tokens:,} tokens in {u.requests:,} requests with $0 spend "
        f"(last {days} days): it is missing from the proxy's price map, so its spend is invisible to budgets "
        "and anomalies. Give it input_cost_per_token/output_cost_per_token in the proxy's model_info.",
        datetime.combine(u.first_date, time(), UTC),
        now,
        {"model": u.model, "tokens": u.tokens, "requests": u.requests, "since": u.first_date.isoformat()},
        source,
    )


def attribution_alert(source: str, a: Attribution, days: int, now: datetime) -> Alert:
    if a.unassigned_share >= a.top_share or a.top == "Unassigned":
        what = f"{a.unassigned_share:.0%} of spend comes from keys with no user_id"
    else:
        what = f"{a.top_share:.0%} of spend is attributed to one user ({a.top})"
    return _operator(
        "attribution",
        "",
        "warning",
        f"source {source}: {what} over the last {days} days, so per-user alerts and budgets cannot tell people "
        "apart. Set user_id on the keys (key/generate or key/update), or alert per key and team instead.",
        now.replace(minute=0, second=0, microsecond=0),
        now,
        {
            "top": a.top,
            "top_share": round(a.top_share, 4),
            "unassigned_share": round(a.unassigned_share, 4),
            "users": a.users,
            "total_usd": round(a.total_usd, 2),
        },
        source,
    )


def revision_alert(source: str, day: str, detected_at: str, before: float, after: float, now: datetime) -> Alert:
    delta = after - before
    alert = _operator(
        "revision",
        f"{day}@{detected_at}",
        "warning",
        f"source {source}: {day} changed after it was final: ${before:,.2f} -> ${after:,.2f} ({delta:+,.2f}). "
        "The proxy wrote spend late (or lost some); alerts already sent for that day used the old figure.",
        datetime.fromisoformat(detected_at),
        now,
        {"date": day, "final_spend": round(before, 6), "new_spend": round(after, 6), "delta_usd": round(delta, 6)},
        source,
    )
    # Told once: it stays active for a day and then ends without a resolved notice.
    return replace(alert, one_shot=True, expires_at=datetime.fromisoformat(detected_at) + timedelta(days=1))


# ---------------------------------------------------------------------------------------------- queries
def unpriced_models(db: sqlite_utils.Database, source: str, first: date, last: date) -> list[Unpriced]:
    cur = db.conn.execute(
        "SELECT entity_id, SUM(prompt_tokens + completion_tokens), SUM(successful_requests), SUM(spend), "
        "MIN(CASE WHEN prompt_tokens + completion_tokens > 0 THEN date END) FROM daily_facts "
        "WHERE source = ? AND grain = 'model' AND date BETWEEN ? AND ? GROUP BY entity_id",
        (source, first.isoformat(), last.isoformat()),
    )
    return [
        Unpriced(str(model), int(tokens), int(ok), date.fromisoformat(str(since)))
        for model, tokens, ok, spend, since in cur
        if since and unpriced(spend or 0.0, tokens or 0, ok or 0)
    ]


def user_spend(db: sqlite_utils.Database, source: str, first: date, last: date) -> list[tuple[str, float]]:
    return fact_store.spend_by_entity(db, Grain.USER, first, last, source)


def _spending(db: sqlite_utils.Database, source: str, grain: Grain, first: date, last: date) -> int:
    """How many entities of ``grain`` (keys, providers) had spend between first and last."""
    row = db.conn.execute(
        "SELECT COUNT(DISTINCT entity_id) FROM daily_facts WHERE source = ? AND grain = ? AND spend > 0 "
        "AND date BETWEEN ? AND ?",
        (source, grain.value, first.isoformat(), last.isoformat()),
    ).fetchone()
    return int(row[0])


def _day_requests(db: sqlite_utils.Database, source: str, first: date, last: date) -> dict[date, int]:
    cur = db.conn.execute(
        "SELECT date, api_requests FROM daily_facts WHERE source = ? AND grain = 'total' AND date BETWEEN ? AND ?",
        (source, first.isoformat(), last.isoformat()),
    )
    return {date.fromisoformat(d): int(r) for d, r in cur}


def _level(db: sqlite_utils.Database, source: str, before: date) -> tuple[float, float]:
    """The usual day before ``before``: median (spend, requests) of the LEVEL_DAYS days before it."""
    first = before - timedelta(days=LEVEL_DAYS)
    cur = db.conn.execute(
        "SELECT date, spend, api_requests FROM daily_facts WHERE source = ? AND grain = 'total' "
        "AND date >= ? AND date < ?",
        (source, first.isoformat(), before.isoformat()),
    )
    by_day = {d: (float(s), float(r)) for d, s, r in cur}
    if not by_day:
        return 0.0, 0.0
    days = [by_day.get((first + timedelta(days=i)).isoformat(), (0.0, 0.0)) for i in range(LEVEL_DAYS)]
    return float(statistics.median(d[0] for d in days)), float(statistics.median(d[1] for d in days))


def _snapshots(db: sqlite_utils.Database, source: str, since: date) -> list[tuple[datetime, float, int | None]]:
    cur = db.conn.execute(
        "SELECT taken_at, spend, requests FROM intraday_totals WHERE source = ? AND date >= ?",
        (source, since.isoformat()),
    )
    rows = [(datetime.fromisoformat(t), float(s), None if r is None else int(r)) for t, s, r in cur]
    return sorted(rows, key=lambda row: row[0])


def stored_outages(db: sqlite_utils.Database, since: date) -> list[Outage]:
    cur = db.conn.execute(
        "SELECT source, started_at, ended_at FROM data_outages WHERE ended_at IS NULL OR ended_at >= ?",
        (since.isoformat(),),
    )
    return [Outage(str(s), datetime.fromisoformat(a), datetime.fromisoformat(e) if e else None) for s, a, e in cur]


def record_outages(db: sqlite_utils.Database, assessment: Assessment, now: datetime) -> None:
    """Persist spells opened and ended this cycle (call inside the cycle's transaction)."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO data_outages (source, started_at, ended_at, detected_at) VALUES (?, ?, NULL, ?)",
        [(o.source, o.started_at.isoformat(), now.isoformat()) for o in assessment.opened],
    )
    db.conn.executemany(
        "UPDATE data_outages SET ended_at = ? WHERE source = ? AND started_at = ? AND ended_at IS NULL",
        [(now.isoformat(), o.source, o.started_at.isoformat()) for o in assessment.closed],
    )


# ---------------------------------------------------------------------------------------------- the edge
def assess(db: sqlite_utils.Database, settings: QualitySettings, now: datetime) -> Assessment:
    """Every check on every known source, as of ``now``."""
    out = Assessment()
    if not settings.enabled:
        return out
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=settings.recent_days - 1)
    stored = stored_outages(db, today - timedelta(days=QUIET_LOOKBACK_DAYS))
    for source in state_store.known_sources(db):
        snaps = _snapshots(db, source, today - timedelta(days=QUIET_LOOKBACK_DAYS))
        requests = _day_requests(db, source, today - timedelta(days=QUIET_LOOKBACK_DAYS), today)
        since = quiet_since(requests, snaps, today)
        level = _level(db, source, (since or now).date())
        profile = learn_profile(*fact_store.intraday_snapshots(db, today - timedelta(days=28), today, source))
        providers = _spending(db, source, Grain.PROVIDER, today - timedelta(days=LEVEL_DAYS), today)
        current = outage_now(source, now, since, level, profile, providers, settings)
        open_before = [o for o in stored if o.source == source and o.ended_at is None]
        if current is not None:
            known = next((o for o in open_before if o.started_at == current.started_at), None)
            if known is None:
                out.opened.append(current)
            out.closed += [o for o in open_before if o.started_at != current.started_at]
            out.alerts.append(outage_alert(current, now))
        else:
            out.closed += open_before
        out.outages += [o for o in stored if o.source == source and o not in open_before]
        out.outages += [replace(o, ended_at=now) for o in open_before if current is None]
        if current is not None:
            out.outages.append(current)

        if settings.unpriced_models:
            for u in unpriced_models(db, source, first, today):
                out.alerts.append(unpriced_alert(source, u, settings.recent_days, now))
        spread = attribution_of(user_spend(db, source, first, today), _spending(db, source, Grain.KEY, first, today))
        if spread.concentrated(settings.single_user_share):
            out.alerts.append(attribution_alert(source, spread, settings.recent_days, now))

    for source, route, day, detected_at, before, after in fact_store.revisions_since(db, now - timedelta(days=1)):
        if route == "user" and abs(after - before) > settings.revision_tolerance_usd:
            out.alerts.append(revision_alert(source, day, detected_at, before, after, now))
    return out
