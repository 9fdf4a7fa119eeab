"""The weekly digest end to end, on a store synced from the simulator over HTTP: numbers against SQL
sums over the store, schedule math, once-per-period delivery across runs and a killed sender, the
email parsed back from a real SMTP server (aiosmtpd) on 127.0.0.1, a team's digest, the Slack
summary against a local fake Slack, and the preview file."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import io
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from fakeslack import FakeSlack
from matplotlib import image as mpimage
from simhelp import small_model

from sentinel.cli import main
from sentinel.config import Settings, SourceSettings, SyncSettings
from sentinel.digest import charts, data, render, schedule
from sentinel.digest.build import Digest, Inputs, build
from sentinel.digest.send import LATE_LIMIT, MAX_ATTEMPTS, send_due, send_now
from sentinel.errors import ConfigError
from sentinel.models import Grain
from sentinel.notify.model import Alert
from sentinel.notify.render import money
from sentinel.simulator import SimulatorServer
from sentinel.store import alerts as alert_store
from sentinel.store import open_store, transaction
from sentinel.sync import backfill, open_client

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, an hour after the default schedule (09:00 UTC)
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PERIOD = "2026-11-23T09:00:00+00:00"
START, END = date(2026, 11, 16), date(2026, 11, 22)
PREV_START, PREV_END = date(2026, 11, 9), date(2026, 11, 15)
PNG = b"\x89PNG\r\n\x1a\n"
HOOK_PATH = "/services/T0001/B0002/digestHookSecret"


# ------------------------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """84 days of simulated traffic for 16 users in 3 teams, synced over HTTP into a store (once)."""
    path = tmp_path_factory.mktemp("digest") / "synced.db"
    model = small_model(days=84, users=16, seed=5, now=NOW)
    db = open_store(path)
    with SimulatorServer(model, api_key="sk-digest-test").running() as url:
        source = SourceSettings(name="sim", url=url, api_key_env="SIM_KEY")
        with open_client(source, SyncSettings(), db, environ={"SIM_KEY": "sk-digest-test"}) as client:
            result = backfill(db, client, SyncSettings(), NOW.date() - timedelta(days=83), NOW)
    assert result.error is None
    db.conn.close()
    return path


@pytest.fixture(scope="module")
def inputs(synced: Path) -> Inputs:
    """The period's inputs read once from the synced store (tests that only read share them)."""
    return data.read(open_store(synced), DUE, NOW)


@pytest.fixture(scope="module")
def whole(inputs: Inputs) -> Digest:
    return build(inputs)


@pytest.fixture
def store_path(synced: Path, tmp_path: Path) -> Path:
    """A private copy of the synced store for one test."""
    target = tmp_path / "sentinel.db"
    with sqlite3.connect(synced) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def sql_sum(db: sqlite_utils.Database, grain: Grain, start: date, end: date, entity: str | None = None) -> float:
    where = " AND entity_id = ?" if entity is not None else ""
    params = [grain.value, start.isoformat(), end.isoformat(), *([entity] if entity is not None else [])]
    row = db.conn.execute(
        f"SELECT COALESCE(SUM(spend), 0) FROM daily_facts WHERE grain = ? AND date BETWEEN ? AND ?{where}", params
    ).fetchone()
    return float(row[0])


def sql_by_entity(db: sqlite_utils.Database, grain: Grain, start: date, end: date) -> dict[str, float]:
    rows = db.conn.execute(
        "SELECT entity_id, SUM(spend) FROM daily_facts WHERE grain = ? AND date BETWEEN ? AND ? GROUP BY entity_id",
        (grain.value, start.isoformat(), end.isoformat()),
    )
    return {str(e): float(s) for e, s in rows}


def teams_of(db: sqlite_utils.Database) -> dict[str, str]:
    return {str(t): str(a) for t, a in db.conn.execute("SELECT team_id, alias FROM teams")}


def digest_rows(path: Path) -> list[tuple[str, str, str, str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT period, audience, receiver, state, attempts FROM digests ORDER BY period, audience, receiver"
        ).fetchall()


# ------------------------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    hold: bool = False  # keep the next DATA waiting (a sender killed mid-send)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold:
            self.entered.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
            return "451 4.3.0 the sender went away"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@dataclass
class Smtp:
    inbox: Inbox
    port: int


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield Smtp(inbox, port)
    inbox.release.set()
    controller.stop()


def settings_for(
    smtp_port: int | None = None,
    *,
    slack: bool = False,
    teams: dict[str, list[str]] | None = None,
    timeout_s: float = 10,
) -> Settings:
    receivers: list[dict[str, Any]] = []
    if smtp_port is not None:
        receivers.append(
            {
                "type": "email",
                "name": "mail",
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from_addr": "Sentinel <sentinel@example.com>",
                "to": ["finops@example.com"],
                "timeout_s": timeout_s,
            }
        )
    if slack:
        receivers.append({"type": "slack", "name": "slack", "webhook_url_env": "DIGEST_HOOK", "timeout_s": 5})
    names = [str(r["name"]) for r in receivers]
    return Settings(receivers=tuple(receivers), digest={"receivers": names, "team_recipients": teams or {}})


def config_file(tmp_path: Path, smtp_port: int, timeout_s: float = 10) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[[receivers]]\n"
        'type = "email"\nname = "mail"\nhost = "127.0.0.1"\n'
        f'port = {smtp_port}\nsecurity = "none"\nfrom_addr = "sentinel@example.com"\nto = ["finops@example.com"]\n'
        f"timeout_s = {timeout_s}\n"
        '[digest]\nreceivers = ["mail"]\n'
    )
    return path


# ------------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize(
    ("cron", "zone", "now", "last", "following"),
    [
        # the default: Mondays 09:00 UTC; a moment exactly at the schedule is due at that moment
        ("0 9 * * 1", "UTC", "2026-11-25T12:00Z", "2026-11-23T09:00Z", "2026-11-30T09:00Z"),
        ("0 9 * * 1", "UTC", "2026-11-23T09:00Z", "2026-11-23T09:00Z", "2026-11-30T09:00Z"),
        ("0 9 * * 1", "UTC", "2026-11-23T08:59:59.9Z", "2026-11-16T09:00Z", "2026-11-23T09:00Z"),
        # Berlin: 08:00 UTC in winter, 07:00 UTC once summer time starts (2026-03-29)
        ("0 9 * * 1", "Europe/Berlin", "2026-03-28T00:00Z", "2026-03-23T08:00Z", "2026-03-30T07:00Z"),
        # New York, spring forward (2026-03-08 02:00 -> 03:00): 02:30 does not exist, it runs at 03:00 EDT
        ("30 2 * * *", "America/New_York", "2026-03-08T05:00Z", "2026-03-07T07:30Z", "2026-03-08T07:00Z"),
        ("30 2 * * *", "America/New_York", "2026-03-08T12:00Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z"),
        # New York, fall back (2026-11-01 02:00 -> 01:00): 01:30 happens twice and runs once, the first time
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"),
        ("30 1 * * *", "America/New_York", "2026-11-01T06:45Z", "2026-11-01T05:30Z", "2026-11-02T06:30Z"),
        # Tokyo: Monday 09:00 is Monday 00:00 UTC; Auckland (NZDT, UTC+13): Sunday 20:00 UTC
        ("0 9 * * 1", "Asia/Tokyo", "2026-11-25T00:00Z", "2026-11-23T00:00Z", "2026-11-30T00:00Z"),
        ("0 9 * * 1", "Pacific/Auckland", "2026-11-25T00:00Z", "2026-11-22T20:00Z", "2026-11-29T20:00Z"),
        # Kolkata's half hour, and the first of the month
        ("0 8 1 * *", "Asia/Kolkata", "2026-11-15T00:00Z", "2026-11-01T02:30Z", "2026-12-01T02:30Z"),
    ],
)
def test_schedule_last_and_next_due(cron: str, zone: str, now: str, last: str, following: str) -> None:
    sched = schedule.parse(cron, zone)
    moment = datetime.fromisoformat(now)
    assert schedule.last_due(sched, moment) == datetime.fromisoformat(last)
    assert schedule.next_due(sched, moment) == datetime.fromisoformat(following)
    assert schedule.last_due(sched, moment).tzinfo is UTC


@pytest.mark.parametrize(
    ("due", "first", "last"),
    [
        ("2026-11-23T09:00Z", "2026-11-16", "2026-11-22"),  # Monday 09:00 UTC: the Monday-to-Sunday before
        ("2026-11-22T20:00Z", "2026-11-15", "2026-11-21"),  # Auckland's Monday morning is Sunday in UTC
        ("2026-11-23T00:00Z", "2026-11-16", "2026-11-22"),  # midnight: the day just ended is included
    ],
)
def test_a_period_is_the_seven_utc_days_before_the_scheduled_time(due: str, first: str, last: str) -> None:
    moment = datetime.fromisoformat(due)
    assert schedule.period_of(moment) == (date.fromisoformat(first), date.fromisoformat(last))
    assert schedule.period_key(moment) == moment.astimezone(UTC).isoformat()


@pytest.mark.parametrize(("cron", "zone"), [("61 9 * * 1", "UTC"), ("0 9 * *", "UTC"), ("0 9 * * 1", "Mars/Base")])
def test_a_bad_schedule_is_a_config_error(cron: str, zone: str) -> None:
    with pytest.raises(ConfigError, match="digest"):
        schedule.parse(cron, zone)


# --------------------------------------------------------------------------------------------- build
def test_digest_numbers_equal_sums_over_the_store(synced: Path, inputs: Inputs, whole: Digest) -> None:
    db = open_store(synced)
    d = whole
    assert (d.period_start, d.period_end, d.audience) == (START, END, "all")
    total, previous = sql_sum(db, Grain.TOTAL, START, END), sql_sum(db, Grain.TOTAL, PREV_START, PREV_END)
    assert total > 0 and previous > 0
    assert d.total == pytest.approx(total, abs=1e-9) and d.previous_total == pytest.approx(previous, abs=1e-9)
    assert d.change == pytest.approx(total - previous) and d.change_pct == pytest.approx(100 * (total / previous - 1))
    # By provider and by team: each row is the SQL sum of its grain, both weeks.
    providers = sql_by_entity(db, Grain.PROVIDER, START, END)
    assert {s.id: s.spend for s in d.by_provider} == pytest.approx(providers)
    assert sum(s.spend for s in d.by_provider) == pytest.approx(total)
    teams, names = sql_by_entity(db, Grain.TEAM, START, END), teams_of(db)
    shown = {s.id: s for s in d.by_group}
    for team, spend in teams.items():
        assert shown[team].spend == pytest.approx(spend) and shown[team].name == names[team]
        assert shown[team].previous == pytest.approx(sql_sum(db, Grain.TEAM, PREV_START, PREV_END, team))
    assert sum(s.spend for s in d.by_group) == pytest.approx(total)  # with "(no team)" for keys without one
    # Movers: the largest dollar changes from the week before, recomputed from SQL.
    aliases = {"user": "users", "key": "keys"}
    for kind, movers in d.movers:
        grain = {"user": Grain.USER, "model": Grain.MODEL, "key": Grain.KEY}[kind]
        now_, before = sql_by_entity(db, grain, START, END), sql_by_entity(db, grain, PREV_START, PREV_END)
        change = {e: now_.get(e, 0.0) - before.get(e, 0.0) for e in set(now_) | set(before)}
        expected = sorted(change, key=lambda e: -abs(change[e]))[:5]
        assert [m.id for m in movers] == expected, kind
        for m in movers:
            assert m.change == pytest.approx(change[m.id]) and m.spend == pytest.approx(now_.get(m.id, 0.0))
            if kind in aliases:
                alias = db.conn.execute(
                    f"SELECT alias FROM {aliases[kind]} WHERE {'user_id' if kind == 'user' else 'token'} = ?", (m.id,)
                ).fetchone()
                assert alias is None or alias[0] is None or m.name == alias[0]
    # Spend per day over 8 weeks, each day the store's total; the band brackets the expectation.
    per_day = dict(
        db.conn.execute(
            "SELECT date, SUM(spend) FROM daily_facts WHERE grain = 'total' AND date BETWEEN ? AND ? GROUP BY date",
            ((END - timedelta(days=55)).isoformat(), END.isoformat()),
        ).fetchall()
    )
    assert len(d.days) == 56 and d.days[-1].day == END and d.days[0].day == END - timedelta(days=55)
    for p in d.days:
        assert p.spend == pytest.approx(per_day.get(p.day.isoformat(), 0.0))
        if p.expected is not None:
            assert p.lower is not None and p.upper is not None and p.lower <= p.expected <= p.upper
    assert all(p.expected is not None for p in d.week)  # 10 weeks of history: every day of the week has a baseline
    assert [p.day for p in d.week] == [START + timedelta(days=i) for i in range(7)]
    # Every budget, worst first.
    assert len(d.budgets) == len(inputs.budgets) > 0
    order = {"exceeded": 0, "at_risk": 1, "soft_exceeded": 2, "ok": 3}
    assert [order[b.state] for b in d.budgets] == sorted(order[b.state] for b in d.budgets)
    for b in d.budgets:
        if b.limit:
            assert b.pct_used == pytest.approx(100 * b.spent / b.limit)


def test_anomalies_carry_episode_state_impact_and_the_alert(store_path: Path, whole: Digest) -> None:
    db = open_store(store_path)
    d = whole
    assert d.anomalies, "the simulator injects anomalies; some overlap the week"
    for a in d.anomalies:
        assert a.last_seen >= START and a.onset <= END and a.state in ("ongoing", "ended")
        assert a.found_by == "detection" and a.alert is None
    first = d.anomalies[0]
    labels = {"kind": "anomaly", "entity_type": first.entity_type, "entity_id": first.entity_id}
    firing = Alert(
        fingerprint="fp-1",
        status="firing",
        rule="spend-anomaly",
        severity="warning",
        summary="spend up",
        labels={**labels, "direction": first.direction},
        starts_at=datetime(2026, 11, 20, 6, tzinfo=UTC),
    )
    # An alert a more sensitive rule raised for something default detection did not flag.
    other = Alert(
        fingerprint="fp-2",
        status="resolved",
        rule="spend-anomaly",
        severity="warning",
        summary="model spend up",
        labels={"kind": "anomaly", "entity_type": "model", "entity_id": "openai/made-up", "direction": "up"},
        starts_at=datetime(2026, 11, 18, 6, tzinfo=UTC),
        ends_at=datetime(2026, 11, 19, 6, tzinfo=UTC),
        record={"date": "2026-11-17", "observed": 30.0, "expected": 10.0, "impact_usd": 20.0},
    )
    with transaction(db):
        alert_store.save(db, [firing, other], NOW)
    again = build(data.read(db, DUE, NOW))
    by_entity = {(a.entity_type, a.entity_id): a for a in again.anomalies}
    assert by_entity[(first.entity_type, first.entity_id)].alert == "firing"
    extra = by_entity[("model", "openai/made-up")]
    assert (extra.found_by, extra.alert, extra.state, extra.impact_usd) == ("alert", "resolved", "ended", 20.0)
    assert "openai/made-up" in render.text(again) and "alert resolved" in render.text(again)


def test_a_team_digest_holds_only_that_team(synced: Path, inputs: Inputs, whole: Digest) -> None:
    db = open_store(synced)
    names = teams_of(db)
    team = max(names, key=lambda t: sql_sum(db, Grain.TEAM, START, END, t))
    d = build(inputs, team)
    members = set(json.loads(db.conn.execute("SELECT members FROM teams WHERE team_id = ?", (team,)).fetchone()[0]))
    keys = {str(k) for (k,) in db.conn.execute("SELECT token FROM keys WHERE team_id = ?", (team,))}
    owners = {
        str(u)
        for (u,) in db.conn.execute("SELECT user_id FROM keys WHERE team_id = ? AND user_id IS NOT NULL", (team,))
    }
    assert d.audience == f"team:{team}" and d.title == f"Team {names[team]}"
    assert d.total == pytest.approx(sql_sum(db, Grain.TEAM, START, END, team))
    assert d.previous_total == pytest.approx(sql_sum(db, Grain.TEAM, PREV_START, PREV_END, team))
    users = {s.id for s in d.by_group if s.id} | {m.id for k, ms in d.movers if k == "user" for m in ms}
    assert users and users <= owners | {"(no user)"}
    assert all(m.id in keys for k, ms in d.movers if k == "key" for m in ms)
    for b in d.budgets:
        assert b.entity_id in {"team": {team}, "user": members, "key": keys}[b.entity_type]
    for a in d.anomalies:
        assert a.entity_id in {"team": {team}, "user": members | owners, "key": keys}[a.entity_type]
    per_day = {p.day: p.spend for p in d.days}
    assert per_day[END] == pytest.approx(sql_sum(db, Grain.TEAM, END, END, team))
    # No other team is named anywhere in it (the whole-proxy digest names them all).
    body, everything = render.text(d), render.text(whole)
    for other, alias in names.items():
        if other != team:
            assert alias not in body and alias in everything


def test_an_empty_store_still_renders(tmp_path: Path) -> None:
    db = open_store(tmp_path / "empty.db")
    d = build(data.read(db, DUE, NOW))
    assert (d.total, d.previous_total, d.change_pct, d.anomalies, d.budgets) == (0.0, 0.0, None, (), ())
    assert "no spend stored for this period" in d.notes
    drawn = charts.draw(d)
    assert all(png.startswith(PNG) for png in drawn.values())
    assert "$0.00" in render.text(d) and "cid:" in render.html(d, {n: f"cid:{n}" for n in drawn})


def test_charts_are_deterministic_pngs(whole: Digest) -> None:
    first, second = charts.draw(whole), charts.draw(whole)
    assert first == second and set(first) == set(charts.CHART_NAMES)
    for png in first.values():
        assert png.startswith(PNG) and b"Software" not in png and b"tIME" not in png
        assert mpimage.imread(io.BytesIO(png), format="png").shape[1] == 800
    assert mpimage.imread(io.BytesIO(first["daily"]), format="png").shape[:2] == (320, 800)


# --------------------------------------------------------------------------------------------- email
def assert_email_digest(msg: EmailMessage, d: Digest) -> tuple[str, str]:
    """The structure of a digest email: text and HTML alternatives, the HTML's inline PNGs."""
    assert msg.get_content_type() == "multipart/alternative"
    plain, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and page is not None
    text, html = plain.get_content(), page.get_content()
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 3
    referenced = set(re.findall(r'src="cid:([^"]+)"', html))
    assert referenced == {str(p["Content-ID"]).strip("<>") for p in images}
    for part in images:
        assert part.get_content_disposition() == "inline"
        png = part.get_content()
        assert isinstance(png, bytes) and png.startswith(PNG)
        pixels = mpimage.imread(io.BytesIO(png), format="png")
        assert pixels.shape[1] == 800 and pixels.shape[2] in (3, 4)
    assert msg["Subject"] == render.subject(d) and money(d.total) in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"].endswith("@example.com>")
    return text, html


def test_the_email_digest_parsed_back_from_a_real_smtp_server(store_path: Path, smtp: Smtp, whole: Digest) -> None:
    report = send_due(open_store(store_path), settings_for(smtp.port), NOW)
    assert (report.sent, report.failed, report.period) == (1, 0, PERIOD), report
    (msg,) = smtp.inbox.messages
    assert smtp.inbox.recipients == [["finops@example.com"]]
    db = open_store(store_path)
    d = whole
    text, html = assert_email_digest(msg, d)
    total, previous = sql_sum(db, Grain.TOTAL, START, END), sql_sum(db, Grain.TOTAL, PREV_START, PREV_END)
    for number in (money(total), money(previous), money(total - previous)[1:]):
        assert number in text and number in html
    for provider, spend in sql_by_entity(db, Grain.PROVIDER, START, END).items():
        assert f"{provider}: {money(spend)}" in text and money(spend) in html
    names = teams_of(db)
    for team, spend in sql_by_entity(db, Grain.TEAM, START, END).items():
        assert f"{names[team]}: {money(spend)}" in text
    for day_ in (START, END):
        assert f"{day_.isoformat()} {day_:%a}: {money(sql_sum(db, Grain.TOTAL, day_, day_))}" in text
    worst = d.budgets[0]
    assert render.budget_used(worst) in text and render.budget_used(worst) in html
    assert digest_rows(store_path) == [(PERIOD, "all", "mail", "sent", 1)]


def test_a_team_digest_goes_to_its_own_recipients(store_path: Path, smtp: Smtp, inputs: Inputs) -> None:
    db = open_store(store_path)
    names = teams_of(db)
    team = sorted(names)[0]
    settings = settings_for(smtp.port, teams={names[team]: ["lead@example.com", "owner@example.com"]})
    report = send_now(db, settings, NOW, team=names[team])
    assert [(x.audience, x.receiver, x.outcome) for x in report.deliveries] == [(f"team:{team}", "mail", "sent")]
    (msg,) = smtp.inbox.messages
    assert smtp.inbox.recipients == [["lead@example.com", "owner@example.com"]]
    assert msg["To"] == "lead@example.com, owner@example.com"
    d = build(inputs, team)
    text, html = assert_email_digest(msg, d)
    assert money(sql_sum(db, Grain.TEAM, START, END, team)) in text
    for other, alias in names.items():
        if other != team:
            assert alias not in text and alias not in html
    # The whole-proxy digest is still unsent: the team's row is its own.
    assert digest_rows(store_path) == [(PERIOD, f"team:{team}", "mail", "sent", 1)]
    with pytest.raises(ConfigError, match="no team"):
        send_now(db, settings, NOW, team="team-nobody")


# ------------------------------------------------------------------------------------ once per period
def test_once_per_period_across_separate_runs(store_path: Path, smtp: Smtp) -> None:
    settings = settings_for(smtp.port)
    before = send_due(open_store(store_path), settings, DUE - timedelta(seconds=1))
    assert before.sent == 0 and "late" in (before.skipped or "")  # last week's, days ago: skipped
    first = send_due(open_store(store_path), settings, NOW)
    assert first.sent == 1
    for later in (NOW + timedelta(minutes=15), NOW + timedelta(days=3)):  # each a new process's store handle
        again = send_due(open_store(store_path), settings, later)
        assert (again.sent, again.period, again.already) == (0, PERIOD, [("all", "mail", "sent")])
    assert len(smtp.inbox.messages) == 1
    # The next Monday is a new period.
    following = send_due(open_store(store_path), settings, NOW + timedelta(days=7))
    assert (following.sent, following.period) == (1, "2026-11-30T09:00:00+00:00")
    assert [r[3] for r in digest_rows(store_path)] == ["sent", "sent"]


def test_a_digest_missed_by_more_than_a_day_is_skipped(store_path: Path, smtp: Smtp) -> None:
    report = send_due(open_store(store_path), settings_for(smtp.port), DUE + LATE_LIMIT + timedelta(minutes=1))
    assert report.sent == 0 and report.skipped and "late" in report.skipped
    assert report.next_due == DUE + timedelta(days=7)
    assert digest_rows(store_path) == [] and smtp.inbox.messages == []


def test_the_cli_sends_once_per_period_unless_forced(store_path: Path, smtp: Smtp, tmp_path: Path) -> None:
    config = config_file(tmp_path, smtp.port)
    args = ["-c", str(config), "digest", "--send", "--db", str(store_path), "--at", NOW.isoformat()]
    runner = CliRunner()
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "sent all digest to mail" in first.output
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and "already sent" in second.output
    assert len(smtp.inbox.messages) == 1
    forced = runner.invoke(main, [*args, "--force"])
    assert forced.exit_code == 0 and "sent all digest to mail" in forced.output
    assert len(smtp.inbox.messages) == 2
    first_id, second_id = (m["Message-ID"] for m in smtp.inbox.messages)
    assert first_id == second_id  # the same digest to the same receiver: one thread in a mail client


def test_a_sender_killed_mid_send_leaves_a_pending_row_that_is_sent_again(
    store_path: Path, smtp: Smtp, tmp_path: Path
) -> None:
    config = config_file(tmp_path, smtp.port, timeout_s=120)
    smtp.inbox.hold = True
    command = [sys.executable, "-m", "sentinel", "-c", str(config), "digest", "--send"]
    proc = subprocess.Popen(
        [*command, "--db", str(store_path), "--at", NOW.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert smtp.inbox.entered.wait(120), "the sender never reached DATA"
        # The row was written (pending) before the first byte went out.
        assert digest_rows(store_path) == [(PERIOD, "all", "mail", "pending", 0)]
    finally:
        proc.kill()
        proc.communicate()
    smtp.inbox.hold = False
    smtp.inbox.release.set()
    assert smtp.inbox.messages == []
    report = send_due(open_store(store_path), settings_for(smtp.port), NOW + timedelta(minutes=15))
    assert report.sent == 1 and len(smtp.inbox.messages) == 1
    assert digest_rows(store_path) == [(PERIOD, "all", "mail", "sent", 1)]


def test_a_refused_digest_is_retried_then_marked_failed(store_path: Path) -> None:
    settings = settings_for(free_port())  # nothing listens there: connection refused, retryable
    first = send_due(open_store(store_path), settings, NOW)
    assert [(x.outcome, "ConnectionRefused" in x.detail) for x in first.deliveries] == [("retry", True)]
    assert digest_rows(store_path) == [(PERIOD, "all", "mail", "pending", 1)]
    with sqlite3.connect(store_path) as conn:  # as if three more ticks had failed too
        conn.execute("UPDATE digests SET attempts = ?", (MAX_ATTEMPTS - 1,))
    last = send_due(open_store(store_path), settings, NOW + timedelta(minutes=45))
    assert [x.outcome for x in last.deliveries] == ["failed"]
    assert digest_rows(store_path) == [(PERIOD, "all", "mail", "failed", MAX_ATTEMPTS)]
    assert send_due(open_store(store_path), settings, NOW + timedelta(hours=1)).deliveries == []


# --------------------------------------------------------------------------------------------- Slack
def test_the_slack_summary_is_short_and_has_no_links(store_path: Path) -> None:
    db = open_store(store_path)
    with FakeSlack() as slack:
        env = {"DIGEST_HOOK": slack.url + HOOK_PATH}
        report = send_now(db, settings_for(slack=True), NOW, environ=env)
        assert [(x.receiver, x.outcome) for x in report.deliveries] == [("slack", "sent")]
        (seen,) = slack.requests
    assert seen.path == HOOK_PATH
    body = seen.json()
    dump = json.dumps(body)
    assert "http" not in dump and "mailto" not in dump and "www." not in dump and "<" not in dump
    assert "image" not in dump and '"url"' not in dump and '"accessory"' not in dump
    total = money(sql_sum(db, Grain.TOTAL, START, END))
    assert total in body["text"] and total in dump
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section", "context"]
    assert len(dump) < 4000
    assert digest_rows(store_path) == [(PERIOD, "all", "slack", "sent", 1)]


# ------------------------------------------------------------------------------------------ preview
def test_preview_writes_a_standalone_file_with_data_images(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "digest.html"
    runner = CliRunner()
    result = runner.invoke(main, ["digest", "--db", str(store_path), "--at", NOW.isoformat(), "--preview", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3 and "cid:" not in page
    for encoded in images:
        png = base64.b64decode(encoded)
        assert png.startswith(PNG) and mpimage.imread(io.BytesIO(png), format="png").shape[1] == 800
    db = open_store(store_path)
    assert money(sql_sum(db, Grain.TOTAL, START, END)) in page
    assert digest_rows(store_path) == []  # a preview sends nothing and records nothing
    # A team's preview, and the plain text on stdout.
    names = teams_of(db)
    team = sorted(names)[0]
    team_out = tmp_path / "team.html"
    args = ["digest", "--db", str(store_path), "--at", NOW.isoformat(), "--team", names[team], "--preview"]
    assert runner.invoke(main, [*args, str(team_out)]).exit_code == 0
    assert f"Team {names[team]}" in team_out.read_text()
    text = runner.invoke(main, ["digest", "--db", str(store_path), "--at", NOW.isoformat()])
    assert text.exit_code == 0 and money(sql_sum(db, Grain.TOTAL, START, END)) in text.output
    assert "weekly digest, 2026-11-16 to 2026-11-22" in text.output


def test_batched_day_points_equal_a_fit_per_day() -> None:
    """``day_points`` fits each weekday's days together; every day's band must equal a fit of that
    day alone (``fit_for``), for dense, sparse, newly started, stopped and spiking series."""
    import numpy as np

    from sentinel.detect.anomaly import fit_for
    from sentinel.detect.score import score
    from sentinel.detect.series import SeriesMatrix
    from sentinel.digest.build import BAND_Z, day_points

    rng = np.random.default_rng(5)
    start, n = date(2026, 1, 1), 180
    spiky = rng.gamma(5, 10, n) * (1 + (np.arange(n) % 7 < 5))
    spiky[150] *= 20
    shapes = {
        "dense": rng.gamma(5, 10, n),
        "sparse": np.where(rng.random(n) < 0.3, rng.gamma(2, 5, n), 0.0),
        "new": np.r_[np.zeros(110), rng.gamma(5, 10, n - 110)],
        "stopped": np.r_[rng.gamma(5, 10, 100), np.zeros(n - 100)],
        "spiky": spiky,
    }
    for name, series in shapes.items():
        matrix = SeriesMatrix(("e",), start, series[None, :])
        points = day_points(series, start, start + timedelta(days=90), start + timedelta(days=n - 1))
        assert len(points) == n - 90
        for point in points:
            alone = score(
                fit_for(matrix, point.day), matrix.values[:, matrix.index_of(point.day)], point.day, z_limit=BAND_Z
            )
            for got, want in (
                (point.expected, alone.expected[0]),
                (point.lower, alone.lower[0]),
                (point.upper, alone.upper[0]),
            ):
                if got is None:
                    assert not np.isfinite(want), (name, point.day)
                else:
                    assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9), (name, point.day)
