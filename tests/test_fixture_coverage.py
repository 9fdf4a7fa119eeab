"""Every field a real LiteLLM proxy answers with (tests/fixtures/litellm/, captured from 1.108.7) is also served by
the simulator, under the same name and with a compatible JSON type (see tests/shapes.py for the rules)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from conftest import fixture_json
from shapes import missing, shape
from simhelp import KEY, TODAY, small_model

from sentinel.simulator import ADMIN_USER_ID, SimulatorServer, TrafficModel

START = TODAY - timedelta(days=6)  # a week of data, today included
WEEK = {"start_date": START.isoformat(), "end_date": TODAY.isoformat()}


@pytest.fixture(scope="module")
def model() -> TrafficModel:
    return small_model()


@pytest.fixture(scope="module")
def client(model: TrafficModel) -> Iterator[httpx.Client]:
    with (
        SimulatorServer(model, api_key=KEY).running() as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c,
    ):
        yield c


def _busy_user(model: TrafficModel) -> str:
    """A team member who owns a team key, like alice in the captured proxy."""
    with_keys = {k.user_id for k in model.keys if k.team_id is not None}
    return next(u.user_id for u in model.users if u.user_id != ADMIN_USER_ID and u.teams and u.user_id in with_keys)


# fixture -> (route, query); a callable query is given the model
REQUESTS: dict[str, tuple[str, Any]] = {
    "user_daily_activity": ("/user/daily/activity", {**WEEK, "page_size": 1000}),
    "team_daily_activity": ("/team/daily/activity", {**WEEK, "page_size": 1000}),
    "user_list": ("/user/list", {"page_size": 100}),
    "user_info_alice": ("/user/info", lambda m: {"user_id": _busy_user(m)}),
    "user_info_master": ("/user/info", {}),
    "team_list": ("/team/list", {}),
    "v2_team_list": ("/v2/team/list", {"page_size": 100}),
    "key_list": ("/key/list", {"return_full_object": "true", "size": 100}),
    "spend_logs_v2": ("/spend/logs/v2", {**WEEK, "page_size": 200}),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_simulator_serves_every_field_of_the_real_response(
    name: str, client: httpx.Client, model: TrafficModel
) -> None:
    route, query = REQUESTS[name]
    params = query(model) if callable(query) else query
    r = client.get(route, params=params)
    assert r.status_code == 200, r.text
    problems = missing(fixture_json(f"{name}.json"), r.json())
    assert problems == [], f"the simulator's {route} lacks what {name}.json has:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------- the comparator
def test_shape_paths_and_types() -> None:
    doc = {
        "a": 1,
        "b": [{"c": 1.5, "d": None}, {"c": 2, "e": True}],
        "breakdown": {"models": {"gpt-4o": {"metrics": {"spend": 0.1}}, "o1": {"metrics": {"spend": 1}}}},
        "keys": [{"metadata": {"tier": "gold"}, "model_spend": {}}],
    }
    assert shape(doc) == {
        "$": {"object"},
        "$.a": {"number"},
        "$.b": {"array"},
        "$.b[]": {"object"},
        "$.b[].c": {"number"},
        "$.b[].d": {"null"},
        "$.b[].e": {"bool"},
        "$.breakdown": {"object"},
        "$.breakdown.models": {"object"},
        "$.breakdown.models.*": {"object"},
        "$.breakdown.models.*.metrics": {"object"},
        "$.breakdown.models.*.metrics.spend": {"number"},
        "$.keys": {"array"},
        "$.keys[]": {"object"},
        "$.keys[].metadata": {"object"},
        "$.keys[].metadata.*": {"string"},
        "$.keys[].model_spend": {"object"},
    }
    assert shape([{"metadata": {"x": 1}}])["$[].metadata.*"] == {"number"}
    assert "$.data[].metadata.status" in shape({"data": [{"metadata": {"status": "ok"}}]})  # fixed-shape there


def test_missing_reports_absent_paths_and_wrong_types() -> None:
    real = {"a": 1, "b": "x", "c": None, "d": [{"e": 1}], "f": [], "g": {"h": 1}}
    assert missing(real, real) == []
    served = {"a": "1", "b": None, "c": 5, "d": [], "f": [], "g": None}
    assert missing(real, served) == [
        "$.a: type string, real number",
        "$.d[]: missing (real: object)",
        "$.d[].e: missing (real: number)",
        "$.g.h: missing (real: number)",
    ]
    # items are checked wherever they appear: one non-empty list anywhere covers the path
    assert missing({"x": [{"d": [{"e": 1}]}]}, {"x": [{"d": []}, {"d": [{"e": 2}]}]}) == []
    assert missing({"v": 1}, {"v": 1, "extra": 2}) == []  # extra served fields are fine
    assert missing({"v": [1, "a"]}, {"v": [1]}) == ["$.v[]: type number, real number|string"]
