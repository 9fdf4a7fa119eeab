"""Sentinel against a real LiteLLM Proxy: what it stores equals what the proxy's database holds.

Set-up (through the proxy's admin API, with the master key): two teams with budgets, three users
with budgets, a key per user (one with a soft budget), a proxy_admin_viewer user whose key Sentinel
uses, mock traffic on priced models through every key, and 30 days of history written straight into
the proxy's daily spend tables with SQL. Names carry a per-run prefix, so runs against the same
database do not collide; comparisons cover every row in the range, earlier runs' included.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from realproxy import RealProxy, start_real_proxy

from sentinel import doctor
from sentinel.config import QualitySettings, SourceSettings, SyncSettings
from sentinel.egress import PROXY_READ_PATHS
from sentinel.errors import AuthenticationFailed, SourceError
from sentinel.models import Grain
from sentinel.store import facts as fact_store
from sentinel.store import open_store
from sentinel.store import state as state_store
from sentinel.sync import backfill, open_client

pytestmark = pytest.mark.real_litellm

HISTORY_DAYS = 30
PRICED_MODELS = ("gpt-4o-mini", "azure-gpt-4o")  # in the harness's model list and LiteLLM's price map
LOGGED_MODELS = {"gpt-4o-mini": ("openai/gpt-4o-mini", "openai"), "azure-gpt-4o": ("azure/gpt-4o", "azure")}


@pytest.fixture(scope="module")
def real_proxy() -> RealProxy:
    """The real proxy, started (or found running) by the harness; see realproxy.py."""
    return start_real_proxy()


@dataclass(frozen=True)
class World:
    prefix: str
    viewer_key: str
    teams: dict[str, str]  # alias -> team_id
    users: tuple[str, ...]
    keys: dict[str, str]  # user -> raw key
    today: date

    @property
    def since(self) -> date:
        return self.today - timedelta(days=HISTORY_DAYS)


def _history_sql(world: World, tokens: dict[str, str], team_of: dict[str, str]) -> str:
    """Past days of spend for every user x model, in both the user and the team daily tables."""
    rows_user, rows_team = [], []
    for d in range(1, HISTORY_DAYS + 1):
        day = (world.today - timedelta(days=d)).isoformat()
        for i, user in enumerate(world.users):
            for j, model_group in enumerate(PRICED_MODELS):
                model, provider = LOGGED_MODELS[model_group]
                spend = round(0.01 * (1 + i) * (1 + j) * (1 + (d % 7)) + 0.000123 * d, 6)
                prompt, completion = 1000 * (i + 1) + d, 300 * (j + 1) + d
                common = (
                    f"'{day}', '{tokens[user]}', '{model}', '{model_group}', '{provider}', {prompt}, {completion}, "
                    f"0, 0, {spend}, 3, 3, 0"
                )
                rows_user.append(f"(gen_random_uuid(), '{user}', {common}, now(), now())")
                rows_team.append(f"(gen_random_uuid(), '{team_of[user]}', {common}, now(), now())")
    cols = (
        "date, api_key, model, model_group, custom_llm_provider, prompt_tokens, completion_tokens, "
        "cache_read_input_tokens, cache_creation_input_tokens, spend, api_requests, successful_requests, "
        "failed_requests, created_at, updated_at"
    )
    return (
        f'INSERT INTO "LiteLLM_DailyUserSpend" (id, user_id, {cols}) VALUES {", ".join(rows_user)};\n'
        f'INSERT INTO "LiteLLM_DailyTeamSpend" (id, team_id, {cols}) VALUES {", ".join(rows_team)};'
    )


@pytest.fixture(scope="module")
def world(real_proxy: RealProxy) -> World:
    prefix = f"ct{int(time.time())}"
    p = real_proxy
    viewer = p.admin(
        "POST", "/user/new", {"user_id": f"{prefix}-viewer", "user_role": "proxy_admin_viewer", "auto_create_key": True}
    )
    assert isinstance(viewer, dict)
    teams = {}
    for alias, body in (
        ("alpha", {"max_budget": 100.0, "soft_budget": 80.0, "budget_duration": "30d"}),
        ("beta", {"max_budget": 50.0, "budget_duration": "7d"}),
    ):
        made = p.admin("POST", "/team/new", {"team_alias": f"{prefix}-{alias}", **body})
        assert isinstance(made, dict)
        teams[alias] = str(made["team_id"])
    users = (f"{prefix}-ann", f"{prefix}-ben", f"{prefix}-cat")
    team_of = {users[0]: teams["alpha"], users[1]: teams["alpha"], users[2]: teams["beta"]}
    keys: dict[str, str] = {}
    for n, user in enumerate(users):
        p.admin(
            "POST",
            "/user/new",
            {"user_id": user, "user_email": f"{user}@example.com", "user_role": "internal_user",
             "max_budget": 25.0, "budget_duration": "30d", "auto_create_key": False},
        )  # fmt: skip
        p.admin("POST", "/team/member_add", {"team_id": team_of[user], "member": {"role": "user", "user_id": user}})
        body: dict[str, object] = {
            "user_id": user,
            "team_id": team_of[user],
            "key_alias": f"{user}-key",
            "max_budget": 10.0,
            "budget_duration": "30d",
            "metadata": {"allow_client_mock_response": True},
        }
        if n == 0:
            body["soft_budget"] = 8.0
        made = p.admin("POST", "/key/generate", body)
        assert isinstance(made, dict)
        keys[user] = str(made["key"])
    today = datetime.now(UTC).date()
    w = World(prefix, str(viewer["key"]), teams, users, keys, today)
    # Mock traffic: no provider is called, cost comes from LiteLLM's bundled price map.
    sent = 0
    for user in users:
        for model in PRICED_MODELS:
            p.admin(
                "POST",
                "/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": f"hello from {user}"}],
                 "mock_response": f"hi {user}, this is {model}"},
                key=keys[user],
            )  # fmt: skip
            sent += 1
    # LiteLLM stores a virtual key as the sha256 of the raw key.
    tokens = {u: hashlib.sha256(keys[u].encode()).hexdigest() for u in users}
    p.psql(_history_sql(w, tokens, team_of))
    # Spend reaches the daily tables through the proxy's batch writer (about 50 s after a request).
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        landed = p.psql(
            f'SELECT COALESCE(SUM(api_requests), 0) FROM "LiteLLM_DailyUserSpend" '
            f"WHERE user_id LIKE '{prefix}-%' AND date = '{today.isoformat()}'"
        )
        if int(landed[0][0]) >= sent:
            break
        time.sleep(2)
    else:
        pytest.fail(f"the proxy did not write today's {sent} requests to LiteLLM_DailyUserSpend within 180 s")
    # The budget counters on the team, user and key rows are written by the same batch writer, not
    # necessarily in the same flush: wait until each adds up to the traffic's spend.
    traffic = (
        f"(SELECT SUM(spend) FROM \"LiteLLM_DailyUserSpend\" WHERE user_id LIKE '{prefix}-%' AND date = '{today}')"
    )
    counters = (
        f"SELECT {traffic}, "
        f"(SELECT SUM(spend) FROM \"LiteLLM_TeamTable\" WHERE team_alias LIKE '{prefix}-%'), "
        f"(SELECT SUM(spend) FROM \"LiteLLM_UserTable\" WHERE user_id LIKE '{prefix}-%'), "
        f"(SELECT SUM(spend) FROM \"LiteLLM_VerificationToken\" WHERE key_alias LIKE '{prefix}-%')"
    )
    while time.monotonic() < deadline:
        total, *sums = (float(x or 0.0) for x in p.psql(counters)[0])
        if total > 0 and all(abs(x - total) < 1e-9 for x in sums):
            break
        time.sleep(2)
    else:
        pytest.fail(f"team, user and key spend counters did not reach the traffic's spend within 180 s: {counters}")
    return w


def _sync(
    p: RealProxy, world: World, path: Path, settings: SyncSettings, key: str | None = None
) -> sqlite_utils.Database:
    db = open_store(path)
    source = SourceSettings(name="real", url=p.url, api_key_env="REAL_KEY")
    with open_client(source, settings, db, environ={"REAL_KEY": key or world.viewer_key}) as client:
        backfill(db, client, settings, world.since, datetime.now(UTC))
    return db


def _db_totals(p: RealProxy, table: str, column: str, world: World) -> dict[tuple[str, str], float]:
    # Measured on 1.108.7: rows without a model (requests that failed before one was chosen) are in
    # no entry of breakdown.models; rows without a user, or on the team route without a team, are
    # the entity "Unassigned".
    skip = f" AND COALESCE({column}, '') <> ''" if column == "model" else ""
    rows = p.psql(
        f"SELECT date, COALESCE({column}, ''), SUM(spend) FROM \"{table}\" "
        f"WHERE date BETWEEN '{world.since.isoformat()}' AND '{world.today.isoformat()}'{skip} GROUP BY 1, 2"
    )
    return {(r[0], r[1] or "Unassigned"): float(r[2]) for r in rows}


def _stored_totals(db: sqlite_utils.Database, grain: Grain, world: World) -> dict[tuple[str, str], float]:
    facts = fact_store.facts_for(db, "real", grain, world.since, world.today)
    return {(day, entity): metrics[0] for (day, entity, _detail), metrics in facts.items()}


def _assert_same(stored: dict[tuple[str, str], float], truth: dict[tuple[str, str], float], what: str) -> None:
    assert set(stored) == set(truth), f"{what}: differing (date, entity): {sorted(set(stored) ^ set(truth))[:8]}"
    wrong = {k: (stored[k], v) for k, v in truth.items() if abs(stored[k] - v) > 1e-6}
    assert not wrong, f"{what}: spend differs by more than $0.000001: {list(wrong.items())[:5]}"


@pytest.fixture(scope="module")
def synced(
    real_proxy: RealProxy, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sqlite_utils.Database, sqlite_utils.Database, list[str]]]:
    """The same history synced twice: through the aggregated route, and page by page with pages so small
    that every date spans several of them. Also returns the proxy log lines written meanwhile."""
    log_start = real_proxy.log_path.stat().st_size
    tmp = tmp_path_factory.mktemp("real")
    aggregated = _sync(real_proxy, world, tmp / "agg.db", SyncSettings(prefer_aggregated=True))
    paged = _sync(real_proxy, world, tmp / "paged.db", SyncSettings(prefer_aggregated=False, page_size=5))
    with real_proxy.log_path.open("rb") as log:
        log.seek(log_start)
        lines = log.read().decode(errors="replace").splitlines()
    yield aggregated, paged, lines


@pytest.mark.parametrize("route", ["aggregated", "paginated"])
def test_stored_spend_equals_the_proxy_database(real_proxy: RealProxy, world: World, synced: tuple, route: str) -> None:
    db = synced[0] if route == "aggregated" else synced[1]
    for grain, table, column in (
        (Grain.USER, "LiteLLM_DailyUserSpend", "user_id"),
        (Grain.TEAM, "LiteLLM_DailyTeamSpend", "team_id"),
        (Grain.MODEL, "LiteLLM_DailyUserSpend", "model"),
    ):
        _assert_same(_stored_totals(db, grain, world), _db_totals(real_proxy, table, column, world), grain.value)
    ours = {k: v for k, v in _stored_totals(db, Grain.USER, world).items() if k[1].startswith(world.prefix)}
    assert len({day for day, _u in ours}) == HISTORY_DAYS + 1  # the history and today's traffic both arrived


def test_paginated_sync_really_read_dates_across_pages(world: World, synced: tuple) -> None:
    aggregated, paged = synced[0], synced[1]

    def calls(db: sqlite_utils.Database, path: str) -> list[str]:
        return [q for (q,) in db.conn.execute("SELECT query FROM audit_log WHERE path = ?", [path])]

    pages = calls(paged, "/user/daily/activity")
    assert len(pages) > HISTORY_DAYS, f"page_size 5 should need many pages for {HISTORY_DAYS} days; got {len(pages)}"
    assert any("page=2" in q for q in pages)
    assert calls(aggregated, "/user/daily/activity/aggregated") and not calls(aggregated, "/user/daily/activity")


def test_budgets_read_match_the_proxy_tables(real_proxy: RealProxy, world: World, synced: tuple) -> None:
    db = synced[0]
    prefix = world.prefix
    teams = real_proxy.psql(
        'SELECT team_id, max_budget, soft_budget, spend, budget_duration, budget_reset_at FROM "LiteLLM_TeamTable" '
        f"WHERE team_alias LIKE '{prefix}-%'"
    )
    assert len(teams) == 2
    for team_id, max_b, soft, spend, duration, reset in teams:
        row = next(db["teams"].rows_where("source = 'real' AND team_id = ?", [team_id]))
        assert row["max_budget"] == pytest.approx(float(max_b)) and row["budget_duration"] == duration
        assert row["soft_budget"] == (pytest.approx(float(soft)) if soft else None)
        assert row["spend"] == pytest.approx(float(spend or 0.0), abs=1e-6)
        assert _instant(row["budget_reset_at"]) == _instant(reset)
    users = real_proxy.psql(
        'SELECT user_id, max_budget, spend, budget_reset_at FROM "LiteLLM_UserTable" '
        f"WHERE user_id LIKE '{prefix}-%' AND user_id <> '{prefix}-viewer'"
    )
    assert len(users) == 3
    for user_id, max_b, spend, reset in users:
        row = next(db["users"].rows_where("source = 'real' AND user_id = ?", [user_id]))
        assert row["max_budget"] == pytest.approx(float(max_b))
        assert row["spend"] == pytest.approx(float(spend or 0.0), abs=1e-6)
        assert _instant(row["budget_reset_at"]) == _instant(reset)
    keys = real_proxy.psql(
        'SELECT k.token, k.max_budget, k.spend, k.budget_reset_at, b.soft_budget FROM "LiteLLM_VerificationToken" k '
        f"LEFT JOIN \"LiteLLM_BudgetTable\" b ON b.budget_id = k.budget_id WHERE k.key_alias LIKE '{prefix}-%'"
    )
    assert len(keys) == 3 and sum(1 for k in keys if k[4]) == 1
    for token, max_b, spend, reset, soft in keys:
        row = next(db["keys"].rows_where("source = 'real' AND token = ?", [token]))
        assert row["max_budget"] == pytest.approx(float(max_b))
        assert row["spend"] == pytest.approx(float(spend or 0.0), abs=1e-6)
        assert row["soft_budget"] == (pytest.approx(float(soft)) if soft else None)
        assert _instant(row["budget_reset_at"]) == _instant(reset)


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


REQUEST_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/[^ ?"]*)[^"]* HTTP/1\.[01]"')


def test_the_proxy_log_shows_only_allowlisted_gets_from_sentinel(synced: tuple) -> None:
    lines = synced[2]
    requests = [REQUEST_LINE.search(line) for line in lines]
    seen = [(m.group(1), m.group(2)) for m in requests if m]
    audited = sum(db.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] for db in synced[:2])
    assert len(seen) >= audited > 0, "the proxy's access log should show every request Sentinel made"
    assert all(method == "GET" for method, _p in seen), sorted({m for m, _p in seen})
    assert {path for _m, path in seen} <= set(PROXY_READ_PATHS), sorted({p for _m, p in seen} - set(PROXY_READ_PATHS))


def test_a_bad_key_is_a_clear_authentication_error(real_proxy: RealProxy, world: World, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationFailed) as failed:
        _sync(real_proxy, world, tmp_path / "bad.db", SyncSettings(), key="sk-not-a-real-key-0000")
    message = str(failed.value)
    assert "authentication failed" in message.lower() and "sk-not-a-real-key-0000" not in message


def _doctor(p: RealProxy, path: Path, key: str) -> dict[str, doctor.Check]:
    db = open_store(path)
    source = SourceSettings(name="real", url=p.url, api_key_env="REAL_KEY", timeout_s=30)
    with open_client(source, SyncSettings(), db, environ={"REAL_KEY": key}) as client:
        report = doctor.diagnose(client, p.url, QualitySettings())
    return {c.name: c for c in report.checks}


def test_doctor_on_the_real_proxy_passes_the_viewer_key_and_names_an_unpriced_model(
    real_proxy: RealProxy, world: World, tmp_path: Path
) -> None:
    # Today's traffic on a model missing from the price map, as the proxy logs it: tokens, $0.
    model = f"{world.prefix}/unpriced-model"
    token = hashlib.sha256(world.keys[world.users[0]].encode()).hexdigest()
    cols = (
        "date, api_key, model, model_group, custom_llm_provider, prompt_tokens, completion_tokens, "
        "cache_read_input_tokens, cache_creation_input_tokens, spend, api_requests, successful_requests, "
        "failed_requests, created_at, updated_at"
    )
    real_proxy.psql(
        f'INSERT INTO "LiteLLM_DailyUserSpend" (id, user_id, {cols}) VALUES (gen_random_uuid(), '
        f"'{world.users[0]}', '{world.today}', '{token}', '{model}', '{model}', 'custom', 1234, 56, 0, 0, 0, "
        "2, 2, 0, now(), now())"
    )
    checks = _doctor(real_proxy, tmp_path / "viewer.db", world.viewer_key)
    verdicts = {name: c.verdict for name, c in checks.items()}
    for name in ("reachable", "clock", "database", "authentication", "key role", "read scope", "recent traffic"):
        assert verdicts[name] == "ok", (name, checks[name])
    assert checks["authentication"].details["user_id"] == f"{world.prefix}-viewer"
    assert verdicts["pricing"] == "fail"
    unpriced = checks["pricing"].details["unpriced"]
    assert model in unpriced  # type: ignore[operator]
    assert not {"openai/gpt-4o-mini", "azure/gpt-4o"} & set(unpriced)  # type: ignore[arg-type]
    assert verdicts["history"] == "info" and checks["history"].details["oldest_day"] <= world.since.isoformat()


def test_doctor_flags_the_master_key_and_refuses_an_ordinary_user_s_key(
    real_proxy: RealProxy, world: World, tmp_path: Path
) -> None:
    master = _doctor(real_proxy, tmp_path / "master.db", real_proxy.master_key)
    assert master["key role"].verdict == "warn" and "master key" in master["key role"].finding
    assert master["read scope"].verdict == "ok"
    ordinary = _doctor(real_proxy, tmp_path / "user.db", world.keys[world.users[1]])
    assert ordinary["authentication"].verdict == "ok"
    assert ordinary["key role"].verdict == "fail" and "internal_user" in ordinary["key role"].finding
    assert ordinary["read scope"].verdict == "fail"
    refused = " ".join(ordinary["read scope"].details["refused"])  # type: ignore[arg-type]
    assert "users" in refused and "teams" in refused


def test_stopping_the_proxy_mid_sync_then_starting_it_loses_nothing(
    real_proxy: RealProxy, world: World, tmp_path: Path
) -> None:
    settings = SyncSettings(
        prefer_aggregated=False, page_size=3, backfill_chunk_days=2, max_chunk_days=2, max_attempts=2, retry_max_s=1
    )
    path = tmp_path / "restart.db"
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _sync(real_proxy, world, path, settings)
        except BaseException as exc:  # the sync is expected to fail while the proxy is down
            failure.append(exc)

    db = open_store(path)  # created and migrated before the worker opens it too
    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not state_store.get_state(db, "real").backfill_cursor and not failure:
        time.sleep(0.2)
    assert state_store.get_state(db, "real").backfill_cursor, f"no chunk committed within 120 s ({failure})"
    real_proxy.kill()
    worker.join(timeout=180)
    assert not worker.is_alive()
    assert failure and isinstance(failure[0], SourceError), failure
    real_proxy.start()
    resumed = _sync(real_proxy, world, path, settings)
    assert state_store.get_state(resumed, "real").backfill_done_at is not None
    _assert_same(
        _stored_totals(resumed, Grain.USER, world),
        _db_totals(real_proxy, "LiteLLM_DailyUserSpend", "user_id", world),
        "user after restart",
    )


def test_the_simulator_serves_every_field_the_live_proxy_does(real_proxy: RealProxy, world: World) -> None:
    """The captured fixtures age; the live proxy's answers today are checked against the simulator too."""
    from shapes import missing
    from simhelp import KEY, small_model
    from test_fixture_coverage import REQUESTS

    from sentinel.simulator import SimulatorServer

    live_params: dict[str, dict[str, object]] = {
        "user_info_alice": {"user_id": world.users[0]},
        "user_daily_activity": {"start_date": world.since.isoformat(), "end_date": world.today.isoformat()},
        "team_daily_activity": {"start_date": world.since.isoformat(), "end_date": world.today.isoformat()},
        "spend_logs_v2": {"start_date": world.today.isoformat(), "end_date": world.today.isoformat()},
    }
    model = small_model()
    problems: list[str] = []
    with SimulatorServer(model, api_key=KEY).running() as url:
        for name, (route, query) in sorted(REQUESTS.items()):
            params = live_params.get(name, query if isinstance(query, dict) else {})
            live = httpx.get(
                real_proxy.url + route,
                params=params,  # type: ignore[arg-type]
                headers={"Authorization": f"Bearer {real_proxy.master_key}"},
                timeout=120,
            )
            assert live.status_code == 200, f"{route}: {live.status_code} {live.text[:300]}"
            served = httpx.get(
                url + route,
                params=query(model) if callable(query) else query,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=60,
            ).json()
            problems += [f"{route} ({name}): {p}" for p in missing(live.json(), served)]
    assert problems == [], "the simulator lacks what the live proxy serves:\n" + "\n".join(problems)
