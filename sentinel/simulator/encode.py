"""SpendMetrics as JSON bytes, fast: the daily-activity routes print thousands of them per response.

`metrics()` is the reference (a dict that orjson serialises); `MetricsEncoder` produces the same bytes for many
rows at once from a `%` template, and `RowFragments` keeps the encoding of every daily-table row, because a row
is printed several times per response (once per breakdown map it lands in alone) and settled rows never change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from sentinel.simulator.rows import (
    CACHE_CREATION,
    CACHE_READ,
    CACHE_SAVINGS,
    COMPLETION,
    FAILED,
    PROMPT,
    REQUESTS,
    RESPONSE_MS,
    SPEND,
    SUCCESSFUL,
    DayBlock,
    FloatMatrix,
    Index,
    IntMatrix,
)

Json = dict[str, Any]
Fragments = NDArray[np.object_]  # one serialised SpendMetrics (bytes) per row or group


class Float(NamedTuple):
    column: int  # into the float columns


class Int(NamedTuple):
    column: int  # into INT_COLUMNS, or TOTAL_TOKENS


TOTAL_TOKENS = -1  # prompt + completion: computed, not stored
Source = Float | Int | float | int  # a bare number is a constant the simulator never sets

# SpendMetrics in the field order of LiteLLM 1.110.2 (`full`) or the nine fields of 1.72+.
FULL_LAYOUT: tuple[tuple[str, Source], ...] = (
    ("spend", Float(SPEND)),
    ("flat_cost", 0.0),
    ("ptu_hours", 0.0),
    ("prompt_tokens", Int(PROMPT)),
    ("completion_tokens", Int(COMPLETION)),
    ("cache_read_input_tokens", Int(CACHE_READ)),
    ("cache_creation_input_tokens", Int(CACHE_CREATION)),
    ("compression_saved_tokens", 0),
    ("compression_savings_spend", 0.0),
    ("prompt_caching_savings_spend", Float(CACHE_SAVINGS)),
    ("gateway_injected_caching_savings_spend", 0.0),
    ("autorouter_savings_spend", 0.0),
    ("total_tokens", Int(TOTAL_TOKENS)),
    ("successful_requests", Int(SUCCESSFUL)),
    ("failed_requests", Int(FAILED)),
    ("api_requests", Int(REQUESTS)),
    ("total_response_time_ms", Int(RESPONSE_MS)),
    ("timed_requests", Int(REQUESTS)),
)
LEGACY_LAYOUT: tuple[tuple[str, Source], ...] = (
    ("spend", Float(SPEND)),
    ("prompt_tokens", Int(PROMPT)),
    ("completion_tokens", Int(COMPLETION)),
    ("total_tokens", Int(TOTAL_TOKENS)),
    ("cache_read_input_tokens", Int(CACHE_READ)),
    ("cache_creation_input_tokens", Int(CACHE_CREATION)),
    ("api_requests", Int(REQUESTS)),
    ("successful_requests", Int(SUCCESSFUL)),
    ("failed_requests", Int(FAILED)),
)
TOTALS_ORDER = (
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


def layout(full: bool) -> tuple[tuple[str, Source], ...]:
    return FULL_LAYOUT if full else LEGACY_LAYOUT


def metrics(i: list[int], f: list[float], full: bool) -> Json:
    """One SpendMetrics object from a row's int and float columns."""

    def value(source: Source) -> float | int:
        if isinstance(source, Float):
            return f[source.column]
        if isinstance(source, Int):
            return i[PROMPT] + i[COMPLETION] if source.column == TOTAL_TOKENS else i[source.column]
        return source

    return {name: value(source) for name, source in layout(full)}


def totals(i: list[int], f: list[float], full: bool) -> Json:
    """The `total_*` half of DailySpendMetadata."""
    m = metrics(i, f, full)
    return {name if name.startswith("total_") else f"total_{name}": m[name] for name in TOTALS_ORDER if name in m}


class MetricsEncoder:
    """Serialises SpendMetrics objects in bulk, byte for byte as `orjson.dumps(metrics(...))` would."""

    def __init__(self, full: bool) -> None:
        template, holes = b"{", []
        for n, (name, source) in enumerate(layout(full)):
            template += (b"," if n else b"") + orjson.dumps(name) + b":"
            if isinstance(source, Float | Int):
                template += b"%s" if isinstance(source, Float) else b"%d"
                holes.append(source)
            else:
                template += orjson.dumps(source)
        self.template = template + b"}"
        self._holes: tuple[Float | Int, ...] = tuple(holes)

    def encode(self, ints: IntMatrix, floats: FloatMatrix) -> list[bytes]:
        """One object per row of `ints` / `floats`."""
        if ints.shape[0] == 0:
            return []
        columns = [self._column(hole, ints, floats) for hole in self._holes]
        template = self.template
        return [template % values for values in zip(*columns, strict=True)]

    @staticmethod
    def _column(hole: Float | Int, ints: IntMatrix, floats: FloatMatrix) -> list[Any]:
        if isinstance(hole, Float):
            # orjson's own float text (shortest round-trip, its exponent style), one token per row
            return orjson.dumps(floats[:, hole.column].tolist())[1:-1].split(b",")
        column = ints[:, PROMPT] + ints[:, COMPLETION] if hole.column == TOTAL_TOKENS else ints[:, hole.column]
        values: list[int] = column.tolist()
        return values


def objects(items: list[bytes]) -> Fragments:
    """A 1-D object array of bytes (np.array would make a fixed-width bytes array)."""
    return np.fromiter(items, dtype=np.object_, count=len(items))


class _Entry:
    def __init__(self, version: int, rows: int) -> None:
        self.version = version
        self.fragments: Fragments = np.full(rows, None, dtype=np.object_)
        self.done = np.zeros(rows, dtype=np.bool_)
        self.size = 0


class RowFragments:
    """Per date, the serialised SpendMetrics of each daily-table row, encoded on first use.

    Keyed by date and checked against the block version: today's block is replaced whenever the clock moves,
    which drops its fragments. Least recently used dates are evicted past `limit_bytes`.
    """

    def __init__(self, encoder: MetricsEncoder, limit_bytes: int = 128 * 1024 * 1024) -> None:
        self.encoder = encoder
        self._entries: OrderedDict[date, _Entry] = OrderedDict()
        self._limit, self._size = limit_bytes, 0
        self._lock = threading.Lock()

    def get(self, block: DayBlock, rows: Index) -> Fragments:
        """Fragments of the rows at `rows` (positions in `block`)."""
        entry = self._entry(block)
        found = entry.fragments[rows]
        missing = np.flatnonzero(~entry.done[rows])
        if missing.shape[0]:
            todo = rows[missing]
            encoded = self.encoder.encode(block.ints[todo], block.floats[todo])
            found[missing] = objects(encoded)
            # Concurrent requests may encode the same rows twice; they write identical bytes.
            entry.fragments[todo] = found[missing]
            entry.done[todo] = True
            self._grow(block.day, entry, sum(map(len, encoded)) + 40 * len(encoded))
        return found

    def _entry(self, block: DayBlock) -> _Entry:
        with self._lock:
            entry = self._entries.get(block.day)
            if entry is not None and entry.version == block.version:
                self._entries.move_to_end(block.day)
                return entry
            fresh = _Entry(block.version, block.rows)
            if entry is None or entry.version < block.version:  # an older snapshot never evicts a newer block
                if entry is not None:
                    self._size -= entry.size
                self._entries[block.day] = fresh
                self._entries.move_to_end(block.day)
            return fresh

    def _grow(self, day: date, entry: _Entry, size: int) -> None:
        with self._lock:
            if self._entries.get(day) is not entry:
                return  # a transient entry (older snapshot) or one evicted meanwhile
            entry.size += size
            self._size += size
            while self._size > self._limit and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._size -= dropped.size
