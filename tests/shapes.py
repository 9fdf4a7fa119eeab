"""Compare the shapes (field names and JSON types) of two JSON documents.

`shape(doc)` flattens a document to `{path: {type names}}`. A path starts at `$`; `.name` descends into a
field, `[]` into the items of a list (all items merge into one path), and `.*` into the values of a map whose
keys are data rather than field names (model names, hashed keys, team ids, ...: see `DYNAMIC_MAPS`), so two
documents about different users, keys and models still have the same paths.

`missing(real, served)` lists what a served document (the simulator's) lacks compared with a real one.
"""

from __future__ import annotations

from typing import Any

# Maps whose keys are data. A rule matches a map whose path ends with it at a segment boundary; rules are
# deliberately specific, because a field name such as `metadata` is a fixed-shape object in some places.
DYNAMIC_MAPS: tuple[str, ...] = (
    # daily activity (API.md §1.3): BreakdownMetrics maps keyed by model / group / provider / endpoint /
    # hashed key / user or team id / MCP server, and each entry's per-key map
    "breakdown.models",
    "breakdown.model_groups",
    "breakdown.providers",
    "breakdown.endpoints",
    "breakdown.api_keys",
    "breakdown.entities",
    "breakdown.mcp_servers",
    "api_key_breakdown",
    "metadata.entity_total_api_keys",  # aggregated route: entity id -> number of keys
    # per-model counters and limits on keys, users and teams, keyed by model name
    "model_spend",
    "model_max_budget",
    "model_max_budget_usage",
    "aliases",  # a key's model aliases: alias -> model
    # user-defined free-form metadata of keys, users and teams (not the fixed-shape `metadata` objects of
    # breakdown entries or of spend-log rows)
    "keys[].metadata",
    "users[].metadata",
    "user_info.metadata",
    "teams[].metadata",
    "$[].metadata",  # /team/list answers a bare list of teams
    # a spend-log row's caller-supplied `metadata.spend_logs_metadata`
    "data[].metadata.spend_logs_metadata",
)

Shape = dict[str, set[str]]


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def is_dynamic(path: str, rules: tuple[str, ...] = DYNAMIC_MAPS) -> bool:
    """A rule starting with `$` matches the whole path; any other matches its end after a `.`."""
    return any(path == rule or (not rule.startswith("$") and path.endswith("." + rule)) for rule in rules)


def shape(doc: Any, rules: tuple[str, ...] = DYNAMIC_MAPS) -> Shape:
    """Every path of `doc` with the set of type names seen there."""
    out: Shape = {}

    def walk(value: Any, path: str) -> None:
        out.setdefault(path, set()).add(type_name(value))
        if isinstance(value, dict):
            dynamic = is_dynamic(path, rules)
            for key, item in value.items():
                walk(item, f"{path}.*" if dynamic else f"{path}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(doc, "$")
    return out


def missing(real: Any, served: Any, rules: tuple[str, ...] = DYNAMIC_MAPS) -> list[str]:
    """Paths `real` has that `served` lacks, and paths where served never has a (non-null) type real has.

    null on either side is compatible with anything: optional fields are legitimately null. A list the served
    document only ever has empty lacks the real list's item paths (`x[]`, `x[].field`), so the simulator must
    serve at least one item somewhere for the item fields to be checked; an empty real list asks for nothing.
    """
    want, got = shape(real, rules), shape(served, rules)
    problems: list[str] = []
    for path in sorted(want):
        if path not in got:
            problems.append(f"{path}: missing (real: {'|'.join(sorted(want[path]))})")
            continue
        real_types, served_types = want[path] - {"null"}, got[path] - {"null"}
        if real_types and served_types and not real_types <= served_types:
            problems.append(f"{path}: type {'|'.join(sorted(got[path]))}, real {'|'.join(sorted(want[path]))}")
    return problems
