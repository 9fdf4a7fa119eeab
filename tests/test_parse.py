from __future__ import annotations

import json
from collections import defaultdict

import pytest
from conftest import FIXTURES, fixture_json

from sentinel.errors import MalformedResponse
from sentinel.models import FactRow, Grain
from sentinel.source.parse import ActivityFold, decode_page


def by_grain(facts: list[FactRow]) -> dict[Grain, dict[tuple[str, str], tuple[float, ...]]]:
    out: dict[Grain, dict[tuple[str, str], tuple[float, ...]]] = defaultdict(dict)
    for f in facts:
        out[f.grain][(f.entity_id, f.detail_id)] = f.metrics
    return out


def grain_total(facts: dict[tuple[str, str], tuple[float, ...]], index: int = 0) -> float:
    return sum(m[index] for m in facts.values())


def test_real_user_route_answer_folds_into_consistent_grains() -> None:
    body = fixture_json("user_daily_activity.json")
    fold = ActivityFold("user", "real")
    fold.add_page(decode_page("user", (FIXTURES / "user_daily_activity.json").read_bytes()))
    grains = by_grain(fold.facts())
    total = grains[Grain.TOTAL][("", "")]
    assert total[0] == pytest.approx(body["results"][0]["metrics"]["spend"], abs=1e-12)
    for grain in (
        Grain.USER,
        Grain.MODEL,
        Grain.MODEL_GROUP,
        Grain.PROVIDER,
        Grain.ENDPOINT,
        Grain.KEY,
        Grain.MODEL_KEY,
    ):
        for i in range(8):  # every counter, not only spend, adds up to the day's total
            assert grain_total(grains[grain], i) == pytest.approx(total[i], abs=1e-9), (grain, i)
    assert set(e for e, _ in grains[Grain.USER]) == {"alice", "bob", "carol", "default_user_id"} & set(
        body["results"][0]["breakdown"]["entities"]
    )
    # model x key facts carry the model as entity and the hashed key as detail
    models = {e for e, _ in grains[Grain.MODEL_KEY]}
    assert models == set(body["results"][0]["breakdown"]["models"])
    # owners and teams of keys come from the key metadata
    bob_key = "5b433c31223e2ab59d20118de97544db7a452d82bc9af0817db1a674a3b105a2"
    assert fold.keys[bob_key].user_id == "bob" and fold.keys[bob_key].alias == "bob-team-alpha"


def test_real_team_route_answer_folds_into_teams() -> None:
    body = fixture_json("team_daily_activity.json")
    fold = ActivityFold("team", "real")
    fold.add_page(decode_page("team", (FIXTURES / "team_daily_activity.json").read_bytes()))
    grains = by_grain(fold.facts())
    assert set(grains) == {Grain.TEAM}
    assert grain_total(grains[Grain.TEAM]) == pytest.approx(body["results"][0]["metrics"]["spend"], abs=1e-12)
    assert fold.aliases == {
        tid: e["metadata"]["team_alias"] for tid, e in body["results"][0]["breakdown"]["entities"].items()
    }


def test_pages_of_one_date_add_up() -> None:
    raw = (FIXTURES / "user_daily_activity.json").read_bytes()
    once = ActivityFold("user")
    once.add_page(decode_page("user", raw))
    twice = ActivityFold("user")
    twice.add_page(decode_page("user", raw))
    twice.add_page(decode_page("user", raw))
    single = {(f.grain, f.entity_id, f.detail_id): f.metrics for f in once.facts()}
    for f in twice.facts():
        assert f.metrics == pytest.approx(tuple(2 * v for v in single[(f.grain, f.entity_id, f.detail_id)]))


def test_missing_numbers_are_zero_and_unknown_fields_ignored() -> None:
    body = {
        "results": [
            {
                "date": "2026-11-20",
                "metrics": {"spend": 1.5, "brand_new_counter": 9},
                "breakdown": {"models": {"m": {"metrics": {"api_requests": 3}}}, "future_map": {"x": {}}},
                "extra": True,
            }
        ],
        "metadata": {},
    }
    fold = ActivityFold("user")
    fold.add_page(decode_page("user", json.dumps(body).encode()))
    grains = by_grain(fold.facts())
    assert grains[Grain.TOTAL][("", "")] == (1.5, 0, 0, 0, 0, 0, 0, 0)
    assert grains[Grain.MODEL][("m", "")] == (0, 0, 0, 0, 0, 3, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        {"detail": "x"},
        {"results": {}},
        {"results": [{"metrics": {}}]},
        {"results": [{"date": "2026-13-45"}]},
        {"results": [{"date": "2026-11-20", "metrics": {"spend": "lots"}}]},
        [],
    ],
)
def test_malformed_answers_raise(body: object) -> None:
    fold = ActivityFold("user", "s")
    with pytest.raises(MalformedResponse):
        fold.add_page(decode_page("user", json.dumps(body).encode(), "s"))
        fold.facts()


def test_truncated_body_is_malformed() -> None:
    raw = (FIXTURES / "user_daily_activity.json").read_bytes()
    with pytest.raises(MalformedResponse, match="s"):
        decode_page("user", raw[: len(raw) // 2], "s")
