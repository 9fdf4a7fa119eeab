"""Polling and backfill: read a proxy's daily activity and replace it in the store, day by day.

Each chunk of days is read completely (user route, then team route) before one transaction
replaces those days and, for a backfill, advances the checkpoint. A crash or Ctrl-C therefore
loses at most the chunk in flight, and a restart resumes after the last committed chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlite_utils

from sentinel import logs
from sentinel.clock import is_final, utc_today
from sentinel.config import SourceSettings, SyncSettings
from sentinel.egress import AuditRecord, proxy_client
from sentinel.errors import SourceError
from sentinel.models import TEAM_ROUTE_GRAINS, USER_ROUTE_GRAINS, Grain
from sentinel.privacy import IDENTITY, Pseudonymizer, check_store
from sentinel.source.litellm import ClientPolicy, LiteLLMClient
from sentinel.store import entities as entity_store
from sentinel.store import facts as fact_store
from sentinel.store import state as state_store
from sentinel.store import transaction

log = logging.getLogger(__name__)

# Called after each chunk: (days done, days in all, days in this chunk, seconds it took)
Progress = Callable[[int, int, int, float], None]


@dataclass(frozen=True, slots=True)
class SyncResult:
    source: str
    mode: str  # "poll" or "backfill"
    start: date | None
    end: date | None
    days: int
    rows: int
    calls: int
    bytes: int
    seconds: float
    error: str | None = None


class _Meter:
    """Calls, bytes and time spent by one poll or backfill."""

    def __init__(self, client: LiteLLMClient) -> None:
        self.client = client
        self.began = time.monotonic()
        self.calls0, self.bytes0 = client.stats.calls, client.stats.bytes

    def result(self, mode: str, start: date, end: date, days: int, rows: int) -> SyncResult:
        stats = self.client.stats
        return SyncResult(
            self.client.name,
            mode,
            start,
            end,
            days,
            rows,
            stats.calls - self.calls0,
            stats.bytes - self.bytes0,
            time.monotonic() - self.began,
        )


def open_client(
    src: SourceSettings,
    sync: SyncSettings,
    db: sqlite_utils.Database,
    environ: dict[str, str] | None = None,
    *,
    privacy: Pseudonymizer = IDENTITY,
) -> LiteLLMClient:
    """The read-only client for one configured source, auditing every call into the store.
    ``privacy`` is applied to what it reads before anything is stored."""
    key = src.api_key(environ)
    logs.register_secret(key.get_secret_value())
    verify: bool | str = str(src.ca_bundle) if src.ca_bundle else src.verify_tls
    audit_lock = threading.Lock()  # pages are prefetched from worker threads

    def audit(record: AuditRecord) -> None:
        with audit_lock:
            state_store.record_audit(db, record)

    http = proxy_client(
        source=src.name,
        base_url=src.url,
        api_key=key.get_secret_value(),
        audit=audit,
        timeout_s=src.timeout_s,
        verify=verify,
    )
    client = LiteLLMClient(src.name, http, policy_from(sync))
    client.privacy = privacy
    return client


def policy_from(sync: SyncSettings) -> ClientPolicy:
    return ClientPolicy(
        prefer_aggregated=sync.prefer_aggregated,
        page_size=sync.page_size,
        api_key_limit=sync.api_key_limit,
        max_attempts=sync.max_attempts,
        retry_initial_s=sync.retry_initial_s,
        retry_max_s=sync.retry_max_s,
    )


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def sync_range(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    start: date,
    end: date,
    now: datetime,
    settings: SyncSettings,
    *,
    on_commit: Callable[[], None] | None = None,
) -> tuple[int, int, int]:
    """Read start..end from both routes, then replace those days in one transaction.

    Returns (rows written, API calls, bytes read).
    """
    settle = timedelta(minutes=settings.settle_minutes)
    days = _days(start, end)
    unsettled = frozenset(d for d in days if not is_final(d, now, settle))
    user = client.privacy.activity(client.daily_activity("user", start, end, unsettled=unsettled))
    team = client.privacy.activity(client.daily_activity("team", start, end, unsettled=unsettled))
    final = frozenset(days) - unsettled
    with transaction(db):
        rows = fact_store.replace_days(db, client.name, "user", USER_ROUTE_GRAINS, user, final=final, fetched_at=now)
        rows += fact_store.replace_days(db, client.name, "team", TEAM_ROUTE_GRAINS, team, final=final, fetched_at=now)
        entity_store.note_key_refs(db, client.name, user.keys, now)
        entity_store.note_aliases(db, client.name, "users", user.aliases, now)
        entity_store.note_aliases(db, client.name, "teams", team.aliases, now)
        today = utc_today(now)
        if start <= today <= end:
            fact_store.record_intraday(db, client.name, today, now)
        if on_commit is not None:
            on_commit()
    return rows, user.calls + team.calls, user.bytes_read + team.bytes_read


def sync_entities(db: sqlite_utils.Database, client: LiteLLMClient, now: datetime) -> None:
    """Users, teams and keys with their budgets (the proxy's current-window counters)."""
    privacy = client.privacy
    users, teams, keys = privacy.users(client.users()), privacy.teams(client.teams()), privacy.keys(client.keys())
    with transaction(db):
        entity_store.upsert_users(db, client.name, users, now)
        entity_store.upsert_teams(db, client.name, teams, now)
        entity_store.upsert_keys(db, client.name, keys, now)
        state_store.mark_entities_synced(db, client.name, now)


def entities_due(db: sqlite_utils.Database, source: str, settings: SyncSettings, now: datetime) -> bool:
    if not settings.sync_entities:
        return False
    last = state_store.get_state(db, source).entities_synced_at
    if last is None:
        return True
    return now - datetime.fromisoformat(last) >= timedelta(minutes=settings.entities_every_minutes)


def next_chunk_days(days: int, body_bytes: int, settings: SyncSettings) -> int:
    """Size the next chunk so one answer stays near the target size (bodies grow with users x keys)."""
    target = settings.target_response_mb * 1_000_000
    if body_bytes <= 0:
        return min(settings.max_chunk_days, days * 2)
    scaled = int(days * target / body_bytes)
    return max(1, min(settings.max_chunk_days, days * 2, scaled))


def _run_chunks(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    start: date,
    end: date,
    now: datetime,
    settings: SyncSettings,
    *,
    on_chunk_commit: Callable[[date], None] | None = None,
    progress: Progress | None = None,
    total_days: int | None = None,
    done_before: int = 0,
) -> tuple[int, int, int]:
    rows = calls = size = 0
    chunk = settings.backfill_chunk_days
    day = start
    done = done_before
    total = total_days if total_days is not None else (end - start).days + 1
    while day <= end:
        last = min(day + timedelta(days=chunk - 1), end)
        began = time.monotonic()
        commit = (lambda last=last: on_chunk_commit(last)) if on_chunk_commit else None
        r, c, b = sync_range(db, client, day, last, now, settings, on_commit=commit)
        rows, calls, size = rows + r, calls + c, size + b
        n = (last - day).days + 1
        done += n
        if progress is not None:
            progress(done, total, n, time.monotonic() - began)
        chunk = next_chunk_days(n, b, settings)
        day = last + timedelta(days=1)
    return rows, calls, size


def poll(db: sqlite_utils.Database, client: LiteLLMClient, settings: SyncSettings, now: datetime) -> SyncResult:
    """Re-read the trailing days (they still change) and catch up any gap since the last stored day."""
    meter = _Meter(client)
    today = utc_today(now)
    start = today - timedelta(days=settings.trailing_days - 1)
    stored = [(date.fromisoformat(d), final) for d, final in fact_store.stored_days(db, client.name)]
    if stored:
        # Fill the gap since the last stored day, and re-read any older day not yet final.
        after_last = max(d for d, _ in stored) + timedelta(days=1)
        not_final = [d for d, final in stored if not final]
        start = min([start, after_last, *not_final])
    rows = 0
    for lo, hi in _ranges_to_reread(db, client, start, today, now, settings):
        rows += _run_chunks(db, client, lo, hi, now, settings)[0]
    if entities_due(db, client.name, settings, now):
        sync_entities(db, client, now)
    with transaction(db):
        state_store.mark_success(db, client.name, now)
    return meter.result("poll", start, today, (today - start).days + 1, rows)


def _ranges_to_reread(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    start: date,
    end: date,
    now: datetime,
    settings: SyncSettings,
) -> list[tuple[date, date]]:
    """The runs of days a poll must read in full.

    On a proxy whose per-key detail only the paginated route gives completely (more keys than
    api_key_limit), a full re-read costs several calls a day. Days that are settled and already
    stored are first checked against one small aggregated call: the proxy's counters only grow,
    so a day whose totals are unchanged has nothing new, and only changed days are read again.
    """
    whole = [(start, end)]
    if not client.reads_keys_by_page:
        return whole
    settle = timedelta(minutes=settings.settle_minutes)
    stored = fact_store.facts_for(db, client.name, Grain.TOTAL, start, end)
    settled = [d for d in _days(start, end) if is_final(d, now, settle) and (d.isoformat(), "", "") in stored]
    if not settled:
        return whole
    live = client.day_totals(settled[0], settled[-1])
    if live is None:
        return whole
    unchanged = {d for d in settled if _same_counters(live.get(d), stored[(d.isoformat(), "", "")])}
    if unchanged:
        with transaction(db):
            fact_store.mark_final(db, client.name, sorted(unchanged))
    runs: list[tuple[date, date]] = []
    for day in _days(start, end):
        if day in unchanged:
            continue
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _same_counters(live: tuple[float, ...] | None, stored: tuple[float, ...]) -> bool:
    if live is None:
        return stored[0] == 0 and stored[5] == 0  # nothing then, nothing now
    return abs(live[0] - stored[0]) <= 1e-9 and tuple(live[1:]) == tuple(float(x) for x in stored[1:])


def backfill(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    settings: SyncSettings,
    since: date,
    now: datetime,
    progress: Progress | None = None,
) -> SyncResult:
    """Read every day from ``since`` to today, resuming after the last committed chunk."""
    meter = _Meter(client)
    today = utc_today(now)
    if since > today:
        since = today
    state = state_store.get_state(db, client.name)
    start = since
    if state.backfill_since == since.isoformat() and state.backfill_done_at is None and state.backfill_cursor:
        start = date.fromisoformat(state.backfill_cursor) + timedelta(days=1)
        log.info("source %s: resuming backfill from %s (checkpoint)", client.name, start)
    else:
        with transaction(db):
            state_store.start_backfill(db, client.name, since, today)
    total = (today - since).days + 1
    rows = 0
    if start <= today:
        rows, _, _ = _run_chunks(
            db,
            client,
            start,
            today,
            now,
            settings,
            on_chunk_commit=lambda last: state_store.advance_backfill(db, client.name, last),
            progress=progress,
            total_days=total,
            done_before=(start - since).days,
        )
    if settings.sync_entities:
        sync_entities(db, client, now)
    with transaction(db):
        state_store.finish_backfill(db, client.name, now)
        state_store.mark_success(db, client.name, now)
    return meter.result("backfill", since, today, total, rows)


def sync_source(
    db: sqlite_utils.Database,
    client: LiteLLMClient,
    settings: SyncSettings,
    now: datetime,
    *,
    since: date | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Poll or backfill one source; a proxy error is recorded in its sync state and returned, not raised."""
    client.restore_capabilities(state_store.get_capabilities(db, client.name))
    check_store(db, client.privacy, now)
    try:
        if since is None:
            return poll(db, client, settings, now)
        return backfill(db, client, settings, since, now, progress)
    except SourceError as exc:
        with transaction(db):
            state_store.mark_error(db, client.name, now, str(exc))
        log.error("%s", exc)
        return SyncResult(
            client.name,
            "backfill" if since else "poll",
            since,
            None,
            0,
            0,
            client.stats.calls,
            client.stats.bytes,
            0.0,
            error=str(exc),
        )
    finally:
        with transaction(db):
            state_store.set_capabilities(db, client.name, client.capabilities())
