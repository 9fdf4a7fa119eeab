"""Parsing daily-activity answers at the edge: raw JSON in, merged typed facts out.

The paginated routes split one date over several pages, each carrying partial sums for the rows
on that page (API.md §1.4), so every answer is folded into one accumulator per (date, grain,
entity, detail): metrics add field-wise, breakdown maps merge key-wise. The aggregated route is
the same fold over a single page. Unknown fields are ignored and missing numbers count as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sentinel.errors import MalformedResponse
from sentinel.models import METRIC_FIELDS, N_METRICS, FactRow, Grain, KeyRef

# breakdown map name -> grain, for the user route
_USER_BREAKDOWNS: tuple[tuple[str, Grain], ...] = (
    ("entities", Grain.USER),
    ("models", Grain.MODEL),
    ("model_groups", Grain.MODEL_GROUP),
    ("providers", Grain.PROVIDER),
    ("endpoints", Grain.ENDPOINT),
    ("api_keys", Grain.KEY),
)

_Cell = list[float]
_Key = tuple[str, Grain, str, str]  # (date, grain, entity, detail)


def _number(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class ActivityFold:
    """Accumulates daily-activity pages of one route into per-day facts."""

    def __init__(self, route: str, source: str = "") -> None:
        if route not in ("user", "team"):
            raise ValueError(route)
        self.route = route
        self.source = source
        self._cells: dict[_Key, _Cell] = {}
        self.keys: dict[str, KeyRef] = {}
        self.aliases: dict[str, str] = {}
        self.dates_seen: set[str] = set()

    def _add(self, key: _Key, metrics: Any) -> None:
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = [0.0] * N_METRICS
        if not isinstance(metrics, Mapping):
            return
        for i, name in enumerate(METRIC_FIELDS):
            raw = metrics.get(name)
            if raw:
                cell[i] += _number(raw)

    def _note_key(self, token: str, metadata: Any) -> None:
        if token in self.keys or not isinstance(metadata, Mapping):
            return
        self.keys[token] = KeyRef(
            token=token,
            alias=_str_or_none(metadata.get("key_alias")),
            user_id=_str_or_none(metadata.get("user_id")),
            team_id=_str_or_none(metadata.get("team_id")),
        )

    def add_page(self, body: Any) -> None:
        if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
            raise MalformedResponse(
                f"source {self.source!r}: daily activity answer has no 'results' list", source=self.source
            )
        for result in body["results"]:
            if not isinstance(result, Mapping):
                raise MalformedResponse(f"source {self.source!r}: a result is not an object", source=self.source)
            day = result.get("date")
            if not isinstance(day, str) or len(day) != 10:
                raise MalformedResponse(
                    f"source {self.source!r}: result without a YYYY-MM-DD date: {day!r}", source=self.source
                )
            self.dates_seen.add(day)
            breakdown = result.get("breakdown")
            breakdown = breakdown if isinstance(breakdown, Mapping) else {}
            if self.route == "user":
                self._add((day, Grain.TOTAL, "", ""), result.get("metrics"))
                self._fold_user(day, breakdown)
            else:
                self._fold_team(day, breakdown)

    def _fold_user(self, day: str, breakdown: Mapping[str, Any]) -> None:
        for name, grain in _USER_BREAKDOWNS:
            entries = breakdown.get(name)
            if not isinstance(entries, Mapping):
                continue
            for entity, entry in entries.items():
                if not isinstance(entry, Mapping):
                    continue
                self._add((day, grain, str(entity), ""), entry.get("metrics"))
                if grain is Grain.KEY:
                    self._note_key(str(entity), entry.get("metadata"))
                elif grain is Grain.USER:
                    meta = entry.get("metadata")
                    alias = meta.get("user_alias") if isinstance(meta, Mapping) else None
                    if alias:
                        self.aliases[str(entity)] = str(alias)
                elif grain is Grain.MODEL:
                    per_key = entry.get("api_key_breakdown")
                    if isinstance(per_key, Mapping):
                        for token, key_entry in per_key.items():
                            if isinstance(key_entry, Mapping):
                                self._add((day, Grain.MODEL_KEY, str(entity), str(token)), key_entry.get("metrics"))
                                self._note_key(str(token), key_entry.get("metadata"))

    def _fold_team(self, day: str, breakdown: Mapping[str, Any]) -> None:
        entries = breakdown.get("entities")
        if not isinstance(entries, Mapping):
            return
        for team_id, entry in entries.items():
            if not isinstance(entry, Mapping):
                continue
            self._add((day, Grain.TEAM, str(team_id), ""), entry.get("metrics"))
            meta = entry.get("metadata")
            alias = meta.get("team_alias") if isinstance(meta, Mapping) else None
            if alias:
                self.aliases[str(team_id)] = str(alias)

    def facts(self) -> list[FactRow]:
        out: list[FactRow] = []
        parsed: dict[str, date] = {}
        for (day, grain, entity, detail), cell in self._cells.items():
            when = parsed.get(day)
            if when is None:
                try:
                    when = parsed[day] = date.fromisoformat(day)
                except ValueError:
                    raise MalformedResponse(
                        f"source {self.source!r}: bad date {day!r} in daily activity", source=self.source
                    ) from None
            out.append(FactRow(when, grain, entity, detail, tuple(cell)))
        return out


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
