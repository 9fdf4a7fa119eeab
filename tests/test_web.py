"""The read-only web view over a store synced from the simulator: every route through the handler
and through a real HTTP server on 127.0.0.1, its numbers against the store, its refusals (404,
405, 400, 401), its headers, its escaping, and the CLI that serves it."""

from __future__ import annotations

import base64
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlite_utils
from click.testing import CliRunner
from pydantic import SecretStr
from simhelp import KEY, NOW, make_client, small_model

from sentinel.alerting import run_cycle
from sentinel.budget import engine as budget_engine
from sentinel.budget.specs import Policy
from sentinel.cli import main
from sentinel.clock import fixed
from sentinel.config import DaemonSettings, Settings, SyncSettings, load_settings
from sentinel.demo import example_rules
from sentinel.errors import ConfigError
from sentinel.models import Grain
from sentinel.notify.model import Alert
from sentinel.observe import HealthServer
from sentinel.rules.loader import RuleSet
from sentinel.simulator import SimulatorServer
from sentinel.store import alerts as alert_store
from sentinel.store import open_store, transaction
from sentinel.sync import backfill
from sentinel.web import Response, WebApp, charts, prepare_store, queries
from sentinel.web.data import period_for

DAYS = 70
TODAY = NOW.date()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 days of a small simulated proxy, one alerting cycle with the example rules (alerts and the
    kept budget evaluation), and hand-made anomaly alerts: one firing, one resolved."""
    model = small_model(days=DAYS, users=16)
    path = tmp_path_factory.mktemp("web") / "s.db"
    db = open_store(path)
    with SimulatorServer(model, api_key=KEY).running() as url, make_client(url, db, SyncSettings()) as client:
        client.name = "sim"
        backfill(db, client, SyncSettings(), TODAY - timedelta(days=DAYS - 1), NOW)
    run_cycle(db, Settings(), example_rules(), {}, NOW)
    queries.prepare(db)
    user, key = _some_user_and_key(db)
    started = NOW - timedelta(days=2)
    made = [
        _anomaly("fp-firing", "firing", "user", user, started, None, 123.45),
        _anomaly("fp-resolved", "resolved", "key", key, started - timedelta(days=9), started - timedelta(days=7), 9.5),
    ]
    with transaction(db):
        alert_store.save(db, made, NOW)
    db.conn.close()
    return path


def _anomaly(
    fp: str, status: str, etype: str, eid: str, starts: datetime, ends: datetime | None, impact: float
) -> Alert:
    return Alert(
        fingerprint=fp,
        status=status,
        rule="made-up-anomaly",
        severity="warning",
        summary=f"{etype} {eid} is spending",
        labels={
            "kind": "anomaly",
            "rule": "made-up-anomaly",
            "entity_type": etype,
            "entity_id": eid,
            "direction": "up",
        },
        starts_at=starts,
        ends_at=ends,
        record={
            "kind": "anomaly",
            "entity_type": etype,
            "entity_id": eid,
            "date": starts.date().isoformat(),
            "observed": impact + 10.0,
            "expected": 10.0,
            "impact_usd": impact,
        },
    )


def _some_user_and_key(db: sqlite_utils.Database) -> tuple[str, str]:
    user, key = db.conn.execute(
        "SELECT user_id, token FROM keys WHERE user_id IS NOT NULL AND team_id IS NOT NULL ORDER BY token"
    ).fetchone()
    return str(user), str(key)


@pytest.fixture
def db(store_path: Path) -> Iterator[sqlite_utils.Database]:
    store = open_store(store_path)
    yield store
    store.conn.close()


def _copy_of(store_path: Path, copy: Path) -> sqlite_utils.Database:
    """The module's store copied, for a test that changes it."""
    with sqlite3.connect(copy) as target:
        source = sqlite3.connect(store_path)
        source.backup(target)
        source.close()
    return open_store(copy)


def get(
    db: sqlite_utils.Database, path: str, app: WebApp | None = None, method: str = "GET", now: datetime = NOW
) -> Response:
    route, _, query = path.partition("?")
    return (app or WebApp()).handle(method, route, query, {}, db, now)


def text(response: Response) -> str:
    return response.body.decode()


def value(html: str, element_id: str) -> float:
    found = re.search(rf'id="{element_id}" data-value="([-0-9.]+)"', html)
    assert found, f"no #{element_id} in the page"
    return float(found.group(1))


def section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}".*?</section>', html, re.S)
    assert found, f"no section #{name}"
    return found.group(0)


def rows(html: str) -> dict[str, float]:
    """data-id -> spend of a contributor table."""
    found = re.findall(
        r'<tr data-kind="[^"]*" data-id="([^"]*)">.*?class="num spend"><span data-value="([-0-9.]+)"', html
    )
    return {ident.replace("&amp;", "&"): float(spend) for ident, spend in found}


def previous_rows(html: str) -> dict[str, float]:
    """data-id -> "the period before" of a contributor table (the fourth column)."""
    found = re.findall(
        r'<tr data-kind="[^"]*" data-id="([^"]*)">(?:.*?<td class="num">){2}<span data-value="([-0-9.]+)"', html
    )
    return {ident.replace("&amp;", "&"): float(before) for ident, before in found}


def spend(db: sqlite_utils.Database, grain: Grain, entity: str, first: date, last: date) -> float:
    row = db.conn.execute(
        "SELECT COALESCE(SUM(spend), 0) FROM daily_facts WHERE grain = ? AND entity_id = ? AND date BETWEEN ? AND ?",
        (grain.value, entity, first.isoformat(), last.isoformat()),
    ).fetchone()
    return float(row[0])


# ------------------------------------------------------------------------------------------- overview
@pytest.mark.parametrize("days", [30, 90])
def test_overview_totals_are_the_stores_sums(db: sqlite_utils.Database, days: int) -> None:
    response = get(db, f"/?days={days}")
    assert response.status == 200
    html = text(response)
    p = period_for(days, NOW)
    assert p.last == TODAY - timedelta(days=1) and (p.last - p.first).days == days - 1
    assert value(html, "total-spend") == pytest.approx(spend(db, Grain.TOTAL, "", p.first, p.last), abs=1e-5)
    stored_from = date.fromisoformat(db.conn.execute("SELECT MIN(date) FROM daily_facts").fetchone()[0])
    if stored_from <= p.previous_last:  # 30 days: the 30 before are stored
        before = spend(db, Grain.TOTAL, "", p.previous_first, p.previous_last)
        assert value(html, "previous-spend") == pytest.approx(before, abs=1e-5)
        assert (f"(stored from {stored_from})" in html) == (stored_from > p.previous_first)
    else:  # 90 days of a 70-day store: nothing before them to compare with, which is not "$0, +100 %"
        assert re.search(r'id="previous-spend" class="muted">not stored<', html)
        assert re.search(r'id="change" class="muted">n/a<', html)
        assert set(previous_rows(section(html, "providers"))) == set()  # n/a, not $0 with +100 %
        assert "the thin grey line" not in html
    assert value(html, "today-spend") == pytest.approx(spend(db, Grain.TOTAL, "", TODAY, TODAY), abs=1e-5)
    # One row per day in the table under the chart, and the providers add up to the total.
    assert len(re.findall(r'<tr data-date="', html)) == days
    providers = rows(section(html, "providers"))
    assert sum(providers.values()) == pytest.approx(value(html, "total-spend"), abs=1e-4)
    assert '<svg class="chart daily"' in html and 'class="band"' in html


def test_overview_lists_teams_and_top_users_with_links(db: sqlite_utils.Database) -> None:
    html = text(get(db, "/"))
    p = period_for(30, NOW)
    teams = rows(section(html, "teams"))
    for team, amount in teams.items():
        if team != "(no team)":
            assert amount == pytest.approx(spend(db, Grain.TEAM, team, p.first, p.last), abs=1e-5)
            assert f'href="/team/{quote(team, safe="")}"' in html
    users = rows(section(html, "users"))
    stored = db.conn.execute(
        "SELECT entity_id, SUM(spend) s FROM daily_facts WHERE grain = 'user' AND date BETWEEN ? AND ? "
        "GROUP BY entity_id ORDER BY s DESC LIMIT 10",
        (p.first.isoformat(), p.last.isoformat()),
    ).fetchall()
    assert list(users) == [u for u, _s in stored]
    assert all(users[u] == pytest.approx(s, abs=1e-5) for u, s in stored)
    models = rows(section(html, "models"))
    assert all(f'href="/model/{quote(m, safe="")}"' in html for m in models)


def test_the_period_is_one_of_three(db: sqlite_utils.Database) -> None:
    assert get(db, "/?days=400").status == 200
    for bad in ("7", "abc", "-30", ""):
        response = get(db, f"/?days={bad}")
        assert response.status == 400 and "days must be one of 30, 90, 400" in text(response)


# ---------------------------------------------------------------------------------------- drill-downs
def test_a_team_page_lists_its_users_keys_and_models(db: sqlite_utils.Database) -> None:
    team = db.conn.execute("SELECT team_id FROM keys WHERE team_id IS NOT NULL ORDER BY team_id LIMIT 1").fetchone()[0]
    response = get(db, f"/team/{quote(team, safe='')}")
    assert response.status == 200
    html = text(response)
    p = period_for(30, NOW)
    assert value(html, "total-spend") == pytest.approx(spend(db, Grain.TEAM, team, p.first, p.last), abs=1e-5)
    keys = {str(k): str(u) for k, u in db.conn.execute("SELECT token, user_id FROM keys WHERE team_id = ?", (team,))}
    key_rows = rows(section(html, "keys"))
    user_rows = rows(section(html, "users"))
    for key, amount in key_rows.items():
        assert key in keys
        assert amount == pytest.approx(spend(db, Grain.KEY, key, p.first, p.last), abs=1e-5)
    spenders = {keys[k] for k, amount in key_rows.items() if amount > 0 and keys[k] != "None"}
    assert spenders and spenders <= set(user_rows)
    for user in spenders:
        assert f'href="/user/{quote(user, safe="")}"' in html
    # The team's keys' spend by model adds up to the team's spend through its keys (rows under half
    # a cent are left out of the tables).
    assert sum(rows(section(html, "models")).values()) == pytest.approx(sum(key_rows.values()), abs=0.02)


def test_a_user_page_shows_its_series_keys_models_and_anomalies(db: sqlite_utils.Database) -> None:
    user, _key = _some_user_and_key(db)
    html = text(get(db, f"/user/{quote(user, safe='')}"))
    p = period_for(30, NOW)
    assert value(html, "total-spend") == pytest.approx(spend(db, Grain.USER, user, p.first, p.last), abs=1e-5)
    owned = {str(k) for (k,) in db.conn.execute("SELECT token FROM keys WHERE user_id = ?", (user,))}
    key_rows = rows(section(html, "keys"))
    assert set(key_rows) <= owned
    assert sum(rows(section(html, "models")).values()) == pytest.approx(sum(key_rows.values()), abs=1e-4)
    anomalies = section(html, "anomalies")
    assert 'data-fingerprint="fp-firing"' in anomalies and 'data-value="123.450000"' in anomalies
    daily = [
        float(x)
        for x in re.findall(r'<tr data-date="[^"]*"><td>[^<]*</td><td class="num"><span data-value="([-0-9.]+)"', html)
    ]
    assert sum(daily) == pytest.approx(value(html, "total-spend"), abs=1e-5)


def test_a_model_page_by_its_encoded_id(db: sqlite_utils.Database) -> None:
    model = db.conn.execute(
        "SELECT entity_id FROM daily_facts WHERE grain = 'model' AND entity_id LIKE '%/%'"
    ).fetchone()[0]
    encoded = quote(model, safe="")
    assert "%2F" in encoded
    response = get(db, f"/model/{encoded}?days=90")
    assert response.status == 200
    html = text(response)
    assert f'data-kind="model" data-id="{model}"' in html
    p = period_for(90, NOW)
    assert value(html, "total-spend") == pytest.approx(spend(db, Grain.MODEL, model, p.first, p.last), abs=1e-5)
    assert sum(rows(section(html, "keys")).values()) == pytest.approx(value(html, "total-spend"), abs=1e-4)
    assert 'aria-current="true">90 days' in html
    # The plain path names the same model.
    assert text(get(db, f"/model/{model}?days=90")) == html


def test_a_models_period_before_counts_keys_that_spent_only_then(store_path: Path, tmp_path: Path) -> None:
    """A key that used the model in the period before and not since still counts in that period's
    column, for the key and for its owner."""
    db = _copy_of(store_path, tmp_path / "copy.db")
    p = period_for(30, NOW)
    model, (owner, key) = "azure/gpt-4o", _some_user_and_key(db)
    day = p.previous_first.isoformat()
    with transaction(db):
        db.conn.execute(
            "DELETE FROM daily_facts WHERE grain = 'model_key' AND entity_id = ? AND detail_id = ? AND date >= ?",
            (model, key, p.first.isoformat()),
        )
        db.conn.execute(
            "INSERT OR REPLACE INTO daily_facts VALUES ('sim', 'model_key', ?, ?, ?, 100, 0, 0, 0, 0, 1, 1, 0)",
            (day, model, key),
        )
    html = text(get(db, f"/model/{quote(model, safe='')}"))
    keys_before = previous_rows(section(html, "keys"))

    def stored(*keys: str) -> float:
        sql = (
            "SELECT total(spend) FROM daily_facts WHERE grain = 'model_key' AND entity_id = ? AND date BETWEEN ? AND ?"
        )
        if keys:
            sql += f" AND detail_id IN ({','.join('?' * len(keys))})"
        return float(db.conn.execute(sql, (model, day, p.previous_last.isoformat(), *keys)).fetchone()[0])

    assert stored(key) >= 100.0 and keys_before[key] == pytest.approx(stored(key), abs=1e-5)
    assert sum(keys_before.values()) == pytest.approx(stored(), abs=1e-4)
    assert previous_rows(section(html, "users"))[owner] >= 100.0
    db.conn.close()


def test_a_key_page_names_its_owner_team_and_models(db: sqlite_utils.Database) -> None:
    user, key = _some_user_and_key(db)
    team = db.conn.execute("SELECT team_id FROM keys WHERE token = ?", (key,)).fetchone()[0]
    html = text(get(db, f"/key/{key}"))
    assert f'href="/user/{quote(user, safe="")}"' in html and f'href="/team/{quote(team, safe="")}"' in html
    p = period_for(30, NOW)
    assert value(html, "total-spend") == pytest.approx(spend(db, Grain.KEY, key, p.first, p.last), abs=1e-5)
    assert sum(rows(section(html, "models")).values()) == pytest.approx(value(html, "total-spend"), abs=1e-4)
    assert 'data-fingerprint="fp-resolved"' in section(html, "anomalies")


@pytest.mark.parametrize(
    "path", ["/user/nobody", "/team/nope", "/model/acme%2Fnothing", "/key/deadbeef", "/user/", "/nope", "/team"]
)
def test_unknown_entities_and_paths_are_404(db: sqlite_utils.Database, path: str) -> None:
    response = get(db, path)
    assert response.status == 404
    assert 'id="error" data-status="404"' in text(response)


# ------------------------------------------------------------------------------------ anomalies, budgets
def test_the_anomaly_list_shows_state_entity_and_impact(db: sqlite_utils.Database) -> None:
    html = text(get(db, "/anomalies"))
    stored = db.conn.execute(
        "SELECT fingerprint, status FROM alerts WHERE json_extract(labels, '$.kind') = 'anomaly'"
    ).fetchall()
    listed = re.findall(r'<tr class="anomaly state-(\w+)" data-fingerprint="([^"]+)"', html)
    assert sorted((fp, state) for state, fp in listed) == sorted(stored)
    assert [state for state, _fp in listed] == sorted((s for s, _f in listed), key=lambda s: s != "firing")
    user, key = _some_user_and_key(db)
    firing = re.search(r'data-fingerprint="fp-firing".*?</tr>', html, re.S)
    assert firing and f'href="/user/{quote(user, safe="")}"' in firing.group(0) and "+$123.45" in firing.group(0)
    resolved = re.search(r'data-fingerprint="fp-resolved".*?</tr>', html, re.S)
    assert resolved and f'href="/key/{key}"' in resolved.group(0) and "+$9.50" in resolved.group(0)
    only_firing = text(get(db, "/anomalies?state=firing"))
    assert "fp-firing" in only_firing and "fp-resolved" not in only_firing
    assert get(db, "/anomalies?state=bogus").status == 400


def test_the_budget_table_lists_every_kept_budget(db: sqlite_utils.Database) -> None:
    kept = dict(db.conn.execute("SELECT budget_id, state FROM budget_statuses").fetchall())
    assert kept, "the alerting cycle keeps its budget evaluation"
    listed: dict[str, str] = {}
    page = 1
    while True:
        html = text(get(db, f"/budgets?page={page}"))
        listed.update({b: s for s, b in re.findall(r'<tr class="budget state-(\w+)" data-budget-id="([^"]+)"', html)})
        if f'data-page="{page + 1}"' not in html:
            break
        page += 1
    assert listed == kept
    assert "As evaluated by the last alerting cycle" in html
    counts = dict(db.conn.execute("SELECT state, COUNT(*) FROM budget_statuses GROUP BY state").fetchall())
    for state, n in counts.items():
        html = text(get(db, f"/budgets?state={state}"))
        assert len(re.findall(r'<tr class="budget state-', html)) == min(n, 250)
        assert set(re.findall(r'<tr class="budget state-(\w+)"', html)) == {state}


def test_without_a_kept_evaluation_budgets_are_evaluated_for_the_page(store_path: Path, tmp_path: Path) -> None:
    db = _copy_of(store_path, tmp_path / "copy.db")
    with transaction(db):
        db.conn.execute("DELETE FROM budget_statuses")
        db.conn.execute("DELETE FROM budget_evaluation")
    expected = {s.spec.budget_id for s in budget_engine.statuses(db, NOW, Policy(), RuleSet.empty())}
    html = text(get(db, "/budgets"))
    listed = set(re.findall(r'data-budget-id="([^"]+)"', html))
    assert listed == expected and "Evaluated for this page" in html
    db.conn.close()


def test_a_kept_evaluation_counts_when_it_found_no_budget_and_not_when_it_is_later(
    store_path: Path, tmp_path: Path
) -> None:
    from sentinel.budget import snapshot

    db = _copy_of(store_path, tmp_path / "copy.db")
    with transaction(db):
        snapshot.save(db, [], NOW - timedelta(hours=1))  # a cycle that found no budget at all
    html = text(get(db, "/budgets"))
    assert "As evaluated by the last alerting cycle" in html and "data-budget-id" not in html
    # Viewing the store as of before that cycle (`sentinel web --now`): its evaluation is the future.
    earlier = get(db, "/budgets", now=NOW - timedelta(days=2))
    assert "Evaluated for this page" in text(earlier)
    db.conn.close()


def test_a_store_no_alerting_cycle_has_run_on_says_so(store_path: Path, tmp_path: Path) -> None:
    """A store that was only synced has no alerts: the list says why and what raises them, instead
    of reading as "nothing is wrong"."""
    db = _copy_of(store_path, tmp_path / "copy.db")
    with transaction(db):
        db.conn.execute("DELETE FROM alerts")
    html = text(get(db, "/anomalies"))  # the cycle ran (it kept its budgets) and found nothing
    assert 'id="no-anomalies"' in html and 'id="no-alerting"' not in html
    with transaction(db):
        db.conn.execute("DELETE FROM budget_statuses")
        db.conn.execute("DELETE FROM budget_evaluation")
    html = text(get(db, "/anomalies"))
    assert 'id="no-alerting"' in html and "sentinel evaluate" in html and 'id="no-anomalies"' not in html
    db.conn.close()


def test_an_entity_page_shows_its_budget_and_runway(db: sqlite_utils.Database) -> None:
    team = db.conn.execute(
        "SELECT entity_id FROM budget_statuses WHERE entity_type = 'team' ORDER BY pct_used DESC LIMIT 1"
    ).fetchone()[0]
    html = section(text(get(db, f"/team/{quote(team, safe='')}")), "budgets")
    budget_ids = {
        str(b) for (b,) in db.conn.execute("SELECT budget_id FROM budget_statuses WHERE entity_id = ?", (team,))
    }
    assert budget_ids <= set(re.findall(r'data-budget-id="([^"]+)"', html))
    assert 'class="when runway"' in html


# ------------------------------------------------------------------------------------- safety of pages
def test_only_get_and_head(db: sqlite_utils.Database) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = get(db, "/", method=method)
        assert response.status == 405 and response.header("Allow") == "GET, HEAD"
    head, full = get(db, "/anomalies", method="HEAD"), get(db, "/anomalies")
    assert head.status == 200 and head.body == b"" and head.header("Content-Length") == str(len(full.body))


def test_security_headers_and_no_outside_url_on_any_page(db: sqlite_utils.Database) -> None:
    user, key = _some_user_and_key(db)
    team = db.conn.execute("SELECT team_id FROM keys WHERE token = ?", (key,)).fetchone()[0]
    paths = ["/", "/?days=400", "/anomalies", "/budgets", f"/user/{user}", f"/key/{key}", f"/team/{team}", "/model/x"]
    for path in paths:
        response = get(db, path)
        csp = response.header("Content-Security-Policy") or ""
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert response.header("X-Content-Type-Options") == "nosniff"
        assert response.header("Referrer-Policy") == "no-referrer"
        assert response.header("X-Frame-Options") == "DENY"
        assert response.header("Content-Type") == "text/html; charset=utf-8"
        body = text(response)
        assert "http://" not in body and "https://" not in body and "<script" not in body, path


def test_aliases_are_escaped(store_path: Path, tmp_path: Path) -> None:
    db = _copy_of(store_path, tmp_path / "copy.db")
    evil = '<script>alert("x")</script>'
    team = db.conn.execute("SELECT team_id FROM teams ORDER BY team_id LIMIT 1").fetchone()[0]
    user, _key = _some_user_and_key(db)
    with transaction(db):
        db.conn.execute("UPDATE teams SET alias = ? WHERE team_id = ?", (evil, team))
        db.conn.execute("UPDATE users SET alias = ? WHERE user_id = ?", (evil, user))
    for path in ("/", f"/team/{quote(team, safe='')}", f"/user/{quote(user, safe='')}", "/anomalies"):
        body = text(get(db, path))
        assert "<script" not in body, path
        assert "&lt;script&gt;" in body, path
    db.conn.close()


def test_basic_auth(db: sqlite_utils.Database) -> None:
    app = WebApp(username="finops", password=SecretStr("s3cret: with colon"))

    def auth(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    for headers in ({}, auth("finops", "wrong"), auth("other", "s3cret: with colon"), {"Authorization": "Bearer x"}):
        response = app.handle("GET", "/", "", headers, db, NOW)
        assert response.status == 401 and "Basic" in (response.header("WWW-Authenticate") or "")
        assert b"total-spend" not in response.body
    assert app.handle("GET", "/", "", auth("finops", "s3cret: with colon"), db, NOW).status == 200
    assert app.handle("POST", "/", "", {}, db, NOW).status == 401


# ----------------------------------------------------------------------------------------- over HTTP
def test_served_next_to_metrics_over_real_http(store_path: Path, db: sqlite_utils.Database) -> None:
    user, _key = _some_user_and_key(db)
    with (
        HealthServer(store_path, clock=fixed(NOW), web=WebApp()) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        direct = get(db, f"/user/{user}")
        served = client.get(f"/user/{user}")
        assert served.status_code == 200 and served.content == direct.body
        assert served.headers["content-security-policy"] == direct.header("Content-Security-Policy")
        assert client.get("/").status_code == 200
        assert client.get("/user/nobody").status_code == 404
        posted = client.post("/", content=b"x")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
        head = client.head("/budgets")
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "sentinel_alerts_firing" in metrics.text
        assert client.get("/healthz").text == "ok\n"


def test_basic_auth_over_http_leaves_metrics_and_healthz_open(store_path: Path) -> None:
    app = WebApp(username="finops", password=SecretStr("pw"))
    with HealthServer(store_path, clock=fixed(NOW), web=app) as server, httpx.Client(base_url=server.url) as client:
        denied = client.get("/")
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
        assert client.get("/", auth=("finops", "nope")).status_code == 401
        assert client.get("/", auth=("finops", "pw")).status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_a_served_page_opens_the_store_read_only_and_only_once_signed_in(store_path: Path, tmp_path: Path) -> None:
    """A stranger's request is refused before the store is opened; a signed-in one reads through a
    read-only connection, so a page can neither create a missing store nor change one."""
    app = WebApp(username="finops", password=SecretStr("pw"))
    missing = tmp_path / "none" / "s.db"
    with HealthServer(missing, clock=fixed(NOW), web=app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/").status_code == 401
        failed = client.get("/", auth=("finops", "pw"))
        assert failed.status_code == 500 and str(tmp_path) not in failed.text
    assert not missing.parent.exists()
    user = _user(store_path)

    def files() -> list[bytes]:  # the store and its write-ahead log, where a write would land first
        found = [p.read_bytes() for p in (store_path, store_path.with_name(store_path.name + "-wal")) if p.exists()]
        return [content for content in found if content]  # a reader may leave an empty log behind

    before = files()
    with HealthServer(store_path, clock=fixed(NOW), web=WebApp()) as server, httpx.Client(base_url=server.url) as c:
        for page in ("/", "/anomalies", "/budgets", f"/user/{quote(user, safe='')}"):
            assert c.get(page).status_code == 200
    assert files() == before


def _user(store_path: Path) -> str:
    db = open_store(store_path)
    try:
        return _some_user_and_key(db)[0]
    finally:
        db.conn.close()


def test_without_the_web_view_the_server_is_as_before(store_path: Path) -> None:
    with HealthServer(store_path, clock=fixed(NOW)) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/").status_code == 404 and client.get("/").text == "not found\n"
        assert client.post("/").status_code == 501
        assert client.get("/metrics").status_code == 200


# ------------------------------------------------------------------------------------------- config
def test_config_web_needs_a_port_and_a_whole_credential(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics_port"):
        DaemonSettings(web=True)
    with pytest.raises(ValueError, match="web_user needs a password"):
        DaemonSettings(web=True, metrics_port=9464, web_user="finops")
    with pytest.raises(ValueError, match="needs web_user"):
        DaemonSettings(web=True, metrics_port=9464, web_password_env="PW")
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nweb = true\nmetrics_port = 0\n")
    with pytest.raises(ConfigError, match=r"daemon: .*metrics_port"):
        load_settings(config)
    config.write_text('[daemon]\nweb = true\nmetrics_port = 9464\nweb_user = "finops"\nweb_password_env = "WEB_PW"\n')
    settings = load_settings(config)
    app = WebApp.from_settings(settings, environ={"WEB_PW": "pw"})
    assert app.username == "finops" and app.password is not None and app.password.get_secret_value() == "pw"
    with pytest.raises(ConfigError, match="WEB_PW"):
        WebApp.from_settings(settings, environ={})
    assert WebApp.from_settings(Settings()).username is None


# ------------------------------------------------------------------------------------------- the CLI
def test_demo_without_a_terminal_prints_the_url_and_exits(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--days", "20", "--users", "12", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert re.search(r"Web view of the demo's data: http://127\.0\.0\.1:\d+/ \(not kept running", result.output)
    assert f"sentinel web --db {db}" in result.output
    assert "Spend by provider" in result.output  # the summary is still there, before it


def test_the_web_command_serves_until_interrupted(store_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "web", "--db", str(store_path), "--now", NOW.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert found, line + (process.stderr.read() if process.stderr else "")
        response = httpx.get(found.group(1) + "/", timeout=30)
        assert response.status_code == 200 and 'id="total-spend"' in response.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_the_web_command_refuses_a_missing_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["web", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0 and "no store at" in result.output
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------------------- charts and the band
def test_charts_are_deterministic_accessible_and_escaped(db: sqlite_utils.Database) -> None:
    html = text(get(db, "/"))
    assert html == text(get(db, "/"))
    svg = re.search(r'<svg class="chart daily".*?</svg>', html, re.S)
    assert svg and 'role="img"' in svg.group(0) and "aria-label=" in svg.group(0) and "<title>" in svg.group(0)
    drawn = charts.bars([charts.Bar('<b>"x"</b> & y', 3.0, 1.0)], "Spend <by> team")
    assert "<b>" not in drawn and "&lt;b&gt;" in drawn and "Spend &lt;by&gt; team" in drawn
    assert charts.bars([], "none").count("<svg") == 1 and "no spend" in charts.bars([], "none")
    assert charts.nice_step(97.0) == 25.0 and charts.nice_step(0.0) == 1.0


def test_the_indexes_are_built_once_where_the_view_is_served(tmp_path: Path) -> None:
    """A store gets the view's indexes when it is first served (`sentinel web`, `sentinel run` with
    web = true, the demo), not from the schema: every other store's writes stay as cheap as before."""
    path = tmp_path / "s.db"
    db = open_store(path)
    assert sorted(queries.missing_indexes(db)) == sorted(queries.INDEXES)
    refused = get(db, "/")  # without them a page would read every fact: a clear answer instead
    assert refused.status == 503 and "sentinel web --db" in text(refused)
    db.conn.close()
    assert prepare_store(path) is not None
    assert prepare_store(path) is None  # once
    db = open_store(path)
    assert queries.missing_indexes(db) == []
    db.conn.close()


def test_the_entity_reads_use_the_indexes(db: sqlite_utils.Database) -> None:
    """The shapes web.queries relies on: the user index for per-user sums, the model x key index for
    contributors, and point look-ups on the primary key for one entity's days."""

    def plan(sql: str, params: tuple[object, ...]) -> str:
        return " ".join(str(r[3]) for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    srcs = queries.sources(db)
    assert srcs == ("sim",)
    assert "daily_facts_model_key" in plan(
        "SELECT entity_id, detail_id, SUM(spend) FROM daily_facts INDEXED BY daily_facts_model_key "
        "WHERE grain = 'model_key' AND entity_id IN (?) AND detail_id IN (?) AND date BETWEEN ? AND ? "
        "GROUP BY entity_id, detail_id",
        ("m", "k", "2026-01-01", "2026-02-01"),
    )
    assert "PRIMARY KEY (source=? AND grain=? AND date=? AND entity_id=?)" in plan(
        "SELECT date, SUM(spend) FROM daily_facts WHERE source IN (?) AND grain = ? AND date IN (?, ?) "
        "AND entity_id = ? GROUP BY date",
        ("sim", "user", "2026-01-01", "2026-01-02", "u"),
    )
    first, last = TODAY - timedelta(days=60), TODAY - timedelta(days=1)
    assert (last - first).days + 1 > queries.LONG_PERIOD_DAYS  # read through the user index
    by_index = queries.spend_by_entity(db, srcs, Grain.USER, first, last)
    stored = dict(
        db.conn.execute(
            "SELECT entity_id, SUM(spend) FROM daily_facts WHERE grain = 'user' AND date BETWEEN ? AND ? "
            "GROUP BY entity_id",
            (first.isoformat(), last.isoformat()),
        ).fetchall()
    )
    assert by_index == pytest.approx(stored)
    some = sorted(stored)[:3]
    assert queries.user_spend(db, srcs, some, first, last) == pytest.approx({u: stored[u] for u in some})
