"""Columnar storage of the daily spend tables, shared by the traffic model and the response builders.

A `DayBlock` holds one date of `LiteLLM_DailyUserSpend`; the team table is the same rows (restricted to keys
with a team) in a different id order, exactly as the proxy writes both tables from one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sentinel.models import METRIC_FIELDS

# Integer counters stored per row, in this column order.
INT_COLUMNS: tuple[str, ...] = (
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
    "total_response_time_ms",
)
PROMPT, COMPLETION, CACHE_READ, CACHE_CREATION, REQUESTS, SUCCESSFUL, FAILED, RESPONSE_MS = range(8)
# Float columns: spend, and the prompt-caching saving LiteLLM records next to it.
SPEND, CACHE_SAVINGS = 0, 1
# The ground truth reports exactly the metrics Sentinel stores, so tests compare like with like.
TRUTH_METRICS: tuple[str, ...] = METRIC_FIELDS

IntMatrix = NDArray[np.int64]
FloatMatrix = NDArray[np.float64]
Index = NDArray[np.intp]

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
USER_TABLE_SALT = 0x5553455231
TEAM_TABLE_SALT = 0x5445414D32


def mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser: a cheap, vectorised, well-spread hash (arrays wrap silently on overflow)."""
    x = x + _G
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def row_ids(
    seed: int, ordinal: int, slots: NDArray[np.int32], salt: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Deterministic uuid4-shaped ids (as two 64-bit halves) for the rows of one date.

    Hashing (seed, date, slot) rather than drawing from a stream means a row created later in the day gets the
    same id it would have had in a full rebuild, so offsets shift exactly like in a real table.
    """
    base = mix64(np.array([(seed & 0xFFFFFFFF) ^ (salt << 24)], dtype=np.uint64))[0]
    x = mix64(base ^ (np.uint64(ordinal) << np.uint64(24)) ^ slots.astype(np.uint64))
    hi = (x & ~np.uint64(0xF000)) | np.uint64(0x4000)  # version nibble "4"
    lo = mix64(x ^ np.uint64(0xA5A5A5A5A5A5A5A5))
    lo = (lo & ~(np.uint64(0xC) << np.uint64(60))) | (np.uint64(0x8) << np.uint64(60))  # variant 10xx
    return hi, lo


def format_uuid(hi: int, lo: int) -> str:
    h = f"{hi:016x}{lo:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class DayBlock:
    """One date of the daily table as of the model's clock. Immutable: `advance` swaps in a new block."""

    day: date
    iso: str
    version: int  # unique per materialisation; response caches key on it
    slot: NDArray[np.int32]  # rows in `id ASC` order of the user table
    ints: IntMatrix  # (rows, len(INT_COLUMNS))
    floats: FloatMatrix  # (rows, 2): spend, prompt_caching_savings_spend
    id_hi: NDArray[np.uint64]
    id_lo: NDArray[np.uint64]
    team_rows: Index  # positions of rows whose key has a team, in `id ASC` order of the team table

    @property
    def rows(self) -> int:
        return int(self.slot.shape[0])

    def row_id(self, position: int) -> str:
        return format_uuid(int(self.id_hi[position]), int(self.id_lo[position]))


@dataclass(frozen=True)
class Dims:
    """Lookup tables from slot / index to the strings and metadata objects the API prints.

    Metadata dicts are built once and shared by every response (orjson serialises shared objects fine).
    """

    slot_key: NDArray[np.int32]
    slot_model: NDArray[np.int32]
    slot_group: NDArray[np.int32]
    slot_provider: NDArray[np.int32]
    slot_endpoint: NDArray[np.int32]
    slot_user: NDArray[np.int32]  # index into user_entities ("Unassigned" is the last entry)
    slot_team: NDArray[np.int32]  # index into team_ids, -1 for keys without a team
    key_tokens: list[str]
    key_meta: list[dict[str, Any]]
    models: list[str]
    groups: list[str]
    providers: list[str]
    endpoints: list[str]
    user_entities: list[str]
    user_meta: list[dict[str, Any]]
    team_ids: list[str]
    team_meta: list[dict[str, Any]]

    @property
    def n_keys(self) -> int:
        return len(self.key_tokens)
