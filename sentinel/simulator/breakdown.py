"""Turn a set of daily-table rows of one date into a serialised `results[]` element (`DailySpendData`).

Grouping is vectorised (sort + reduceat) and the element is written straight to JSON bytes rather than built
as dicts: names and metadata are serialised once per model, a group holding a single row reuses that row's
cached SpendMetrics (most groups do), and only groups of several rows are encoded per request. Every
breakdown entry carries the full SpendMetrics object, as the real server does, which is what makes bodies
~6.5 KB per active user-day.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from sentinel.simulator.encode import Fragments, MetricsEncoder, RowFragments, objects
from sentinel.simulator.rows import DayBlock, Dims, FloatMatrix, Index, IntMatrix

Table = Literal["user", "team"]
Json = dict[str, Any]
KeyMask = NDArray[np.bool_]  # per key index: kept in per-key maps (the aggregated route's api_key_limit)


class Groups(NamedTuple):
    codes: NDArray[np.int64]  # distinct, ascending
    ints: IntMatrix  # column sums per code
    floats: FloatMatrix
    rows: NDArray[np.int64]  # how many rows each code has
    first: Index  # the first of those rows (the only one when rows == 1)


def group(codes: NDArray[np.int64], ints: IntMatrix, floats: FloatMatrix) -> Groups:
    """Sum rows sharing a code; codes come back sorted, rows summed in their original order."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
    return Groups(
        sorted_codes[starts],
        np.add.reduceat(ints[order], starts, axis=0),
        np.add.reduceat(floats[order], starts, axis=0),
        np.diff(np.append(starts, codes.shape[0])),
        order[starts],
    )


def merge(groups: Groups, starts: Index, codes: NDArray[np.int64]) -> Groups:
    """Sum consecutive runs of groups beginning at `starts` (pairs -> their dimension value)."""
    return Groups(
        codes,
        np.add.reduceat(groups.ints, starts, axis=0),
        np.add.reduceat(groups.floats, starts, axis=0),
        np.add.reduceat(groups.rows, starts),
        groups.first[starts],
    )


class _Rows(NamedTuple):
    """The rows of one element."""

    block: DayBlock
    positions: Index  # in `block`, in output order
    slots: NDArray[np.int32]
    keys: NDArray[np.int64]  # key index per row
    ints: IntMatrix
    floats: FloatMatrix


class _Dimension(NamedTuple):
    """A breakdown map whose entries carry an `api_key_breakdown`, with its JSON pieces per value."""

    opening: bytes  # `,"models":{`
    column: NDArray[np.int32]  # value index per slot
    heads: list[bytes]  # `"<name>":{"metrics":`
    middles: list[bytes]  # `,"metadata":{...},"api_key_breakdown":{`


def _dimension(label: str, column: NDArray[np.int32], names: list[str], meta: list[Json] | None) -> _Dimension:
    metadata: list[Json] = [{}] * len(names) if meta is None else meta
    return _Dimension(
        b"," + orjson.dumps(label) + b":{",
        column,
        [orjson.dumps(name) + b':{"metrics":' for name in names],
        [b',"metadata":' + orjson.dumps(m) + b',"api_key_breakdown":{' for m in metadata],
    )


class DayBuilder:
    """Builds `results[]` elements for one table (user or team) of one model's dims."""

    def __init__(self, dims: Dims, table: Table, fragments: RowFragments) -> None:
        self.dims, self.table = dims, table
        self.fragments = fragments
        self.encoder: MetricsEncoder = fragments.encoder
        d = dims
        self._dimensions = (
            _dimension("models", d.slot_model, d.models, None),
            _dimension("model_groups", d.slot_group, d.groups, None),
            _dimension("providers", d.slot_provider, d.providers, None),
            _dimension("endpoints", d.slot_endpoint, d.endpoints, None),
        )
        if table == "user":
            self._entity = _dimension("entities", d.slot_user, d.user_entities, d.user_meta)
        else:
            self._entity = _dimension("entities", d.slot_team, d.team_ids, d.team_meta)
        # A per-key map entry is `<head>{SpendMetrics}<tail>`.
        self._key_heads = objects([orjson.dumps(token) + b':{"metrics":' for token in d.key_tokens])
        self._key_tails = objects([b',"metadata":' + orjson.dumps(meta) + b"}" for meta in d.key_meta])

    def element(self, block: DayBlock, rows: Index, allowed: KeyMask | None) -> bytes:
        out: list[bytes] = []
        self.write(out, block, rows, allowed)
        return b"".join(out)

    def write(self, out: list[bytes], block: DayBlock, positions: Index, allowed: KeyMask | None) -> None:
        """Append the pieces of the element of `positions` (rows of `block`, in output order) to `out`, to be
        joined once per response; `allowed[k]` False drops key k from every per-key map."""
        slots = block.slot[positions]
        keys = self.dims.slot_key[slots].astype(np.int64)
        rows = _Rows(block, positions, slots, keys, block.ints[positions], block.floats[positions])
        total = self.encoder.encode(rows.ints.sum(axis=0)[None], rows.floats.sum(axis=0)[None])[0]
        out += (b'{"date":', orjson.dumps(block.iso), b',"metrics":', total, b',"breakdown":{"mcp_servers":{}')
        for dimension in self._dimensions:
            self._write_dimension(out, dimension, rows, allowed)
        key_groups = group(rows.keys, rows.ints, rows.floats)
        kept = None if allowed is None else allowed[key_groups.codes]
        leaves = self._leaves(key_groups.codes, self._fragments(rows, key_groups, kept), kept)
        out += (b',"api_keys":{', *leaves[1:], b"}")
        self._write_dimension(out, self._entity, rows, allowed)
        out.append(b"}}")

    def _write_dimension(self, out: list[bytes], dimension: _Dimension, rows: _Rows, allowed: KeyMask | None) -> None:
        n_keys = self.dims.n_keys
        pairs = group(dimension.column[rows.slots].astype(np.int64) * n_keys + rows.keys, rows.ints, rows.floats)
        values = pairs.codes // n_keys
        starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        entries = merge(pairs, starts, values[starts])
        entry_fragments = self._fragments(rows, entries, None).tolist()
        pair_keys = pairs.codes % n_keys
        kept = None if allowed is None else allowed[pair_keys]
        leaves = self._leaves(pair_keys, self._fragments(rows, pairs, kept), kept)
        offsets = np.arange(pair_keys.shape[0] + 1) if kept is None else np.concatenate(([0], np.cumsum(kept)))
        bounds = (4 * offsets[np.append(starts, pair_keys.shape[0])]).tolist()  # of each entry's leaves
        heads, middles = dimension.heads, dimension.middles
        out.append(dimension.opening)
        for j, value in enumerate(entries.codes.tolist()):
            out += (b"," if j else b"", heads[value], entry_fragments[j], middles[value])
            out += leaves[bounds[j] + 1 : bounds[j + 1]]  # +1: a map's first entry has no leading comma
            out.append(b"}}")
        out.append(b"}")

    def _fragments(self, rows: _Rows, groups: Groups, kept: NDArray[np.bool_] | None) -> Fragments:
        """SpendMetrics of the `kept` groups (None: all): a single-row group reuses its row's cached bytes
        (same sums), the others are encoded here. Groups not kept stay None."""
        single = groups.rows == 1
        reuse = np.flatnonzero(single if kept is None else single & kept)
        fresh = np.flatnonzero(~single if kept is None else ~single & kept)
        out: Fragments = np.empty(groups.codes.shape[0], dtype=np.object_)
        out[reuse] = self.fragments.get(rows.block, rows.positions[groups.first[reuse]])
        if fresh.shape[0]:
            out[fresh] = objects(self.encoder.encode(groups.ints[fresh], groups.floats[fresh]))
        return out

    def _leaves(self, keys: NDArray[np.int64], fragments: Fragments, kept: NDArray[np.bool_] | None) -> list[bytes]:
        """Per-key map entries as `[",", head, metrics, tail] * n`, for the `kept` keys (None: all)."""
        if kept is not None:
            keys, fragments = keys[kept], fragments[kept]
        items = [b","] * (4 * keys.shape[0])
        items[1::4] = self._key_heads[keys].tolist()
        items[2::4] = fragments.tolist()
        items[3::4] = self._key_tails[keys].tolist()
        return items
