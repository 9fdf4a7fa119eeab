"""Folding daily-activity pages into per-day facts.

The paginated routes split one date over several pages, each carrying partial sums for the rows
on that page (API.md §1.4), so every page is folded into one accumulator per (date, grain,
entity, detail): metrics add field-wise, breakdown maps merge key-wise. The aggregated route is
the same fold over a single page.
"""

from __future__ import annotations

import math
from datetime import date

import msgspec

from sentinel.errors import MalformedResponse
from sentinel.models import FactRow, Grain, KeyRef
from sentinel.source import schema
from sentinel.source.schema import Metrics

_Key = tuple[str, Grain, str, str]  # (date, grain, entity, detail)


def decode_page(route: str, body: bytes, source: str = "") -> schema.ActivityPage:
    """Bytes to a typed page; a body of the wrong shape is a MalformedResponse naming the JSON path."""
    try:
        return schema.USER_PAGE.decode(body) if route == "user" else schema.TEAM_PAGE.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        where = f"source {source!r}: " if source else ""
        raise MalformedResponse(f"{where}{route} daily activity: {exc}", source=source) from None


class ActivityFold:
    """Accumulates the pages of one route into per-day facts."""

    def __init__(self, route: str, source: str = "") -> None:
        if route not in ("user", "team"):
            raise ValueError(route)
        self.route = route
        self.source = source
        self._cells: dict[_Key, list[float]] = {}
        # Spend parts of cells that received more than one page, summed with math.fsum: the exact
        # sum does not depend on the order pages arrive in, so re-reading a day stores identical bits.
        self._spend_parts: dict[_Key, list[float]] = {}
        self.keys: dict[str, KeyRef] = {}
        self.aliases: dict[str, str] = {}

    def _add(self, key: _Key, m: Metrics) -> None:
        spend = m.spend or 0.0
        cell = self._cells.get(key)
        if cell is None:
            self._cells[key] = [
                spend,
                m.prompt_tokens or 0.0,
                m.completion_tokens or 0.0,
                m.cache_read_input_tokens or 0.0,
                m.cache_creation_input_tokens or 0.0,
                m.api_requests or 0.0,
                m.successful_requests or 0.0,
                m.failed_requests or 0.0,
            ]
            return
        parts = self._spend_parts.get(key)
        if parts is None:
            self._spend_parts[key] = [cell[0], spend]
        else:
            parts.append(spend)
        cell[1] += m.prompt_tokens or 0.0
        cell[2] += m.completion_tokens or 0.0
        cell[3] += m.cache_read_input_tokens or 0.0
        cell[4] += m.cache_creation_input_tokens or 0.0
        cell[5] += m.api_requests or 0.0
        cell[6] += m.successful_requests or 0.0
        cell[7] += m.failed_requests or 0.0

    def add_page(self, page: schema.ActivityPage) -> None:
        if isinstance(page, schema.UserActivityPage):
            if self.route != "user":
                raise ValueError("a user page folded into a team fold")
            for result in page.results:
                self._add((result.date, Grain.TOTAL, "", ""), result.metrics)
                if result.breakdown is not None:
                    self._fold_user(result.date, result.breakdown)
        else:
            for team_result in page.results:
                breakdown = team_result.breakdown
                if breakdown is not None and breakdown.entities:
                    for team_id, team in breakdown.entities.items():
                        self._add((team_result.date, Grain.TEAM, team_id, ""), team.metrics)
                        if team.metadata is not None and team.metadata.team_alias:
                            self.aliases[team_id] = team.metadata.team_alias

    def _fold_user(self, day: str, b: schema.UserBreakdown) -> None:
        add = self._add
        if b.entities:
            for user_id, user in b.entities.items():
                add((day, Grain.USER, user_id, ""), user.metrics)
                if user.metadata is not None and user.metadata.user_alias:
                    self.aliases[user_id] = user.metadata.user_alias
        for grain, entries in (
            (Grain.MODEL_GROUP, b.model_groups),
            (Grain.PROVIDER, b.providers),
            (Grain.ENDPOINT, b.endpoints),
        ):
            if entries:
                for name, entry in entries.items():
                    add((day, grain, name, ""), entry.metrics)
        if b.models:
            for model, model_entry in b.models.items():
                add((day, Grain.MODEL, model, ""), model_entry.metrics)
                if model_entry.api_key_breakdown:
                    for token, key_entry in model_entry.api_key_breakdown.items():
                        add((day, Grain.MODEL_KEY, model, token), key_entry.metrics)
        if b.api_keys:
            keys = self.keys
            for token, api_key in b.api_keys.items():
                add((day, Grain.KEY, token, ""), api_key.metrics)
                meta = api_key.metadata
                if meta is not None and token not in keys:
                    keys[token] = KeyRef(token, meta.key_alias or None, meta.user_id or None, meta.team_id or None)

    def facts(self) -> list[FactRow]:
        out: list[FactRow] = []
        parsed: dict[str, date] = {}
        parts = self._spend_parts
        for key, cell in self._cells.items():
            day, grain, entity, detail = key
            when = parsed.get(day)
            if when is None:
                try:
                    when = parsed[day] = date.fromisoformat(day)
                except ValueError:
                    raise MalformedResponse(
                        f"source {self.source!r}: bad date {day!r} in daily activity", source=self.source
                    ) from None
            if key in parts:
                cell[0] = math.fsum(parts[key])
            out.append(FactRow(when, grain, entity, detail, tuple(cell)))
        return out
