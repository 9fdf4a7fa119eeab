"""The daily-activity routes of the LiteLLM API (API.md §1) over a `TrafficModel`, plus parameter
validation and the three error-body families (§7) every route shares.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from sentinel.simulator.breakdown import DayBuilder, Json, KeyMask, Table
from sentinel.simulator.encode import MetricsEncoder, RowFragments, totals
from sentinel.simulator.rows import DayBlock, Index
from sentinel.simulator.traffic import Snapshot, TrafficModel

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})
MAX_TEAM_AGGREGATED_DAYS = 400


class ApiError(Exception):
    """An HTTP error answer; `body` is serialised as JSON."""

    def __init__(self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


def detail_error(status: int, message: str) -> ApiError:
    """Family B: FastAPI HTTPException with a dict detail."""
    return ApiError(status, {"detail": {"error": message}})


def proxy_error(status: int, message: str, type_: str, param: str | None) -> ApiError:
    """Family A: ProxyException; `code` is a string."""
    return ApiError(status, {"error": {"message": message, "type": type_, "param": param, "code": str(status)}})


def _validation(kind: str, name: str, msg: str, value: str, ctx: Json | None = None) -> ApiError:
    """Family C: FastAPI/pydantic v2 request validation."""
    item: Json = {"type": kind, "loc": ["query", name], "msg": msg, "input": value}
    if ctx is not None:
        item["ctx"] = ctx
    return ApiError(422, {"detail": [item]})


class Params:
    """Query parameters with FastAPI's coercion rules (the last value of a repeated parameter wins)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None  # LiteLLM tests `if param:`, so "" means absent

    def integer(self, name: str, default: int, ge: int | None = None, le: int | None = None) -> int:
        raw = self.values.get(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise _validation(
                "int_parsing", name, "Input should be a valid integer, unable to parse string as an integer", raw
            ) from None
        if ge is not None and value < ge:
            raise _validation(
                "greater_than_equal", name, f"Input should be greater than or equal to {ge}", raw, {"ge": ge}
            )
        if le is not None and value > le:
            raise _validation("less_than_equal", name, f"Input should be less than or equal to {le}", raw, {"le": le})
        return value

    def number(self, name: str) -> float | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise _validation(
                "float_parsing", name, "Input should be a valid number, unable to parse string as a number", raw
            ) from None

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.values.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _validation("bool_parsing", name, "Input should be a valid boolean, unable to interpret input", raw)

    def date_range(self) -> tuple[date, date]:
        start_raw, end_raw = self.text("start_date"), self.text("end_date")
        if start_raw is None or end_raw is None:
            raise detail_error(400, "Please provide start_date and end_date")
        try:
            if not (_ISO_DATE.match(start_raw) and _ISO_DATE.match(end_raw)):
                raise ValueError
            start, end = date.fromisoformat(start_raw), date.fromisoformat(end_raw)
        except ValueError:
            raise detail_error(400, "start_date and end_date must be valid YYYY-MM-DD dates") from None
        if end < start:
            raise detail_error(400, "end_date must be on or after start_date")
        return start, end

    def csv(self, name: str) -> list[str]:
        raw = self.text(name)
        return [part.strip() for part in raw.split(",") if part.strip()] if raw else []


@dataclass(frozen=True)
class _Filter:
    mask: NDArray[np.bool_] | None  # per slot; None: no filter
    key: tuple[str, ...]  # canonical form, part of cache keys


class DailyActivity:
    """Answers `/{user,team}/daily/activity[/aggregated]`.

    Aggregated answers are assembled from per-date serialised pieces kept in a byte-bounded LRU cache, keyed
    by the block version (so today's growth invalidates only today) and by the set of keys that survive
    `api_key_limit`. Below that, both routes share one cache of serialised rows (`RowFragments`).
    """

    def __init__(self, model: TrafficModel, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.model = model
        dims = model.dims
        self.full = model.config.full_metrics
        fragments = RowFragments(MetricsEncoder(self.full))  # shared: both tables hold the same rows
        self.builders: dict[Table, DayBuilder] = {t: DayBuilder(dims, t, fragments) for t in ("user", "team")}
        rank = np.empty(dims.n_keys, dtype=np.int64)
        rank[np.argsort(np.array(dims.key_tokens))] = np.arange(dims.n_keys)
        self._token_rank = rank  # tie-break for equal spend, like ORDER BY spend DESC, api_key
        self._key_index = {t: i for i, t in enumerate(dims.key_tokens)}
        self._model_index = {m: i for i, m in enumerate(dims.models)}
        self._user_index = {u: i for i, u in enumerate(dims.user_entities[:-1])}
        self._team_index = {t: i for i, t in enumerate(dims.team_ids)}
        self._owned: dict[str, list[int]] = {}  # user_id -> indices of the keys it owns
        for i, meta in enumerate(dims.key_meta):
            if meta["user_id"] is not None:
                self._owned.setdefault(meta["user_id"], []).append(i)
        self._cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._cache_limit, self._cache_size = cache_bytes, 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ filters
    def _filter(self, table: Table, p: Params, owner: str | None) -> _Filter:
        dims = self.model.dims
        mask: NDArray[np.bool_] | None = None
        parts: list[str] = []

        def narrow(condition: NDArray[np.bool_], label: str) -> None:
            nonlocal mask
            mask = condition if mask is None else mask & condition
            parts.append(label)

        model = p.text("model")
        if model is not None:
            index = self._model_index.get(model, -1)  # "unknown-model" matches NULL models: there are none
            narrow(dims.slot_model == index, f"model={model}")
        api_key = p.text("api_key")
        if api_key is not None:
            # "unattributed" selects rows with an empty api_key (none here); "raw:" escapes a literal key
            token = None if api_key == "unattributed" else api_key.removeprefix("raw:")
            index = self._key_index.get(token, -1) if token is not None else -1
            narrow(dims.slot_key == index, f"api_key={api_key}")
        if table == "user":
            user_id = p.text("user_id")
            if user_id is not None:
                narrow(dims.slot_user == self._user_index.get(user_id, -1), f"user_id={user_id}")
        else:
            wanted = p.csv("team_ids")
            if wanted:
                narrow(
                    np.isin(dims.slot_team, [self._team_index.get(t, -2) for t in wanted]),
                    f"team_ids={','.join(sorted(wanted))}",
                )
            excluded = p.csv("exclude_team_ids")
            if excluded:
                narrow(
                    ~np.isin(dims.slot_team, [self._team_index.get(t, -2) for t in excluded]),
                    f"exclude={','.join(sorted(excluded))}",
                )
        if owner is not None:  # a non-admin caller: only the rows of their own keys
            narrow(np.isin(dims.slot_key, self._owned.get(owner, [])), f"owner={owner}")
        return _Filter(mask, tuple(parts))

    @staticmethod
    def _positions(block: DayBlock, table: Table, f: _Filter) -> Index:
        """Row positions of a date in the table's `id ASC` order, after filters."""
        base: Index = np.arange(block.rows) if table == "user" else block.team_rows
        if f.mask is None:
            return base
        return base[f.mask[block.slot[base]]]

    def _count(self, block: DayBlock, table: Table, f: _Filter) -> int:
        """`len(_positions(...))`, without building it when there is no filter (a page touches few dates)."""
        if f.mask is None:
            return block.rows if table == "user" else int(block.team_rows.shape[0])
        return int(self._positions(block, table, f).shape[0])

    # ------------------------------------------------------------------ paginated
    def paginated(
        self, table: Table, p: Params, snap: Snapshot, shuffle: random.Random | None, owner: str | None = None
    ) -> bytes:
        start, end = p.date_range()
        page = p.integer("page", 1, ge=1)
        page_size = p.integer("page_size", 50, ge=1, le=1000) if table == "user" else p.integer("page_size", 10, ge=1)
        if table == "user":
            p.integer("timezone", 0)  # accepted and validated; a no-op without include_current_utc_day (§6)
            p.flag("include_current_utc_day")
        f = self._filter(table, p, owner)
        blocks = snap.between(start, end)
        counts = [self._count(b, table, f) for b in blocks]
        total = sum(counts)
        offset, stop = (page - 1) * page_size, page * page_size
        parts: list[bytes] = []  # serialised elements and the commas between them
        page_i: list[NDArray[np.int64]] = []
        page_f: list[NDArray[np.float64]] = []
        seen = 0
        for block, count in zip(blocks, counts, strict=True):
            lo, hi = max(offset - seen, 0), min(stop - seen, count)
            seen += count
            if lo >= hi:
                continue
            rows = self._positions(block, table, f)
            if shuffle is not None:  # pre-#30164: no tiebreaker, each query returns a date's rows in any order
                rows = rows[np.array(shuffle.sample(range(count), count), dtype=np.intp)]
            take = rows[lo:hi]
            if parts:
                parts.append(b",")
            self.builders[table].write(parts, block, take, None)
            page_i.append(block.ints[take].sum(axis=0))
            page_f.append(block.floats[take].sum(axis=0))
        meta = self._totals(page_i, page_f)
        meta.update({"page": page, "total_pages": math.ceil(total / page_size), "has_more": stop < total})
        if self.full:
            meta.update({"api_key_limit": None, "total_api_keys": None, "entity_total_api_keys": None})
        return _body(parts, meta)

    def _totals(self, ints: list[NDArray[np.int64]], floats: list[NDArray[np.float64]]) -> Json:
        i = np.sum(ints, axis=0).tolist() if ints else [0] * 8
        fl = np.sum(floats, axis=0).tolist() if floats else [0.0, 0.0]
        return totals(i, fl, self.full)

    # ------------------------------------------------------------------ aggregated
    def aggregated(self, table: Table, p: Params, snap: Snapshot, owner: str | None = None) -> bytes:
        start, end = p.date_range()
        if table == "team" and (end - start).days > MAX_TEAM_AGGREGATED_DAYS:
            raise detail_error(400, f"Date range cannot exceed {MAX_TEAM_AGGREGATED_DAYS} days")
        limit = p.integer("api_key_limit", 100, ge=1, le=1000)
        if table == "user":
            p.integer("timezone", 0)
            p.flag("include_current_utc_day")
        f = self._filter(table, p, owner)
        dims = self.model.dims
        n_keys = dims.n_keys
        entity_column = dims.slot_user if table == "user" else dims.slot_team
        entity_names = dims.user_entities if table == "user" else dims.team_ids
        blocks = snap.between(start, end)
        positions = [self._positions(b, table, f) for b in blocks]
        key_spend = np.zeros(n_keys)
        pairs: list[NDArray[np.int64]] = []
        sums_i: list[NDArray[np.int64]] = []
        sums_f: list[NDArray[np.float64]] = []
        for block, rows in zip(blocks, positions, strict=True):
            slots = block.slot[rows]
            keys = dims.slot_key[slots].astype(np.int64)
            key_spend += np.bincount(keys, weights=block.floats[rows, 0], minlength=n_keys)
            pairs.append(np.unique(entity_column[slots].astype(np.int64) * n_keys + keys))
            sums_i.append(block.ints[rows].sum(axis=0))
            sums_f.append(block.floats[rows].sum(axis=0))
        pair_codes = np.unique(np.concatenate(pairs)) if pairs else np.zeros(0, dtype=np.int64)
        present = np.unique(pair_codes % n_keys)
        per_entity = np.bincount(pair_codes // n_keys, minlength=len(entity_names))
        allowed, fingerprint = self._top_keys(present, key_spend, limit)
        parts: list[bytes] = []
        for block, rows in zip(blocks, positions, strict=True):
            if rows.shape[0]:  # dates without rows are absent, never zero-filled
                if parts:
                    parts.append(b",")
                parts.append(self._piece(table, block, rows, f, allowed, fingerprint))
        meta = self._totals(sums_i, sums_f)
        meta.update(
            {
                "page": 1,
                "total_pages": 1,
                "has_more": False,
                "api_key_limit": limit,
                "total_api_keys": int(present.shape[0]),
                "entity_total_api_keys": {entity_names[e]: int(c) for e, c in enumerate(per_entity.tolist()) if c},
            }
        )
        return _body(parts, meta)

    def _top_keys(
        self, present: NDArray[np.int64], spend: NDArray[np.float64], limit: int
    ) -> tuple[KeyMask | None, bytes | None]:
        """Keys kept in per-key maps: the top `limit` by spend over the whole requested range."""
        if present.shape[0] <= limit:
            return None, None
        order = np.lexsort((self._token_rank[present], -spend[present]))
        top = np.sort(present[order[:limit]])
        allowed = np.zeros(self.model.dims.n_keys, dtype=np.bool_)
        allowed[top] = True
        return allowed, hashlib.blake2b(top.tobytes(), digest_size=16).digest()

    def _piece(
        self,
        table: Table,
        block: DayBlock,
        rows: Index,
        f: _Filter,
        allowed: KeyMask | None,
        fingerprint: bytes | None,
    ) -> bytes:
        cache_key = (table, block.day, block.version, f.key, fingerprint)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
        piece = self.builders[table].element(block, rows, allowed)
        with self._lock:
            if cache_key not in self._cache and len(piece) <= self._cache_limit // 4:
                self._cache[cache_key] = piece
                self._cache_size += len(piece)
                while self._cache_size > self._cache_limit:
                    _, dropped = self._cache.popitem(last=False)
                    self._cache_size -= len(dropped)
        return piece


def _body(results: list[bytes], meta: Json) -> bytes:
    """`{"results": [...], "metadata": {...}}` around the serialised, comma-separated elements, joined in one
    copy: bodies run to tens of MB and every extra copy of them shows in the response time."""
    return b"".join([b'{"results":[', *results, b'],"metadata":', orjson.dumps(meta), b"}"])
