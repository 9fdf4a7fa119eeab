"""The LiteLLM simulator, exercised over real HTTP on 127.0.0.1: responses must reproduce the model's
ground truth, follow the API contract (pagination, caps, errors, auth) and be deterministic."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from sentinel.simulator import DailyActivity, Faults, Params, SimulatorServer, TrafficConfig, TrafficModel
from sentinel.simulator.encode import MetricsEncoder
from sentinel.simulator.encode import metrics as spend_metrics
from sentinel.simulator.truth import Grain, TruthTable

KEY = "sk-sim-master"
NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
START = date(2026, 10, 13)  # the whole 45-day range
FIXTURES = Path("/work/shared/litellm/fixtures")
SPEND_METRICS = (
    "spend",
    "flat_cost",
    "ptu_hours",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "compression_saved_tokens",
    "compression_savings_spend",
    "prompt_caching_savings_spend",
    "gateway_injected_caching_savings_spend",
    "autorouter_savings_spend",
    "total_tokens",
    "successful_requests",
    "failed_requests",
    "api_requests",
    "total_response_time_ms",
    "timed_requests",
)
Json = dict[str, Any]


def small_config(**overrides: Any) -> TrafficConfig:
    values: Json = {"seed": 3, "users": 10, "teams": 3, "days": 45, "now": NOW}
    values.update(overrides)
    return TrafficConfig(**values)


@pytest.fixture(scope="module")
def model() -> TrafficModel:
    return TrafficModel(small_config())


@pytest.fixture(scope="module")
def server(model: TrafficModel) -> Iterator[SimulatorServer]:
    srv = SimulatorServer(model, api_key=KEY)
    with srv.running():
        yield srv


@pytest.fixture(scope="module")
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        yield c


# ---------------------------------------------------------------------------------------------- helpers
def fetch_all(client: httpx.Client, path: str, **params: Any) -> list[Json]:
    pages, page = [], 1
    while True:
        r = client.get(path, params={**params, "page": page})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body)
        if not body["metadata"]["has_more"]:
            return pages
        page += 1


def _add_metrics(acc: Json, metrics: Json) -> None:
    for name, value in metrics.items():
        acc[name] = acc.get(name, 0) + value


def _merge_entry(acc: Json, entry: Json) -> None:
    _add_metrics(acc.setdefault("metrics", {}), entry["metrics"])
    acc["metadata"] = entry["metadata"]
    for key, sub in entry.get("api_key_breakdown", {}).items():
        _merge_entry(acc.setdefault("api_key_breakdown", {}).setdefault(key, {}), sub)


def merge_by_date(results: list[Json]) -> dict[str, Json]:
    """The client's job on the paginated route: add metrics, merge every breakdown map key-wise."""
    days: dict[str, Json] = {}
    for result in results:
        day = days.setdefault(result["date"], {"metrics": {}, "breakdown": {}})
        _add_metrics(day["metrics"], result["metrics"])
        for name, entries in result["breakdown"].items():
            target = day["breakdown"].setdefault(name, {})
            for key, entry in entries.items():
                _merge_entry(target.setdefault(key, {}), entry)
    return days


def observed(days: dict[str, Json], grain: Grain) -> dict[tuple[str, str], Json]:
    out: dict[tuple[str, str], Json] = {}
    for iso, day in days.items():
        b = day["breakdown"]
        if grain == "total":
            out[(iso, "")] = day["metrics"]
        elif grain == "model_key":
            for model_name, entry in b["models"].items():
                for key, sub in entry["api_key_breakdown"].items():
                    out[(iso, f"{model_name}\x1f{key}")] = sub["metrics"]
        else:
            name = {
                "user": "entities",
                "team": "entities",
                "model": "models",
                "model_group": "model_groups",
                "provider": "providers",
                "endpoint": "endpoints",
                "key": "api_keys",
            }[grain]
            for entity, entry in b[name].items():
                out[(iso, entity)] = entry["metrics"]
    return out


def assert_matches(truth: TruthTable, seen: dict[tuple[str, str], Json]) -> None:
    assert truth, "empty truth: the test would prove nothing"
    assert set(seen) == set(truth)
    for cell, expected in truth.items():
        got = seen[cell]
        for name, value in expected.items():
            if name == "spend":
                assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-6), (cell, name)
            else:
                assert got[name] == value, (cell, name)
        assert got["total_tokens"] == expected["prompt_tokens"] + expected["completion_tokens"]


# ---------------------------------------------------------------------------------------------- pagination
def test_paginated_route_merged_by_date_reproduces_truth(client: httpx.Client, model: TrafficModel) -> None:
    pages = fetch_all(
        client, "/user/daily/activity", start_date=START.isoformat(), end_date=TODAY.isoformat(), page_size=13
    )
    rows = sum(b.rows for b in model.snapshot().between(START, TODAY))
    assert len(pages) == pages[0]["metadata"]["total_pages"] == math.ceil(rows / 13)
    dates_per_page = [[r["date"] for r in p["results"]] for p in pages]
    pages_per_date: dict[str, int] = {}
    for dates in dates_per_page:
        assert dates == sorted(dates, reverse=True)  # date DESC within a page
        for d in dates:
            pages_per_date[d] = pages_per_date.get(d, 0) + 1
    spanning = [d for d, n in pages_per_date.items() if n >= 2]
    assert len(spanning) > 0.8 * len(pages_per_date), "dates should span several pages at this page size"
    for page in pages:  # metadata totals are per page
        assert page["metadata"]["total_spend"] == pytest.approx(sum(r["metrics"]["spend"] for r in page["results"]))
        assert page["metadata"]["total_api_keys"] is None
    days = merge_by_date([r for p in pages for r in p["results"]])
    for grain in ("total", "user", "model", "model_group", "provider", "endpoint", "key", "model_key"):
        assert_matches(model.truth(grain, START, TODAY), observed(days, grain))
    assert "Unassigned" in {e for _, e in observed(days, "user")}  # service keys have no user


def test_aggregated_route_equals_truth(client: httpx.Client, model: TrafficModel) -> None:
    r = client.get(
        "/user/daily/activity/aggregated",
        params={"start_date": START.isoformat(), "end_date": TODAY.isoformat(), "api_key_limit": 1000},
    )
    body = r.json()
    meta = body["metadata"]
    assert (meta["page"], meta["total_pages"], meta["has_more"], meta["api_key_limit"]) == (1, 1, False, 1000)
    days = {res["date"]: res for res in body["results"]}
    assert list(days) == sorted(days, reverse=True)
    for grain in ("total", "user", "model", "model_group", "provider", "endpoint", "key", "model_key"):
        assert_matches(model.truth(grain, START, TODAY), observed(days, grain))
    truth_total = model.truth("total", START, TODAY)
    assert meta["total_spend"] == pytest.approx(sum(v["spend"] for v in truth_total.values()))
    assert meta["total_api_keys"] == len({k for _, k in model.truth("key", START, TODAY)})


def test_team_routes_equal_team_truth(client: httpx.Client, model: TrafficModel) -> None:
    truth = model.truth("team", START, TODAY)
    pages = fetch_all(client, "/team/daily/activity", start_date=START.isoformat(), end_date=TODAY.isoformat())
    assert pages[0]["metadata"]["total_pages"] > 10  # default page_size 10
    assert_matches(truth, observed(merge_by_date([r for p in pages for r in p["results"]]), "team"))
    body = client.get(
        "/team/daily/activity/aggregated", params={"start_date": START.isoformat(), "end_date": TODAY.isoformat()}
    ).json()
    days = {res["date"]: res for res in body["results"]}
    assert_matches(truth, observed(days, "team"))
    aliases = {t.team_id: t.team_alias for t in model.teams}
    for day in days.values():
        for team_id, entry in day["breakdown"]["entities"].items():
            assert entry["metadata"] == {"team_alias": aliases[team_id]}
    # the key without a team is in the user table only
    orphan = next(k.token for k in model.keys if k.team_id is None)
    assert any(orphan == k for _, k in model.truth("key", START, TODAY))
    assert all(orphan not in day["breakdown"]["api_keys"] for day in days.values())
    one = model.teams[1].team_id
    only = client.get(
        "/team/daily/activity/aggregated",
        params={"start_date": START.isoformat(), "end_date": TODAY.isoformat(), "team_ids": one},
    ).json()
    assert_matches(
        {c: v for c, v in truth.items() if c[1] == one}, observed({r["date"]: r for r in only["results"]}, "team")
    )


def test_api_key_limit_caps_per_key_maps_only(client: httpx.Client, model: TrafficModel) -> None:
    start = TODAY - timedelta(days=6)
    body = client.get(
        "/user/daily/activity/aggregated",
        params={"start_date": start.isoformat(), "end_date": TODAY.isoformat(), "api_key_limit": 3},
    ).json()
    key_truth = model.truth("key", start, TODAY)
    spend: dict[str, float] = {}
    for (_, key), metrics in key_truth.items():
        spend[key] = spend.get(key, 0.0) + float(metrics["spend"])
    top = set(sorted(spend, key=lambda k: (-spend[k], k))[:3])
    meta = body["metadata"]
    assert meta["api_key_limit"] == 3 and meta["total_api_keys"] == len(spend) > 3
    owners = {k.token: k.user_id or "Unassigned" for k in model.keys}
    per_user: dict[str, set[str]] = {}
    for key in spend:
        per_user.setdefault(owners[key], set()).add(key)
    assert meta["entity_total_api_keys"] == {u: len(keys) for u, keys in per_user.items()}
    days = {r["date"]: r for r in body["results"]}
    for day in days.values():
        b = day["breakdown"]
        assert set(b["api_keys"]) <= top
        for name in ("models", "model_groups", "providers", "endpoints", "entities"):
            for entry in b[name].values():
                assert set(entry["api_key_breakdown"]) <= top
    # totals, models and entities still cover every key
    for grain in ("total", "user", "model", "provider"):
        assert_matches(model.truth(grain, start, TODAY), observed(days, grain))


def test_filters_narrow_rows(client: httpx.Client, model: TrafficModel) -> None:
    start = TODAY - timedelta(days=9)
    span = {"start_date": start.isoformat(), "end_date": TODAY.isoformat()}
    key_model = model.truth("model_key", start, TODAY)
    model_name, token = next(iter(key_model))[1].split("\x1f")
    by_model = client.get("/user/daily/activity/aggregated", params={**span, "model": model_name}).json()
    assert_matches(
        {c: v for c, v in model.truth("model", start, TODAY).items() if c[1] == model_name},
        observed({r["date"]: r for r in by_model["results"]}, "model"),
    )
    by_key = merge_by_date(
        [r for p in fetch_all(client, "/user/daily/activity", **span, api_key=token) for r in p["results"]]
    )
    assert_matches(
        {c: v for c, v in model.truth("key", start, TODAY).items() if c[1] == token}, observed(by_key, "key")
    )
    user = next(u for _, u in model.truth("user", start, TODAY) if u != "Unassigned")
    by_user = client.get("/user/daily/activity/aggregated", params={**span, "user_id": user}).json()
    assert_matches(
        {c: v for c, v in model.truth("user", start, TODAY).items() if c[1] == user},
        observed({r["date"]: r for r in by_user["results"]}, "user"),
    )
    none = client.get("/user/daily/activity", params={**span, "model": "unknown-model"}).json()
    assert none["results"] == [] and none["metadata"]["total_pages"] == 0 and not none["metadata"]["has_more"]


def test_every_spend_metrics_field_in_every_nested_object(client: httpx.Client, model: TrafficModel) -> None:
    body = client.get(
        "/user/daily/activity", params={"start_date": TODAY.isoformat(), "end_date": TODAY.isoformat(), "page_size": 5}
    ).json()
    if (FIXTURES / "user_daily_activity.json").exists():
        fixture = json.loads((FIXTURES / "user_daily_activity.json").read_text())
        assert tuple(fixture["results"][0]["metrics"]) == SPEND_METRICS
        assert list(body["metadata"]) == list(fixture["metadata"])
        assert list(body["results"][0]["breakdown"]) == list(fixture["results"][0]["breakdown"])
    result = body["results"][0]
    assert tuple(result["metrics"]) == SPEND_METRICS
    b = result["breakdown"]
    assert b["mcp_servers"] == {}
    for name in ("models", "model_groups", "providers", "endpoints", "entities"):
        for entry in b[name].values():
            assert tuple(entry["metrics"]) == SPEND_METRICS
            assert set(entry) == {"metrics", "metadata", "api_key_breakdown"}
            for sub in entry["api_key_breakdown"].values():
                assert tuple(sub["metrics"]) == SPEND_METRICS
    for entry in b["api_keys"].values():
        assert set(entry["metadata"]) == {"key_alias", "team_id", "user_id", "user_email", "key_exists"}
    for user, entry in b["entities"].items():
        assert set(entry["metadata"]) == {"user_email", "user_alias"}
        if user != "Unassigned":
            assert entry["metadata"]["user_email"] == f"{user}@example.com"


def test_body_size_is_realistic(client: httpx.Client, model: TrafficModel) -> None:
    start = TODAY - timedelta(days=14)
    r = client.get(
        "/user/daily/activity/aggregated",
        params={
            "start_date": start.isoformat(),
            "end_date": (TODAY - timedelta(days=1)).isoformat(),
            "api_key_limit": 1000,
        },
    )
    user_days = len(model.truth("user", start, TODAY - timedelta(days=1)))
    assert 4_000 < len(r.content) / user_days < 12_000  # real proxy: ~6.5 KB per user-day


# ---------------------------------------------------------------------------------------------- errors and auth
@pytest.mark.parametrize(
    ("params", "status", "body"),
    [
        ({}, 400, {"detail": {"error": "Please provide start_date and end_date"}}),
        ({"start_date": "2026-11-01"}, 400, {"detail": {"error": "Please provide start_date and end_date"}}),
        (
            {"start_date": "2026-9-1", "end_date": "2026-11-01"},
            400,
            {"detail": {"error": "start_date and end_date must be valid YYYY-MM-DD dates"}},
        ),
        (
            {"start_date": "20261101", "end_date": "2026-11-01"},
            400,
            {"detail": {"error": "start_date and end_date must be valid YYYY-MM-DD dates"}},
        ),
    ],
)
def test_date_errors(client: httpx.Client, params: Json, status: int, body: Json) -> None:
    for path in ("/user/daily/activity", "/user/daily/activity/aggregated", "/team/daily/activity"):
        r = client.get(path, params=params)
        assert (r.status_code, r.json()) == (status, body)


def test_validation_errors(client: httpx.Client) -> None:
    span = {"start_date": "2026-11-20", "end_date": "2026-11-19"}
    r = client.get("/user/daily/activity", params=span)
    assert r.status_code == 400 and "error" in r.json()["detail"]
    ok = {"start_date": "2026-11-19", "end_date": "2026-11-20"}
    r = client.get("/user/daily/activity", params={**ok, "page_size": 1001})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["query", "page_size"],
                "msg": "Input should be less than or equal to 1000",
                "input": "1001",
                "ctx": {"le": 1000},
            }
        ]
    }
    assert client.get("/team/daily/activity", params={**ok, "page_size": 5000}).status_code == 200  # no max
    assert client.get("/user/daily/activity", params={**ok, "page": 0}).status_code == 422
    assert client.get("/user/daily/activity", params={**ok, "page": "x"}).json()["detail"][0]["type"] == "int_parsing"
    assert client.get("/user/daily/activity/aggregated", params={**ok, "api_key_limit": 0}).status_code == 422
    assert client.get("/user/list", params={"page_size": 101}).status_code == 422
    assert client.get("/key/list", params={"size": 101}).status_code == 422
    r = client.get("/nope")
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    assert client.post("/user/daily/activity", json={}).status_code == 405
    beyond = client.get("/user/daily/activity", params={**ok, "page": 999}).json()
    assert beyond["results"] == [] and beyond["metadata"]["has_more"] is False


def test_auth(server: SimulatorServer) -> None:
    url = server.url + "/user/list"

    def error(headers: dict[str, str]) -> tuple[int, Json]:
        r = httpx.get(url, headers=headers)
        return r.status_code, r.json()

    status, body = error({})
    assert status == 401 and body["error"]["message"] == "Authentication Error, No api key passed in."
    assert body["error"]["code"] == "401" and body["error"]["type"] == "auth_error"
    status, body = error({"Authorization": KEY})
    assert status == 401 and "Malformed API Key" in body["error"]["message"]
    status, body = error({"Authorization": "Bearer sk-wrong"})
    assert (status, body["error"]["type"], body["error"]["param"]) == (401, "token_not_found_in_db", "key")
    assert httpx.get(url, headers={"x-litellm-api-key": KEY}).status_code == 200
    assert (
        httpx.get(url, headers={"x-litellm-api-key": f"Bearer {KEY}", "Authorization": "Bearer bad"}).status_code == 200
    )  # x-litellm-api-key wins
    r = httpx.get(server.url + "/health/readiness")
    assert (r.status_code, r.json()) == (200, {"status": "healthy", "db": "connected"})
    logged = repr(server.access_log)
    assert KEY not in logged and "sk-wrong" not in logged


def test_access_log_records_every_request(model: TrafficModel, tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    srv = SimulatorServer(model, api_key=KEY, access_log=path)
    with srv.running() as url:
        httpx.get(url + "/user/list", params={"page": 1}, headers={"Authorization": f"Bearer {KEY}"})
        httpx.post(url + "/user/list")
        httpx.get(url + "/x")
    log = srv.access_log
    assert [(a.method, a.path, a.status) for a in log] == [
        ("GET", "/user/list", 200),
        ("POST", "/user/list", 405),
        ("GET", "/x", 404),
    ]
    assert log[0].query == {"page": "1"} and log[0].bytes > 100
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [entry["status"] for entry in lines] == [200, 405, 404]
    assert KEY not in path.read_text()


# ---------------------------------------------------------------------------------------------- faults
def test_faults(model: TrafficModel) -> None:
    faults = Faults(seed=1)
    srv = SimulatorServer(model, api_key=KEY, faults=faults)
    span = {"start_date": "2026-11-20", "end_date": "2026-11-26"}
    with srv.running() as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        faults.push(
            429,
            {"error": {"message": "slow down", "type": "throttling", "param": None, "code": "429"}},
            {"Retry-After": "2"},
        )
        faults.push(503, None)
        r = c.get("/user/daily/activity", params=span)
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert c.get("/user/daily/activity", params=span).status_code == 503
        assert c.get("/user/daily/activity", params=span).status_code == 200
        faults.error_rate = 1.0
        r = c.get("/user/daily/activity/aggregated", params=span)
        assert r.status_code == 500 and r.json()["detail"]["error"].startswith("Failed to fetch analytics")
        faults.error_rate = 0.0
        faults.malformed_rate = 1.0
        r = c.get("/user/daily/activity", params=span)
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.text)
        faults.malformed_rate = 0.0
        faults.db_connected = False
        r = c.get("/user/daily/activity/aggregated", params=span)
        assert r.status_code == 400 and r.json()["detail"]["error"].startswith("DB not connected")
        r = c.get("/health/readiness")
        assert (r.status_code, r.json()["db"]) == (503, "Not connected")
        faults.db_connected = True
        faults.unstable_order = True
        pages = fetch_all(c, "/user/daily/activity", **span, page_size=7)
        merged = observed(merge_by_date([r for p in pages for r in p["results"]]), "key")
        truth = model.truth("key", date(2026, 11, 20), TODAY)
        assert merged != {cell: {**v, "total_tokens": 0} for cell, v in truth.items()}
        mismatched = [cell for cell in truth if merged.get(cell, {}).get("api_requests") != truth[cell]["api_requests"]]
        assert mismatched, "pre-#30164 ordering must skip or duplicate rows across pages"


def test_grow_today_per_request() -> None:
    model = TrafficModel(small_config(days=5))
    faults = Faults(grow_today_per_request=timedelta(minutes=30))
    srv = SimulatorServer(model, api_key=KEY, faults=faults)
    today = {"start_date": TODAY.isoformat(), "end_date": TODAY.isoformat()}
    with srv.running() as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        first = c.get("/user/daily/activity/aggregated", params=today).json()["metadata"]["total_api_requests"]
        second = c.get("/user/daily/activity/aggregated", params=today).json()["metadata"]["total_api_requests"]
        assert c.get("/user/list").status_code == 200  # not a daily-activity route: no growth
    assert second > first
    assert model.now == NOW + timedelta(hours=1)


# ---------------------------------------------------------------------------------------------- model
def test_determinism() -> None:
    a, b = TrafficModel(small_config(days=10)), TrafficModel(small_config(days=10))
    other = TrafficModel(small_config(days=10, seed=4))
    bodies = []
    for m in (a, b, other):
        with (
            SimulatorServer(m, api_key=KEY).running() as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c,
        ):
            span = {"start_date": "2026-11-17", "end_date": "2026-11-26"}
            bodies.append(
                [
                    c.get("/user/daily/activity/aggregated", params=span).content,
                    c.get("/user/daily/activity", params={**span, "page": 2, "page_size": 9}).content,
                    c.get("/key/list", params={"return_full_object": "true", "size": 100}).content,
                    c.get("/v2/team/list").content,
                    c.get("/user/list").content,
                    c.get("/spend/logs/v2", params=span).content,
                ]
            )
    assert bodies[0] == bodies[1]
    assert bodies[0][0] != bodies[2][0]
    assert [(e.kind, e.entity_id, e.start) for e in a.events] == [(e.kind, e.entity_id, e.start) for e in b.events]


def test_advance_grows_today_only() -> None:
    m = TrafficModel(small_config(days=8, now=NOW.replace(hour=6)))  # early: most rows not yet started
    before = {g: m.truth(g, TODAY - timedelta(days=7), TODAY) for g in ("user", "model_key", "total")}
    old = m.snapshot().blocks[TODAY]
    old_ids = {old.row_id(i) for i in range(old.rows)}
    m.advance(NOW + timedelta(hours=3))
    after = {g: m.truth(g, TODAY - timedelta(days=7), TODAY) for g in ("user", "model_key", "total")}
    new = m.snapshot().blocks[TODAY]
    new_ids = {new.row_id(i) for i in range(new.rows)}
    assert old_ids < new_ids, "existing rows keep their ids, new row combinations appear"
    for grain, cells in before.items():
        for cell, metrics in cells.items():
            if cell[0] != TODAY.isoformat():
                assert after[grain][cell] == metrics  # history untouched
            else:
                assert all(after[grain][cell][k] >= v for k, v in metrics.items())  # counters only grow
    assert after["total"][(TODAY.isoformat(), "")]["spend"] > before["total"][(TODAY.isoformat(), "")]["spend"]
    with pytest.raises(ValueError):
        m.advance(NOW)
    m.advance(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))  # past midnight: today is final, a new date opens
    assert m.today == date(2026, 11, 27) and m.dates[-1] == date(2026, 11, 27)
    full = m.snapshot().blocks[TODAY]
    assert full.ints[:, 4].sum() >= new.ints[:, 4].sum()


@pytest.mark.parametrize("full", [True, False])
def test_metrics_encoder_prints_what_orjson_prints(full: bool) -> None:
    rng = np.random.default_rng(1)
    ints = rng.integers(0, 10**12, size=(300, 8))
    floats = rng.random((300, 2)) * 10.0 ** rng.integers(-12, 18, size=(300, 2))
    floats[:4] = [[0.0, 5e-324], [1e16, 1e-7], [2.5e-05, 123.456], [1.0, 1e300]]  # exponent and edge forms
    expected = [orjson.dumps(spend_metrics(i, f, full)) for i, f in zip(ints.tolist(), floats.tolist(), strict=True)]
    assert MetricsEncoder(full).encode(ints, floats) == expected


def test_cached_rows_follow_the_clock() -> None:
    """Serialised rows are cached per date; once the clock moves, today's answers must be a cold build's."""
    m = TrafficModel(small_config(days=4))
    span = {"start_date": (TODAY - timedelta(days=3)).isoformat(), "end_date": TODAY.isoformat()}

    def answers(daily: DailyActivity) -> list[bytes]:
        snap = m.snapshot()
        return [
            daily.paginated("user", Params({**span, "page_size": "7", "page": "2"}), snap, None),
            daily.paginated("team", Params({**span, "page_size": "1000"}), snap, None),
            daily.aggregated("user", Params({**span, "api_key_limit": "2"}), snap),
            daily.aggregated("team", Params(span), snap),
        ]

    warm = DailyActivity(m)
    before = answers(warm)
    m.advance(NOW + timedelta(hours=3))
    after = answers(warm)
    assert after == answers(DailyActivity(m))
    assert all(a != b for a, b in zip(after, before, strict=True))
    assert all(orjson.dumps(orjson.loads(body)) == body for body in after)  # exactly what orjson would print


def test_events_are_injected_and_visible(model: TrafficModel) -> None:
    kinds = {e.kind for e in model.events}
    assert kinds >= {
        "spike",
        "runaway",
        "model_switch",
        "provider_outage",
        "level_shift",
        "holiday",
        "month_end_peak",
        "volatile",
        "new_user",
    }
    for e in model.events:
        assert e.is_anomaly == (e.kind in {"spike", "runaway", "model_switch", "provider_outage", "level_shift"})
        assert START <= e.start <= e.end <= TODAY and e.description
    users = model.truth("user", START, TODAY)
    spike = next(e for e in model.events if e.kind == "spike")
    series = [v["spend"] for (d, u), v in users.items() if u == spike.entity_id and d != spike.start.isoformat()]
    assert users[(spike.start.isoformat(), spike.entity_id)]["spend"] > 3 * sorted(series)[len(series) // 2]
    outage = next(e for e in model.events if e.kind == "provider_outage")
    providers = model.truth("provider", outage.start, outage.end)
    azure = [v for (_, p), v in providers.items() if p == outage.entity_id]
    assert azure and all(v["spend"] == 0 and v["failed_requests"] == v["api_requests"] > 0 for v in azure)
    runaway = next(e for e in model.events if e.kind == "runaway")
    keys = model.truth("key", runaway.start, runaway.end)
    ramp = [
        keys[(d.isoformat(), runaway.entity_id)]["api_requests"]
        for d in (runaway.start + timedelta(days=i) for i in range(4))
    ]
    assert ramp == sorted(ramp) and ramp[-1] > 5 * ramp[0]
    switch = next(e for e in model.events if e.kind == "model_switch")
    owned = {k.token for k in model.keys if k.user_id == switch.entity_id}
    per_model = model.truth("model_key", switch.start, TODAY)
    models_after = {cell[1].split("\x1f")[0] for cell in per_model if cell[1].split("\x1f")[1] in owned}
    assert "openai/gpt-4o" in models_after and "openai/gpt-4o-mini" not in models_after
    holiday = next(e for e in model.events if e.kind == "holiday")
    total = model.truth("total", START, TODAY)
    week_after = total[((holiday.start + timedelta(days=7)).isoformat(), "")]["spend"]
    assert total[(holiday.start.isoformat(), "")]["spend"] < 0.5 * week_after


def test_weekly_seasonality() -> None:
    m = TrafficModel(TrafficConfig(seed=9, users=40, teams=4, days=63, now=NOW, inject_anomalies=False))
    total = m.truth("total", TODAY - timedelta(days=62), TODAY - timedelta(days=1))
    weekday = [v["spend"] for (d, _), v in total.items() if date.fromisoformat(d).weekday() < 5]
    weekend = [v["spend"] for (d, _), v in total.items() if date.fromisoformat(d).weekday() >= 5]
    ratio = (sum(weekend) / len(weekend)) / (sum(weekday) / len(weekday))
    assert 0.2 < ratio < 0.5
    assert not any(e.is_anomaly for e in m.events)


# ---------------------------------------------------------------------------------------------- lists and budgets
def test_budgets_and_lists(client: httpx.Client, model: TrafficModel) -> None:
    teams = client.get("/v2/team/list", params={"page_size": 100}).json()
    assert teams["total"] == len(model.teams) and teams["total_pages"] == 1
    by_id = {t["team_id"]: t for t in teams["teams"]}
    for team in model.teams:
        state = model.budget_state("team", team.team_id)
        row = by_id[team.team_id]
        assert row["spend"] == pytest.approx(state.spend)
        assert row["max_budget"] == team.max_budget and row["budget_duration"] == team.budget_duration
        if state.budget_reset_at is not None:
            assert row["budget_reset_at"] == state.budget_reset_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    breach, near = model.teams[0], model.teams[1]
    assert (breach.budget_duration, near.budget_duration) == ("1mo", "30d")
    assert by_id[breach.team_id]["budget_reset_at"] == "2026-12-01T00:00:00Z"
    days_left = (datetime(2026, 12, 1, tzinfo=UTC) - NOW).total_seconds() / 86400
    for team, low, high in ((breach, 1.02, 3.0), (near, 0.85, 1.0)):
        state = model.budget_state("team", team.team_id)
        mask_keys = {k.token for k in model.keys if k.team_id == team.team_id}
        recent = model.truth("key", TODAY - timedelta(days=7), TODAY - timedelta(days=1))
        rate = sum(v["spend"] for (_, k), v in recent.items() if k in mask_keys) / 7
        assert team.max_budget is not None and state.spend < team.max_budget
        assert low < (state.spend + rate * days_left) / team.max_budget < high
    weekly = next(t for t in teams["teams"] if t["budget_duration"] == "7d")
    assert weekly["budget_reset_at"] == "2026-11-30T00:00:00Z"  # next Monday
    bare = client.get("/team/list").json()
    assert isinstance(bare, list) and [t["team_alias"] for t in bare] == sorted(t.team_alias for t in model.teams)
    assert {"members_with_roles", "team_memberships", "keys"} <= set(bare[0])

    users, page = [], 1
    while True:
        body = client.get("/user/list", params={"page": page, "page_size": 4}).json()
        users += body["users"]
        if page >= body["total_pages"]:
            break
        page += 1
    assert len(users) == body["total"] == len(model.users)
    for row in users:
        state = model.budget_state("user", row["user_id"])
        assert row["spend"] == pytest.approx(state.spend) and "soft_budget" not in row
    info = client.get("/user/info", params={"user_id": users[0]["user_id"]}).json()
    assert info["user_info"]["user_id"] == users[0]["user_id"]
    assert client.get("/user/info", params={"user_id": "nobody"}).status_code == 404

    keys = client.get("/key/list", params={"return_full_object": "true", "size": 100}).json()
    assert keys["total_count"] == len(model.keys)
    with_table = [k for k in keys["keys"] if k["litellm_budget_table"] is not None]
    # As on a real 1.108.7 proxy: the budget table holds only the soft budget; the key row the rest.
    assert with_table and all(k["litellm_budget_table"]["soft_budget"] < k["max_budget"] for k in with_table)
    assert all(k["litellm_budget_table"]["max_budget"] is None for k in with_table)
    for row in keys["keys"]:
        assert row["spend"] == pytest.approx(model.budget_state("key", row["token"]).spend)
    hashes = client.get("/key/list", params={"size": 5, "page": 2}).json()
    assert len(hashes["keys"]) == 5 and all(isinstance(k, str) and len(k) == 64 for k in hashes["keys"])


def test_spend_logs(client: httpx.Client, model: TrafficModel) -> None:
    day = TODAY - timedelta(days=1)
    user = next(u for (d, u), v in model.truth("user", day, day).items() if u != "Unassigned")
    body = client.get(
        "/spend/logs/v2",
        params={"start_date": day.isoformat(), "end_date": day.isoformat(), "user_id": user, "page_size": 1000},
    ).json()
    assert body["total"] == len(body["data"]) > 0 and body["total_is_capped"] is False
    assert all(row["user"] == user and row["startTime"].startswith(day.isoformat()) for row in body["data"])
    assert not any({"messages", "response"} & set(row) for row in body["data"])
    assert sum(r["spend"] for r in body["data"]) <= model.truth("user", day, day)[(day.isoformat(), user)]["spend"]
    times = [r["startTime"] for r in body["data"]]
    assert times == sorted(times, reverse=True)
    assert client.get("/spend/logs/v2").status_code == 400
