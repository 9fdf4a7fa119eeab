"""The simulator's data-quality and access knobs, over real HTTP on 127.0.0.1: unpriced models, keys without
users, a logging outage, a late flush, a skewed clock, stored prompts, and keys with roles (ROLES.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from sentinel.simulator import Faults, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.simulator.catalog import intraday_share
from sentinel.simulator.server import Caller
from sentinel.simulator.spendlogs import PROMPT_CANARY

KEY = "sk-sim-master"
NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
DAYS = 12
START = TODAY - timedelta(days=DAYS - 1)
SONNET = "anthropic/claude-3-5-sonnet-20240620"
Json = dict[str, Any]


def config(**overrides: Any) -> TrafficConfig:
    values: Json = {"seed": 3, "users": 10, "teams": 3, "days": DAYS, "now": NOW}
    values.update(overrides)
    return TrafficConfig(**values)


@contextmanager
def serve(
    model: TrafficModel, faults: Faults | None = None, callers: dict[str, Caller] | None = None
) -> Iterator[httpx.Client]:
    server = SimulatorServer(model, api_key=KEY, faults=faults, callers=callers)
    with (
        server.running() as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client,
    ):
        yield client


def span(start: date = START, end: date = TODAY) -> Json:
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


def aggregated(client: httpx.Client, table: str = "user", **params: Any) -> Json:
    r = client.get(f"/{table}/daily/activity/aggregated", params={**span(), "api_key_limit": 1000, **params})
    assert r.status_code == 200, r.text
    body: Json = r.json()
    return body


def by_date(body: Json) -> dict[str, Json]:
    return {r["date"]: r for r in body["results"]}


def all_keys(client: httpx.Client) -> list[Json]:
    keys: list[Json] = []
    page = 1
    while True:
        body = client.get("/key/list", params={"return_full_object": "true", "size": 100, "page": page}).json()
        keys += body["keys"]
        if page >= body["total_pages"]:
            return keys
        page += 1


def spend_logs(client: httpx.Client, day: date, **params: Any) -> list[Json]:
    r = client.get("/spend/logs/v2", params={**span(day, day), "page_size": 1000, **params})
    assert r.status_code == 200, r.text
    rows: list[Json] = r.json()["data"]
    return rows


def assert_day_consistent(result: Json) -> None:
    """Every breakdown of a day adds up to the day's metrics."""
    metrics, b = result["metrics"], result["breakdown"]
    for name in ("models", "providers", "model_groups", "endpoints", "entities", "api_keys"):
        for field in ("spend", "prompt_tokens", "api_requests"):
            total = sum(entry["metrics"][field] for entry in b[name].values())
            assert total == pytest.approx(metrics[field], rel=1e-9, abs=1e-9), (result["date"], name, field)


# ---------------------------------------------------------------------------------------------- unpriced models
def test_an_unpriced_model_logs_tokens_and_requests_at_zero_spend() -> None:
    priced, unpriced = TrafficModel(config()), TrafficModel(config(unpriced_models=(SONNET,)))
    with serve(priced) as a, serve(unpriced) as b:
        before, after = by_date(aggregated(a)), by_date(aggregated(b))
        before_keys, after_keys = all_keys(a), all_keys(b)
        logs = [row for row in spend_logs(b, TODAY - timedelta(days=1)) if row["model"] == SONNET]
        team_after = by_date(aggregated(b, "team"))
    assert set(before) == set(after)
    lost = 0.0
    seen_sonnet = False
    for day, result in after.items():
        assert_day_consistent(result)
        sonnet = result["breakdown"]["models"].get(SONNET)
        was = before[day]["breakdown"]["models"].get(SONNET)
        if sonnet is not None:
            seen_sonnet = True
            assert sonnet["metrics"]["spend"] == 0.0
            assert sonnet["metrics"]["prompt_tokens"] == was["metrics"]["prompt_tokens"] > 0
            assert sonnet["metrics"]["api_requests"] == was["metrics"]["api_requests"] > 0
            lost += was["metrics"]["spend"]
        # tokens and requests are untouched; the day's spend loses exactly that model's spend
        for field in ("prompt_tokens", "completion_tokens", "api_requests", "successful_requests"):
            assert result["metrics"][field] == before[day]["metrics"][field]
        expected = before[day]["metrics"]["spend"] - (was["metrics"]["spend"] if was else 0.0)
        assert result["metrics"]["spend"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert seen_sonnet and lost > 1.0
    for result in team_after.values():
        assert_day_consistent(result)
        assert result["breakdown"]["models"].get(SONNET, {"metrics": {"spend": 0.0}})["metrics"]["spend"] == 0.0
    # budget counters lose it too: lifetime key spend adds up to the daily tables' spend
    history = sum(r["metrics"]["spend"] for r in after.values())
    assert sum(k["total_spend"] for k in after_keys) == pytest.approx(history, rel=1e-9)
    assert sum(k["total_spend"] for k in before_keys) - sum(k["total_spend"] for k in after_keys) == pytest.approx(
        lost, rel=1e-9
    )
    assert logs and all(row["spend"] == 0.0 and row["metadata"]["cost_breakdown"]["total_cost"] == 0.0 for row in logs)
    assert any(row["prompt_tokens"] > 0 for row in logs)
    assert all(row["metadata"]["model_map_information"]["model_map_value"] is None for row in logs)


def test_unpriced_models_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown models"):
        TrafficModel(config(unpriced_models=("openai/gpt-5-imaginary",)))


# ---------------------------------------------------------------------------------------------- service keys only
def test_service_keys_only_puts_all_activity_under_unassigned() -> None:
    normal, service = TrafficModel(config()), TrafficModel(config(service_keys_only=True))
    with serve(normal) as a, serve(service) as b:
        before, after = by_date(aggregated(a)), by_date(aggregated(b))
        users = b.get("/user/list", params={"page_size": 100}).json()
        keys = all_keys(b)
        logs = spend_logs(b, TODAY - timedelta(days=1))
    assert set(after) == set(before)
    for day, result in after.items():
        entities = result["breakdown"]["entities"]
        assert set(entities) == {"Unassigned"}
        assert entities["Unassigned"]["metrics"]["spend"] == pytest.approx(result["metrics"]["spend"])
        assert result["metrics"]["spend"] == pytest.approx(before[day]["metrics"]["spend"])  # same traffic
        assert all(k["metadata"]["user_id"] is None for k in result["breakdown"]["api_keys"].values())
    assert len(set(before[TODAY.isoformat()]["breakdown"]["entities"])) > 3  # normally split per user
    assert users["total"] == len(service.users) > 5  # the users are still listed
    assert all(u["spend"] == 0.0 and u["key_count"] == 0 for u in users["users"])
    assert keys and all(k["user_id"] is None for k in keys)
    assert logs and all(row["user"] == "" for row in logs)


# ---------------------------------------------------------------------------------------------- logging outage
def test_stop_logging_empties_later_days_and_cuts_the_day_it_broke() -> None:
    model = TrafficModel(config())
    broke = TODAY - timedelta(days=3)
    at = datetime.combine(broke, datetime.min.time(), UTC) + timedelta(hours=10)
    with serve(model) as client:
        before = by_date(aggregated(client))
        version = model.snapshot().version
        model.stop_logging(at)
        assert model.snapshot().version > version
        after = by_date(aggregated(client))
        logs = spend_logs(client, broke)
        keys = all_keys(client)
    assert sorted(after) == [d.isoformat() for d in (START + timedelta(days=i) for i in range(DAYS - 3))]
    for day, result in after.items():
        if day < broke.isoformat():
            assert result == before[day]  # history before the outage is untouched
    cut, full = after[broke.isoformat()]["metrics"], before[broke.isoformat()]["metrics"]
    share = intraday_share(10 * 3600)
    assert 0 < cut["api_requests"] < full["api_requests"]
    assert cut["api_requests"] == pytest.approx(share * full["api_requests"], rel=0.15)
    assert 0 < cut["spend"] < full["spend"]
    truth = model.truth("total", START, TODAY)
    assert sorted(d for d, _ in truth) == sorted(after)  # the truth is what the proxy serves
    assert logs and all(row["startTime"] < at.isoformat() for row in logs)
    history = sum(r["metrics"]["spend"] for r in after.values())
    assert sum(k["total_spend"] for k in keys) == pytest.approx(history, rel=1e-9)  # counters miss it too


def test_days_opened_after_logging_broke_stay_empty_until_it_resumes() -> None:
    model = TrafficModel(config())
    model.stop_logging(NOW - timedelta(hours=2))
    with serve(model) as client:
        today = aggregated(client, **span(TODAY, TODAY))["results"][0]["metrics"]["api_requests"]
        model.advance(NOW + timedelta(hours=5))
        assert aggregated(client, **span(TODAY, TODAY))["results"][0]["metrics"]["api_requests"] == today
        model.advance_by(timedelta(days=1))  # tomorrow 20:30
        tomorrow = TODAY + timedelta(days=1)
        assert aggregated(client, **span(tomorrow, tomorrow))["results"] == []
        assert model.truth("total", tomorrow, tomorrow) == {}
        resumed = datetime.combine(tomorrow + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=3)
        model.catch_up(resumed - timedelta(hours=1))  # a second new day opens, still without rows
        assert model.dates[-1] == tomorrow + timedelta(days=1)
        assert aggregated(client, **span(tomorrow, tomorrow + timedelta(days=1)))["results"] == []
        model.resume_logging(resumed)  # ahead of the clock: it takes effect when the clock gets there
        model.advance(resumed + timedelta(hours=6))
        later = aggregated(client, **span(tomorrow + timedelta(days=1), tomorrow + timedelta(days=1)))
        model.advance(resumed + timedelta(hours=8))
        grown = aggregated(client, **span(tomorrow + timedelta(days=1), tomorrow + timedelta(days=1)))
        logs = spend_logs(client, tomorrow + timedelta(days=1))
    first, second = later["results"][0]["metrics"], grown["results"][0]["metrics"]
    assert 0 < first["api_requests"] < second["api_requests"]  # logging works again and today grows
    assert logs and all(row["startTime"] >= resumed.isoformat() for row in logs)
    with pytest.raises(ValueError):
        model.resume_logging(resumed + timedelta(hours=9))  # not stopped


def test_logging_broken_before_the_first_day_means_no_data_at_all() -> None:
    model = TrafficModel(config())
    model.stop_logging(datetime.combine(START, datetime.min.time(), UTC) - timedelta(days=1))
    with serve(model) as client:
        body = aggregated(client)
        team = aggregated(client, "team")
        keys = all_keys(client)
        logs = spend_logs(client, TODAY)
    assert body["results"] == [] and body["metadata"]["total_spend"] == 0.0
    assert team["results"] == []
    assert keys and all(k["spend"] == 0.0 and k["total_spend"] == 0.0 for k in keys)
    assert logs == []
    assert model.truth("total", START, TODAY) == {}


def test_a_gap_within_one_day_removes_only_its_requests() -> None:
    model = TrafficModel(config())
    day = TODAY - timedelta(days=2)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    full = model.truth("total", day, day)[(day.isoformat(), "")]["api_requests"]
    model.stop_logging(midnight + timedelta(hours=9))
    model.resume_logging(midnight + timedelta(hours=13))
    kept = model.truth("total", day, day)[(day.isoformat(), "")]["api_requests"]
    missing = intraday_share(13 * 3600) - intraday_share(9 * 3600)
    assert kept == pytest.approx(full * (1 - missing), rel=0.1)
    assert model.truth("total", day + timedelta(days=1), TODAY)  # later days are whole again
    with serve(model) as client:
        logs = spend_logs(client, day)
    gap = ((midnight + timedelta(hours=9)).isoformat(), (midnight + timedelta(hours=13)).isoformat())
    assert logs and not any(gap[0] <= row["startTime"] < gap[1] for row in logs)


# ---------------------------------------------------------------------------------------------- late flush
def test_revise_day_scales_that_day_in_every_route_and_nothing_else() -> None:
    model = TrafficModel(config())
    day = TODAY - timedelta(days=4)
    iso = day.isoformat()
    with serve(model) as client:
        user_before, team_before = by_date(aggregated(client)), by_date(aggregated(client, "team"))
        paged_before = client.get("/user/daily/activity", params={**span(day, day), "page_size": 1000}).json()
        version = model.snapshot().version
        model.revise_day(day, 1.5)
        assert model.snapshot().version > version
        user_after, team_after = by_date(aggregated(client)), by_date(aggregated(client, "team"))
        paged_after = client.get("/user/daily/activity", params={**span(day, day), "page_size": 1000}).json()
    for before, after in ((user_before, user_after), (team_before, team_after)):
        assert set(before) == set(after)
        for d in before:
            if d != iso:
                assert after[d] == before[d]
        old, new = before[iso], after[iso]
        assert new["metrics"]["spend"] == pytest.approx(1.5 * old["metrics"]["spend"], rel=1e-9)
        assert new["metrics"]["api_requests"] == pytest.approx(1.5 * old["metrics"]["api_requests"], rel=0.02)
        assert_day_consistent(new)
        for name in ("models", "entities", "api_keys", "providers"):
            assert set(new["breakdown"][name]) == set(old["breakdown"][name])
            for entity, entry in new["breakdown"][name].items():
                was = old["breakdown"][name][entity]["metrics"]["spend"]
                assert entry["metrics"]["spend"] == pytest.approx(1.5 * was, rel=1e-9, abs=1e-12)
    paged_old = sum(r["metrics"]["spend"] for r in paged_before["results"])
    assert sum(r["metrics"]["spend"] for r in paged_after["results"]) == pytest.approx(1.5 * paged_old, rel=1e-9)
    truth = model.truth("total", day, day)[(iso, "")]
    assert truth["spend"] == pytest.approx(user_after[iso]["metrics"]["spend"], rel=1e-9)
    with pytest.raises(ValueError):
        model.revise_day(TODAY, 2.0)  # today is not complete
    with pytest.raises(ValueError):
        model.revise_day(day, 0.0)


# ---------------------------------------------------------------------------------------------- clock skew
@pytest.mark.parametrize("skew", [0.0, 3600.0, -5400.0])
def test_clock_skew_shifts_only_the_date_header(skew: float) -> None:
    model = TrafficModel(config(days=2))
    with serve(model, Faults(clock_skew_s=skew)) as client:
        r = client.get("/health/readiness")
        listed = client.get("/user/list", params={"page_size": 1})
    real = datetime.now(UTC)
    served = parsedate_to_datetime(r.headers["date"])
    assert abs((served - real).total_seconds() - skew) < 5
    assert abs((parsedate_to_datetime(listed.headers["date"]) - real).total_seconds() - skew) < 5
    assert (r.status_code, r.json()) == (200, {"status": "healthy", "db": "connected"})


# ---------------------------------------------------------------------------------------------- stored prompts
def test_store_prompts_puts_the_canary_in_spend_log_rows() -> None:
    model = TrafficModel(config(days=3))
    faults = Faults()
    day = TODAY - timedelta(days=1)
    with serve(model, faults) as client:
        plain = client.get("/spend/logs/v2", params={**span(day, day), "page_size": 50})
        faults.store_prompts = True
        stored = client.get("/spend/logs/v2", params={**span(day, day), "page_size": 50})
        activity = client.get("/user/daily/activity/aggregated", params=span(day, day))
    assert PROMPT_CANARY not in plain.text
    assert not any({"messages", "response", "proxy_server_request"} & set(row) for row in plain.json()["data"])
    rows = stored.json()["data"]
    assert rows and len(rows) == len(plain.json()["data"])
    for row in rows:
        assert PROMPT_CANARY in row["messages"][0]["content"]
        assert PROMPT_CANARY in row["response"]["choices"][0]["message"]["content"]
        assert row["proxy_server_request"]["messages"] == row["messages"]
    assert PROMPT_CANARY not in activity.text  # only the spend log rows carry prompts


# ---------------------------------------------------------------------------------------------- keys with roles
VIEWER, ADMIN, INTERNAL, NEWCOMER = "sk-viewer-0001", "sk-admin-0002", "sk-internal-0003", "sk-newcomer-0004"


@pytest.fixture(scope="module")
def roles_model() -> TrafficModel:
    return TrafficModel(config())


def _internal_user(model: TrafficModel) -> tuple[str, str]:
    """A user with traffic and a team, and a team they are not in."""
    users = {u for _, u in model.truth("user", START, TODAY)} - {"Unassigned"}
    user = next(u for u in model.users if u.user_id in users and u.teams)
    other = next(t.team_id for t in model.teams if t.team_id not in user.teams)
    return user.user_id, other


@pytest.fixture(scope="module")
def roles(roles_model: TrafficModel) -> Iterator[tuple[SimulatorServer, dict[str, Caller]]]:
    me, _ = _internal_user(roles_model)
    callers = {
        VIEWER: Caller("sentinel-viewer", "proxy_admin_viewer"),
        ADMIN: Caller("ops-admin", "proxy_admin"),
        INTERNAL: Caller(me, "internal_user"),
        NEWCOMER: Caller("newcomer", "internal_user"),
    }
    server = SimulatorServer(roles_model, api_key=KEY, callers=callers)
    with server.running():
        yield server, callers


def get(server: SimulatorServer, key: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_admin_roles_read_like_the_master_key_but_user_info_is_their_own(
    roles: tuple[SimulatorServer, dict[str, Caller]], roles_model: TrafficModel
) -> None:
    server, callers = roles
    master = get(server, KEY, "/user/info").json()
    assert master["user_id"] == "default_user_id"
    assert master["user_info"]["user_role"] == "internal_user"  # sic, as the real proxy stores it
    for key, role in ((VIEWER, "proxy_admin_viewer"), (ADMIN, "proxy_admin")):
        info = get(server, key, "/user/info").json()
        assert info["user_id"] == callers[key].user_id == info["user_info"]["user_id"]
        assert info["user_info"]["user_role"] == role
        assert len(info["keys"]) == len(roles_model.keys) + len(callers)  # the admin view: every key
        assert len(info["teams"]) == len(roles_model.teams)
        for path, params in (
            ("/user/daily/activity/aggregated", span()),
            ("/team/daily/activity/aggregated", span()),
            ("/user/list", {"page_size": 100}),
            ("/v2/team/list", {"page_size": 100}),
            ("/key/list", {"size": 100}),
            ("/spend/logs/v2", {**span(TODAY, TODAY), "page_size": 5}),
        ):
            mine, masters = get(server, key, path, **params), get(server, KEY, path, **params)
            assert mine.status_code == 200 and mine.content == masters.content, path


def test_caller_users_and_keys_are_listed_like_any_other(
    roles: tuple[SimulatorServer, dict[str, Caller]], roles_model: TrafficModel
) -> None:
    server, callers = roles
    users = get(server, KEY, "/user/list", page_size=100).json()
    by_id = {u["user_id"]: u for u in users["users"]}
    assert users["total"] == len(roles_model.users) + 3  # the internal caller is an existing user
    assert by_id["sentinel-viewer"]["user_role"] == "proxy_admin_viewer"
    assert by_id["sentinel-viewer"]["key_count"] == 1 and by_id["sentinel-viewer"]["spend"] == 0.0
    me = callers[INTERNAL].user_id
    own = [k for k in roles_model.keys if k.user_id == me]
    assert by_id[me]["key_count"] == len(own) + 1
    keys = get(server, KEY, "/key/list", size=100).json()
    assert keys["total_count"] == len(roles_model.keys) + len(callers)
    assert hashlib.sha256(VIEWER.encode()).hexdigest() in keys["keys"]


def test_internal_user_is_refused_the_admin_lists(roles: tuple[SimulatorServer, dict[str, Caller]]) -> None:
    server, callers = roles
    me = callers[INTERNAL].user_id
    r = get(server, INTERNAL, "/user/list", page_size=1)
    assert (r.status_code, r.json()) == (
        403,
        {"detail": {"error": "Only proxy admins and organization admins can list users."}},
    )
    refused = {"detail": {"error": "Only admin users can query all teams/other teams. Your user role=internal_user"}}
    for path in ("/team/list", "/v2/team/list"):
        r = get(server, INTERNAL, path)
        assert (r.status_code, r.json()) == (401, refused), path
        assert get(server, INTERNAL, path, user_id="default_user_id").status_code == 401
    teams = get(server, INTERNAL, "/v2/team/list", user_id=me).json()
    assert teams["total"] >= 1 and all(me in [m["user_id"] for m in t["members_with_roles"]] for t in teams["teams"])
    r = get(server, INTERNAL, "/user/info", user_id="default_user_id")
    assert r.status_code == 403
    assert r.json()["error"] == {
        "message": f"key not allowed to access this user's info. user_id=default_user_id, key's user_id={me}",
        "type": "auth_error",
        "param": "None",
        "code": "403",
    }
    r = get(server, INTERNAL, "/key/list", user_id="default_user_id")
    assert r.status_code == 403 and r.json()["error"]["param"] == "user_id"
    r = get(server, INTERNAL, "/user/daily/activity/aggregated", **span(), user_id="default_user_id")
    assert (r.status_code, r.json()) == (
        403,
        {"detail": {"error": "Non-admin users can only view their own spend data."}},
    )
    r = get(server, "sk-unknown", "/user/info")
    assert r.status_code == 401 and r.json()["error"]["type"] == "token_not_found_in_db"
    assert httpx.get(server.url + "/health/readiness").status_code == 200


def test_internal_user_sees_only_their_own_rows(
    roles: tuple[SimulatorServer, dict[str, Caller]], roles_model: TrafficModel
) -> None:
    server, callers = roles
    me, not_mine = _internal_user(roles_model)
    assert callers[INTERNAL].user_id == me
    info = get(server, INTERNAL, "/user/info").json()
    assert info["user_id"] == me and info["user_info"]["user_role"] == "internal_user"
    assert {k["user_id"] for k in info["keys"]} == {me}
    own = get(server, INTERNAL, "/user/daily/activity/aggregated", **span()).json()
    filtered = get(server, KEY, "/user/daily/activity/aggregated", **span(), user_id=me).json()
    assert own["results"] and own == filtered
    assert all(set(r["breakdown"]["entities"]) == {me} for r in own["results"])
    paged = get(server, INTERNAL, "/user/daily/activity", **span(), page_size=1000).json()
    assert {e for r in paged["results"] for e in r["breakdown"]["entities"]} == {me}
    # team routes: only the rows of the caller's own keys
    my_team_keys = {k.token for k in roles_model.keys if k.user_id == me and k.team_id is not None}
    team = get(server, INTERNAL, "/team/daily/activity/aggregated", **span()).json()
    everyone = get(server, KEY, "/team/daily/activity/aggregated", **span()).json()
    seen = {k for r in team["results"] for k in r["breakdown"]["api_keys"]}
    assert seen and seen <= my_team_keys
    assert team["metadata"]["total_spend"] < everyone["metadata"]["total_spend"]
    truth = roles_model.truth("key", START, TODAY)
    assert team["metadata"]["total_spend"] == pytest.approx(
        sum(v["spend"] for (_, k), v in truth.items() if k in my_team_keys)
    )
    r = get(server, INTERNAL, "/team/daily/activity/aggregated", **span(), team_ids=not_mine)
    assert r.status_code == 404 and "User does not belong to Team=" in r.json()["detail"]["error"]
    keys = get(server, INTERNAL, "/key/list", size=100).json()
    own_keys = {k.token for k in roles_model.keys if k.user_id == me} | {hashlib.sha256(INTERNAL.encode()).hexdigest()}
    assert set(keys["keys"]) == own_keys and keys["total_count"] == len(own_keys)
    logs = get(server, INTERNAL, "/spend/logs/v2", **span(TODAY - timedelta(days=1), TODAY), page_size=1000).json()
    assert logs["data"] and all(row["user"] == me for row in logs["data"])
    newcomer = get(server, NEWCOMER, "/user/daily/activity/aggregated", **span()).json()
    assert newcomer["results"] == [] and newcomer["metadata"]["total_spend"] == 0.0
    assert get(server, NEWCOMER, "/user/info").json()["user_id"] == "newcomer"


def test_caller_configuration_errors(roles_model: TrafficModel) -> None:
    with pytest.raises(ValueError):
        Caller("x", "org_admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SimulatorServer(roles_model, api_key=KEY, callers={KEY: Caller("x", "proxy_admin_viewer")})
