"""Turn a set of daily-table rows of one date into a `results[]` element (`DailySpendData`).

Grouping is vectorised (sort + reduceat); only the final dict building is Python. Every breakdown entry
carries the full SpendMetrics object, as the real server does, which is what makes bodies ~6.5 KB per
active user-day.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from sentinel.simulator.rows import Dims, FloatMatrix, IntMatrix

Table = Literal["user", "team"]
Json = dict[str, Any]
_EMPTY: Json = {}


def metrics(i: list[int], f: list[float], full: bool) -> Json:
    """SpendMetrics in the field order of LiteLLM 1.110.2 (`full`) or the nine fields of 1.72+."""
    if full:
        return {
            "spend": f[0],
            "flat_cost": 0.0,
            "ptu_hours": 0.0,
            "prompt_tokens": i[0],
            "completion_tokens": i[1],
            "cache_read_input_tokens": i[2],
            "cache_creation_input_tokens": i[3],
            "compression_saved_tokens": 0,
            "compression_savings_spend": 0.0,
            "prompt_caching_savings_spend": f[1],
            "gateway_injected_caching_savings_spend": 0.0,
            "autorouter_savings_spend": 0.0,
            "total_tokens": i[0] + i[1],
            "successful_requests": i[5],
            "failed_requests": i[6],
            "api_requests": i[4],
            "total_response_time_ms": i[7],
            "timed_requests": i[4],
        }
    return {
        "spend": f[0],
        "prompt_tokens": i[0],
        "completion_tokens": i[1],
        "total_tokens": i[0] + i[1],
        "cache_read_input_tokens": i[2],
        "cache_creation_input_tokens": i[3],
        "api_requests": i[4],
        "successful_requests": i[5],
        "failed_requests": i[6],
    }


def totals(i: list[int], f: list[float], full: bool) -> Json:
    """The `total_*` half of DailySpendMetadata."""
    m = metrics(i, f, full)
    order = (
        "spend",
        "flat_cost",
        "ptu_hours",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "api_requests",
        "successful_requests",
        "failed_requests",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "compression_saved_tokens",
        "compression_savings_spend",
        "prompt_caching_savings_spend",
        "gateway_injected_caching_savings_spend",
        "autorouter_savings_spend",
        "total_response_time_ms",
        "timed_requests",
    )
    return {name if name.startswith("total_") else f"total_{name}": m[name] for name in order if name in m}


def group(
    codes: NDArray[np.int64], ints: IntMatrix, floats: FloatMatrix
) -> tuple[NDArray[np.int64], IntMatrix, FloatMatrix]:
    """Sum rows sharing a code; codes come back sorted."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
    return (
        sorted_codes[starts],
        np.add.reduceat(ints[order], starts, axis=0),
        np.add.reduceat(floats[order], starts, axis=0),
    )


class DayBuilder:
    """Builds `results[]` elements for one table (user or team) of one model's dims."""

    def __init__(self, dims: Dims, table: Table, full: bool) -> None:
        self.dims, self.table, self.full = dims, table, full
        d = dims
        self._dimensions: tuple[tuple[str, NDArray[np.int32], list[str], list[Json] | None], ...] = (
            ("models", d.slot_model, d.models, None),
            ("model_groups", d.slot_group, d.groups, None),
            ("providers", d.slot_provider, d.providers, None),
            ("endpoints", d.slot_endpoint, d.endpoints, None),
        )
        if table == "user":
            self._entity = (d.slot_user, d.user_entities, d.user_meta)
        else:
            self._entity = (d.slot_team, d.team_ids, d.team_meta)

    def element(
        self, iso: str, slots: NDArray[np.int32], ints: IntMatrix, floats: FloatMatrix, allowed: list[bool] | None
    ) -> Json:
        """`allowed[k]` False drops key k from every per-key map (the aggregated route's api_key_limit)."""
        keys = self.dims.slot_key[slots].astype(np.int64)
        all_i = ints.sum(axis=0).tolist()
        all_f = floats.sum(axis=0).tolist()
        breakdown: Json = {"mcp_servers": {}}
        for name, column, names, meta in self._dimensions:
            breakdown[name] = self._dimension(column[slots], keys, ints, floats, names, meta, allowed)
        breakdown["api_keys"] = self._api_keys(keys, ints, floats, allowed)
        column, names, meta = self._entity
        breakdown["entities"] = self._dimension(column[slots], keys, ints, floats, names, meta, allowed)
        return {"date": iso, "metrics": metrics(all_i, all_f, self.full), "breakdown": breakdown}

    def _api_keys(
        self, keys: NDArray[np.int64], ints: IntMatrix, floats: FloatMatrix, allowed: list[bool] | None
    ) -> Json:
        codes, gi, gf = group(keys, ints, floats)
        tokens, key_meta, full = self.dims.key_tokens, self.dims.key_meta, self.full
        return {
            tokens[k]: {"metrics": metrics(i, f, full), "metadata": key_meta[k]}
            for k, i, f in zip(codes.tolist(), gi.tolist(), gf.tolist(), strict=True)
            if allowed is None or allowed[k]
        }

    def _dimension(
        self,
        values: NDArray[np.int32],
        keys: NDArray[np.int64],
        ints: IntMatrix,
        floats: FloatMatrix,
        names: list[str],
        meta: list[Json] | None,
        allowed: list[bool] | None,
    ) -> Json:
        n_keys = self.dims.n_keys
        codes, pair_i, pair_f = group(values.astype(np.int64) * n_keys + keys, ints, floats)
        dim = codes // n_keys
        starts = np.flatnonzero(np.concatenate(([True], dim[1:] != dim[:-1])))
        dim_i = np.add.reduceat(pair_i, starts, axis=0).tolist()
        dim_f = np.add.reduceat(pair_f, starts, axis=0).tolist()
        bounds = [*starts.tolist(), int(codes.shape[0])]
        pair_keys = (codes % n_keys).tolist()
        pi, pf = pair_i.tolist(), pair_f.tolist()
        tokens, key_meta, full = self.dims.key_tokens, self.dims.key_meta, self.full
        out: Json = {}
        for j, d in enumerate(dim[starts].tolist()):
            per_key: Json = {}
            for p in range(bounds[j], bounds[j + 1]):
                k = pair_keys[p]
                if allowed is None or allowed[k]:
                    per_key[tokens[k]] = {"metrics": metrics(pi[p], pf[p], full), "metadata": key_meta[k]}
            out[names[d]] = {
                "metrics": metrics(dim_i[j], dim_f[j], full),
                "metadata": _EMPTY if meta is None else meta[d],
                "api_key_breakdown": per_key,
            }
        return out
