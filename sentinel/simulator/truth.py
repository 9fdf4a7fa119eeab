"""Ground truth straight from the raw rows, deliberately written apart from the response builders.

Plain Python accumulation over `tolist()` rows: slower than the numpy grouping in `api.py`, but an
independent second implementation is the point — tests compare the two.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Literal

from sentinel.simulator.rows import INT_COLUMNS, TRUTH_METRICS, Dims

if TYPE_CHECKING:
    from sentinel.simulator.traffic import Snapshot

Grain = Literal["total", "user", "team", "model", "model_group", "provider", "endpoint", "key", "model_key"]
GRAINS: tuple[Grain, ...] = (
    "total",
    "user",
    "team",
    "model",
    "model_group",
    "provider",
    "endpoint",
    "key",
    "model_key",
)
TruthTable = dict[tuple[str, str], dict[str, float | int]]
_INT_TRUTH = [INT_COLUMNS.index(name) for name in TRUTH_METRICS[1:]]


def _entity_of(grain: Grain, dims: Dims) -> Callable[[int], str | None]:
    """Map a slot to the entity id the API uses for this grain (None: the row is not in that table)."""
    keys, models = dims.key_tokens, dims.models
    slot_key, slot_model = dims.slot_key.tolist(), dims.slot_model.tolist()
    if grain == "total":
        return lambda s: ""
    if grain == "user":
        users, slot_user = dims.user_entities, dims.slot_user.tolist()
        return lambda s: users[slot_user[s]]
    if grain == "team":
        teams, slot_team = dims.team_ids, dims.slot_team.tolist()
        return lambda s: teams[slot_team[s]] if slot_team[s] >= 0 else None
    if grain == "model":
        return lambda s: models[slot_model[s]]
    if grain == "model_group":
        groups, slot_group = dims.groups, dims.slot_group.tolist()
        return lambda s: groups[slot_group[s]]
    if grain == "provider":
        providers, slot_provider = dims.providers, dims.slot_provider.tolist()
        return lambda s: providers[slot_provider[s]]
    if grain == "endpoint":
        endpoints, slot_endpoint = dims.endpoints, dims.slot_endpoint.tolist()
        return lambda s: endpoints[slot_endpoint[s]]
    if grain == "key":
        return lambda s: keys[slot_key[s]]
    if grain == "model_key":
        return lambda s: f"{models[slot_model[s]]}\x1f{keys[slot_key[s]]}"
    raise ValueError(f"unknown grain {grain!r}")


def compute_truth(snapshot: Snapshot, dims: Dims, grain: Grain, start: date, end: date) -> TruthTable:
    entity_of = _entity_of(grain, dims)
    out: TruthTable = {}
    for block in snapshot.between(start, end):
        for slot, ints, floats in zip(block.slot.tolist(), block.ints.tolist(), block.floats.tolist(), strict=True):
            entity = entity_of(slot)
            if entity is None:
                continue
            acc = out.get((block.iso, entity))
            if acc is None:
                acc = out[(block.iso, entity)] = dict.fromkeys(TRUTH_METRICS, 0)
                acc["spend"] = 0.0
            acc["spend"] += floats[0]
            for name, column in zip(TRUTH_METRICS[1:], _INT_TRUTH, strict=True):
                acc[name] += ints[column]
    return out
