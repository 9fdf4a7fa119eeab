"""The typed shape of daily-activity answers, decoded straight from bytes with msgspec.

Only the fields Sentinel stores are declared: msgspec skips everything else without building
it, which matters because a big proxy answers tens of MB a day, most of it per-key maps nested
under maps Sentinel reads only at the top level. Missing numbers default to 0, unknown fields are
ignored, and a wrong type raises (with its JSON path) instead of being guessed at.
"""

from __future__ import annotations

import msgspec

Number = float | None  # JSON ints decode as floats: sums of counts stay exact below 2**53


class Metrics(msgspec.Struct):
    spend: Number = 0.0
    prompt_tokens: Number = 0.0
    completion_tokens: Number = 0.0
    cache_read_input_tokens: Number = 0.0
    cache_creation_input_tokens: Number = 0.0
    api_requests: Number = 0.0
    successful_requests: Number = 0.0
    failed_requests: Number = 0.0


def _metrics() -> Metrics:
    return Metrics()


class Entry(msgspec.Struct):
    metrics: Metrics = msgspec.field(default_factory=_metrics)


class KeyMetadata(msgspec.Struct):
    key_alias: str | None = None
    team_id: str | None = None
    user_id: str | None = None


class KeyEntry(msgspec.Struct):
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    metadata: KeyMetadata | None = None


class ModelEntry(msgspec.Struct):
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    api_key_breakdown: dict[str, Entry] | None = None


class UserMetadata(msgspec.Struct):
    user_alias: str | None = None


class UserEntry(msgspec.Struct):
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    metadata: UserMetadata | None = None


class TeamMetadata(msgspec.Struct):
    team_alias: str | None = None


class TeamEntry(msgspec.Struct):
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    metadata: TeamMetadata | None = None


class UserBreakdown(msgspec.Struct):
    entities: dict[str, UserEntry] | None = None
    models: dict[str, ModelEntry] | None = None
    model_groups: dict[str, Entry] | None = None
    providers: dict[str, Entry] | None = None
    endpoints: dict[str, Entry] | None = None
    api_keys: dict[str, KeyEntry] | None = None


class TeamBreakdown(msgspec.Struct):
    entities: dict[str, TeamEntry] | None = None


class PageMetadata(msgspec.Struct):
    page: int | None = None
    total_pages: int | None = None
    has_more: bool = False
    api_key_limit: int | None = None
    total_api_keys: int | None = None


class UserResult(msgspec.Struct):
    date: str
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    breakdown: UserBreakdown | None = None


class TeamResult(msgspec.Struct):
    date: str
    metrics: Metrics = msgspec.field(default_factory=_metrics)
    breakdown: TeamBreakdown | None = None


def _page_metadata() -> PageMetadata:
    return PageMetadata()


class UserActivityPage(msgspec.Struct):
    results: list[UserResult]
    metadata: PageMetadata = msgspec.field(default_factory=_page_metadata)


class TeamActivityPage(msgspec.Struct):
    results: list[TeamResult]
    metadata: PageMetadata = msgspec.field(default_factory=_page_metadata)


ActivityPage = UserActivityPage | TeamActivityPage

USER_PAGE = msgspec.json.Decoder(UserActivityPage)
TEAM_PAGE = msgspec.json.Decoder(TeamActivityPage)
