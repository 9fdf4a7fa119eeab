"""Retention and erasure: how long the store keeps what, and how one person's rows leave it.

Three purges, each built as a plan of one ``DELETE ... WHERE`` per table (plus, for an erasure, a
few rows rewritten in place) whose conditions are fixed before anything is deleted:

    purge_policy(db, now, retention)       the [retention] periods (what `sentinel run` does daily)
    purge_before(db, before)               daily facts only: every UTC day before ``before``
    purge_user(db, user_id, pseudonymizer) one user's rows everywhere (a deletion request)

A dry run counts each step with ``SELECT COUNT(*)`` in one read snapshot and deletes nothing. A
real run plans and deletes in one write transaction, and reports the rows each statement really
deleted (``cursor.rowcount``), so the two agree unless the store changed in between.

What the policy never removes: alerts still firing, alerts with a message still waiting
(pending or claimed), waiting messages themselves, budget signals of a window not yet over (a
lifetime budget's included: they stop a threshold from firing twice), and fitted baselines.
"""

from __future__ import annotations

import calendar
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, quote, quote_plus

import sqlite_utils

from sentinel.config import RetentionSettings, parse_retention
from sentinel.errors import PurgeRefused
from sentinel.privacy import IDENTITY, UNASSIGNED, Pseudonymizer
from sentinel.store import read_snapshot, transaction

log = logging.getLogger("sentinel.retention")

FACT_TABLES = ("daily_facts", "days", "intraday_totals")
FINAL_STATES = ("sent", "failed", "silenced", "inhibited")  # an outbox row in any other state is still waiting


# ---------------------------------------------------------------------------------------------- periods
def cutoff(period: str, today: date) -> date:
    """The first UTC day a period of retention keeps: rows of earlier days go.

    "400d" and "8w" count days; "13mo" and "2y" count calendar months, a day that the target
    month lacks becoming its last (2026-03-31 minus 1mo is 2026-02-28).
    """
    count, unit = parse_retention(period)
    if unit in ("d", "w"):
        try:
            return today - timedelta(days=count * (7 if unit == "w" else 1))
        except OverflowError:
            return date.min
    months = count * (12 if unit == "y" else 1)
    index = today.year * 12 + today.month - 1 - months
    if index < 12:  # before year 1: keep everything
        return date.min
    year, month0 = divmod(index, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(today.day, last_day))


@dataclass(frozen=True)
class Cutoffs:
    """The first UTC day each [retention] period keeps, as of one day."""

    daily_facts: date
    audit_log: date
    alerts: date


def cutoffs(retention: RetentionSettings, today: date) -> Cutoffs:
    return Cutoffs(
        cutoff(retention.daily_facts, today), cutoff(retention.audit_log, today), cutoff(retention.alerts, today)
    )


def check_before(before: date, today: date) -> None:
    """``purge --before`` may not reach yesterday: those days are still re-read and alerted on."""
    latest = today - timedelta(days=1)
    if before > latest:
        raise PurgeRefused(
            f"--before {before.isoformat()} is too recent: the latest allowed is {latest.isoformat()} (yesterday), "
            "so that yesterday and today stay (the proxy still revises them, and the alerts read them)"
        )


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Counts:
    """Rows per table that a purge deleted (in a dry run: would delete), and, for an erasure, rows
    kept but rewritten without the user (``updated``: teams' member lists, fitted baselines)."""

    deleted: Mapping[str, int]
    updated: Mapping[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    @property
    def total_updated(self) -> int:
        return sum(self.updated.values())

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "deleted": dict(self.deleted),
            "updated": dict(self.updated),
            "total_deleted": self.total,
            "total_updated": self.total_updated,
        }


# ---------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class _Delete:
    """``DELETE FROM table WHERE where``; the condition reads no other table, so counting it
    first and deleting it later (after other steps) find the same rows."""

    table: str
    where: str
    params: tuple[object, ...] = ()


@dataclass(frozen=True)
class _Update:
    """Rows rewritten in place: ``sql`` is run once per row of ``rows`` (each one changes one row)."""

    table: str
    sql: str
    rows: tuple[tuple[object, ...], ...] = ()


@dataclass(frozen=True)
class _Plan:
    deletes: tuple[_Delete, ...]
    updates: tuple[_Update, ...] = ()


def _in_list(column: str, values: Iterable[object]) -> tuple[str, tuple[object, ...]]:
    """``column IN (values)`` with the values bound as one JSON list (no limit on their number)."""
    return f"{column} IN (SELECT value FROM json_each(?))", (json.dumps(sorted(set(values), key=str)),)


def _budget_statuses(ids: Iterable[str], tokens: Iterable[str]) -> _Delete:
    """The kept evaluation's rows of the user's and their keys' budgets (what the web view shows)."""
    users, user_params = _in_list("entity_id", ids)
    keys, key_params = _in_list("entity_id", tokens)
    where = f"(entity_type = 'user' AND {users}) OR (entity_type = 'key' AND {keys})"
    return _Delete("budget_statuses", where, (*user_params, *key_params))


def _in_pairs(first: str, second: str, pairs: Iterable[tuple[str, str]]) -> tuple[str, tuple[object, ...]]:
    return (
        f"({first}, {second}) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
        (json.dumps(sorted(set(pairs))),),
    )


def _signals(keys: Iterable[tuple[str, str, str]]) -> _Delete:
    """The ``budget_signals`` rows of these (budget_id, period, signal) keys."""
    return _Delete(
        "budget_signals",
        "(budget_id, period, signal) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
        "json_extract(value, '$[2]') FROM json_each(?))",
        (json.dumps(sorted(set(keys))),),
    )


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _before_day(text: str | None, day: date) -> bool:
    """The time ``text`` (ISO, any offset) falls before UTC midnight at the start of ``day``."""
    at = _moment(text)
    return at is not None and at < datetime(day.year, day.month, day.day, tzinfo=UTC)


def _policy_plan(db: sqlite_utils.Database, cut: Cutoffs) -> _Plan:
    facts, audit, kept_from = cut.daily_facts.isoformat(), cut.audit_log.isoformat(), cut.alerts
    conn = db.conn
    waiting = {
        str(fp)
        for (fp,) in conn.execute("SELECT DISTINCT fingerprint FROM outbox WHERE state IN ('pending', 'claimed')")
    }
    known: set[str] = set()
    old_alerts: set[str] = set()
    for fp, status, ends_at, seen_at in conn.execute("SELECT fingerprint, status, ends_at, last_seen_at FROM alerts"):
        known.add(fp)
        if status == "resolved" and fp not in waiting and _before_day(ends_at or seen_at, kept_from):
            old_alerts.add(fp)
    marks = ", ".join("?" * len(FINAL_STATES))
    old_messages = [
        rid
        for rid, fp, created_at in conn.execute(
            f"SELECT id, fingerprint, created_at FROM outbox WHERE state IN ({marks})", FINAL_STATES
        )
        # the messages of the alerts that go, and old ones of alerts no longer kept at all
        if fp in old_alerts or (fp not in known and _before_day(created_at, kept_from))
    ]
    spent_signals = [
        (budget_id, period, signal)
        for budget_id, period, signal in conn.execute("SELECT budget_id, period, signal FROM budget_signals")
        # a window that ended before the cutoff ("lifetime" never ends: its signals stay)
        if period != "lifetime" and _before_day(period, kept_from)
    ]
    alerts_where, alerts_params = _in_list("fingerprint", old_alerts)
    outbox_where, outbox_params = _in_list("id", old_messages)
    day = kept_from.isoformat()
    return _Plan(
        (
            *(_Delete(t, "date < ?", (facts,)) for t in FACT_TABLES),
            # What the data checks learnt about those days goes with them: revisions of a purged
            # day, and outages that ended before the first day kept.
            _Delete("day_revisions", "date < ?", (facts,)),
            _Delete("data_outages", "ended_at IS NOT NULL AND ended_at < ?", (facts,)),
            _Delete("alerts", alerts_where, alerts_params),
            _Delete("outbox", outbox_where, outbox_params),
            # Times are stored as UTC ISO text: an instant before the cutoff day sorts before its date.
            _Delete("delivery_attempts", "at < ?", (day,)),
            _Delete("route_groups", "last_sent_at < ?", (day,)),
            _signals(spent_signals),
            _Delete("digests", "state IN ('sent', 'failed') AND period < ?", (day,)),
            _Delete("audit_log", "at < ?", (audit,)),
        )
    )


def _before_plan(before: date) -> _Plan:
    return _Plan(tuple(_Delete(t, "date < ?", (before.isoformat(),)) for t in FACT_TABLES))


def _budget_names(budget_id: str, kind: str, idents: set[str]) -> bool:
    """The budget id (``proxy/<source>/<kind>/<id>`` or ``rule/<name>/<kind>/<id>``; only teams'
    extra windows carry a ``/limits/<i>`` suffix) is a budget of one of ``idents`` of ``kind``."""
    origin, _, rest = budget_id.partition("/")
    _owner, _, rest = rest.partition("/")  # the source, or the rule's name: neither holds a "/"
    found_kind, _, ident = rest.partition("/")
    return origin in ("proxy", "rule") and found_kind == kind and ident in idents


def _labels_name(labels: object, users: set[str], keys: set[str]) -> bool:
    if not isinstance(labels, dict):
        return False
    kind, ident = labels.get("entity_type"), labels.get("entity_id")
    return (kind == "user" and ident in users) or (kind == "key" and ident in keys)


def _query_names(query: str, ids: set[str]) -> bool:
    """A request's query string has one of ``ids`` as a parameter value (or an item of a
    comma-separated one)."""
    for _name, value in parse_qsl(query, keep_blank_values=True):
        if value in ids or any(part in ids for part in value.split(",")):
            return True
    return False


def _user_plan(db: sqlite_utils.Database, ids: set[str]) -> _Plan:
    conn = db.conn
    users_where, users_params = _in_list("user_id", ids)
    key_pairs = {
        (str(s), str(t)) for s, t in conn.execute(f"SELECT source, token FROM keys WHERE {users_where}", users_params)
    }
    tokens = {t for _s, t in key_pairs}
    # Facts: the user's own, their keys', and their keys' per-model rows.
    user_facts, user_params = _in_list("entity_id", ids)
    key_facts, key_params = _in_pairs("source", "entity_id", key_pairs)
    model_key_facts, model_key_params = _in_pairs("source", "detail_id", key_pairs)
    facts = _Delete(
        "daily_facts",
        f"(grain = 'user' AND {user_facts}) OR (grain = 'key' AND {key_facts}) "
        f"OR (grain = 'model_key' AND {model_key_facts})",
        (*user_params, *key_params, *model_key_params),
    )
    # Alerts about the user or their keys, every message about them (by fingerprint, or by the
    # labels of the alert as sent), and the route groups named after them.
    alerts = {
        str(fp)
        for fp, labels in conn.execute("SELECT fingerprint, labels FROM alerts")
        if _labels_name(json.loads(labels), ids, tokens)
    }
    naming = ids | tokens
    messages: set[int] = set()
    groups: set[tuple[str, str]] = set()
    for rid, fp, alert, receiver, group_key, group_labels in conn.execute(
        "SELECT id, fingerprint, alert, receiver, group_key, group_labels FROM outbox"
    ):
        if fp in alerts or _labels_name(json.loads(alert).get("labels"), ids, tokens):
            messages.add(int(rid))
        if any(value in naming for value in json.loads(group_labels).values()):
            groups.add((str(receiver), str(group_key)))
    attempts = []
    for aid, receiver, group_key, outbox_ids in conn.execute(
        "SELECT id, receiver, group_key, outbox_ids FROM delivery_attempts"
    ):
        sent = set(json.loads(outbox_ids))
        if (receiver, group_key) in groups or (sent and sent <= messages):
            attempts.append(int(aid))
    signals = [
        (b, p, s)
        for b, p, s in conn.execute("SELECT budget_id, period, signal FROM budget_signals")
        if _budget_names(b, "user", ids) or _budget_names(b, "key", tokens)
    ]
    # Audit rows of requests that named the user: found by the id as written in a query string.
    needles = sorted({n for i in ids for n in (i, quote_plus(i, safe=","), quote(i, safe=","))})
    audit_where = " OR ".join("instr(query, ?) > 0" for _ in needles)
    audit = [
        int(aid)
        for aid, query in conn.execute(f"SELECT id, query FROM audit_log WHERE {audit_where}", needles)
        if _query_names(str(query), ids)
    ]
    # Rows that stay, rewritten without the user: team member and admin lists, fitted baselines.
    team_rows = []
    for source, team, members, admins in conn.execute("SELECT source, team_id, members, admins FROM teams"):
        had_members, had_admins = json.loads(members), json.loads(admins)
        kept_members = [m for m in had_members if m not in ids]
        kept_admins = [a for a in had_admins if a not in ids]
        if kept_members != had_members or kept_admins != had_admins:
            team_rows.append((json.dumps(kept_members), json.dumps(kept_admins), source, team))
    baseline_rows = []
    for source, kind, params in conn.execute(
        "SELECT source, kind, params FROM baselines WHERE kind IN ('user', 'key')"
    ):
        doc = json.loads(params)
        series = doc.get("series")
        gone = ids if kind == "user" else tokens
        if isinstance(series, dict) and gone.intersection(series):
            doc["series"] = {e: v for e, v in series.items() if e not in gone}
            baseline_rows.append((json.dumps(doc, separators=(",", ":")), source, kind))
    return _Plan(
        (
            facts,
            _Delete("users", users_where, users_params),
            _Delete("keys", users_where, users_params),
            _Delete("alerts", *_in_list("fingerprint", alerts)),
            _Delete("outbox", *_in_list("id", messages)),
            _Delete("delivery_attempts", *_in_list("id", attempts)),
            _Delete("route_groups", *_in_pairs("receiver", "group_key", groups)),
            _signals(signals),
            _Delete("audit_log", *_in_list("id", audit)),
            _budget_statuses(ids, tokens),
        ),
        (
            _Update(
                "teams", "UPDATE teams SET members = ?, admins = ? WHERE source = ? AND team_id = ?", tuple(team_rows)
            ),
            _Update("baselines", "UPDATE baselines SET params = ? WHERE source = ? AND kind = ?", tuple(baseline_rows)),
        ),
    )


# ---------------------------------------------------------------------------------------------- running
def _count(db: sqlite_utils.Database, plan: _Plan) -> Counts:
    deleted = {
        d.table: int(db.conn.execute(f"SELECT COUNT(*) FROM {d.table} WHERE {d.where}", d.params).fetchone()[0])
        for d in plan.deletes
    }
    return Counts(deleted, {u.table: len(u.rows) for u in plan.updates}, dry_run=True)


def _apply(db: sqlite_utils.Database, plan: _Plan) -> Counts:
    deleted = {
        d.table: db.conn.execute(f"DELETE FROM {d.table} WHERE {d.where}", d.params).rowcount for d in plan.deletes
    }
    updated = {u.table: (db.conn.executemany(u.sql, u.rows).rowcount if u.rows else 0) for u in plan.updates}
    return Counts(deleted, updated, dry_run=False)


def _run(db: sqlite_utils.Database, build: Callable[[], _Plan], dry_run: bool) -> Counts:
    if dry_run:
        with read_snapshot(db):
            return _count(db, build())
    with transaction(db):
        return _apply(db, build())


def purge_policy(
    db: sqlite_utils.Database, now: datetime, retention: RetentionSettings, *, dry_run: bool = False
) -> Counts:
    """Delete what the [retention] periods no longer keep, as of ``now``.

    Daily facts, the days read and intraday totals of UTC days before the ``daily_facts`` cutoff;
    audit rows before the ``audit_log`` cutoff; before the ``alerts`` cutoff: alerts resolved then
    (unless a message about them is still waiting) with their delivered, failed or muted messages,
    delivery attempts, route-group times, finished digests, and the signals of budget windows that
    ended then.
    """
    cut = cutoffs(retention, now.astimezone(UTC).date())
    return _run(db, lambda: _policy_plan(db, cut), dry_run)


def purge_before(db: sqlite_utils.Database, before: date, *, dry_run: bool = False) -> Counts:
    """Delete the daily facts, days read and intraday totals of every UTC day before ``before``
    (``before`` itself is kept). Check the day first with :func:`check_before`."""
    return _run(db, lambda: _before_plan(before), dry_run)


def user_ids(user_id: str, pseudonymizer: Pseudonymizer = IDENTITY) -> set[str]:
    """The ids one user can be stored under: as given, and as its pseudonym."""
    ident = user_id.strip()
    if ident in UNASSIGNED:
        raise PurgeRefused(
            f"{user_id!r} is not a user: it is the bucket of keys that have no user; purge their keys' owners instead"
        )
    return {ident, pseudonymizer.user(ident)}


def purge_user(
    db: sqlite_utils.Database, user_id: str, *, dry_run: bool = False, pseudonymizer: Pseudonymizer = IDENTITY
) -> Counts:
    """Erase one user (a deletion request), matched by the id as given and by its pseudonym.

    Deleted: the user's daily facts (grain ``user``); their ``users`` rows; the keys they own
    (``keys`` rows with their ``user_id``) with those keys' facts (grain ``key``, and ``model_key``
    rows of the key); alerts about the user or one of those keys (``entity_type``/``entity_id``
    labels) with every outbox message about them, the delivery attempts of only those messages or
    of a route group named after the user or a key, and those route groups; the signals of the
    user's and the keys' budgets, and their rows of the kept budget evaluation; audit rows of
    requests whose query string named the user.
    Rewritten: teams (the user leaves ``members`` and ``admins``) and fitted user and key
    baselines (the user's and keys' series go; the rest is kept).

    A real run deletes with ``secure_delete`` on and then checkpoints the WAL, so the erased rows
    are not left readable in free pages or in the write-ahead log.
    """
    ids = user_ids(user_id, pseudonymizer)
    if dry_run:
        return _run(db, lambda: _user_plan(db, ids), True)
    previous = db.conn.execute("PRAGMA secure_delete").fetchone()[0]
    db.conn.execute("PRAGMA secure_delete = ON")
    try:
        counts = _run(db, lambda: _user_plan(db, ids), False)
    finally:
        db.conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    busy, _frames, _done = db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("purge --user: another connection is reading the store; the WAL is checkpointed once it is done")
    return counts
