"""Silences: an operator's "mute alerts like these until then". Pure: every decision takes ``now``.

A silence is pending before ``starts_at``, active from ``starts_at`` up to (not including) ``ends_at``,
and expired from ``ends_at`` on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sentinel.route.matchers import Matcher, matches_all, parse

State = Literal["pending", "active", "expired"]


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    author: str
    comment: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime

    def state(self, now: datetime) -> State:
        if now < self.starts_at:
            return "pending"
        if now < self.ends_at:
            return "active"
        return "expired"

    def is_active(self, now: datetime) -> bool:
        return self.state(now) == "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def new(
    matchers: Sequence[str],
    author: str,
    comment: str,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> Silence:
    """A validated new silence with a fresh id; ``ValueError`` says what is wrong."""
    if isinstance(matchers, str):
        raise ValueError("matchers must be a list of matcher strings, not one string")
    if not matchers:
        raise ValueError('a silence needs at least one matcher, e.g. rule="team-spend"')
    parsed = tuple(parse(text) for text in matchers)
    if matches_all(parsed, {}):
        shown = ", ".join(str(m) for m in parsed)
        raise ValueError(
            f"matchers {shown} would also match an alert with no labels, so they would mute everything; "
            'add a matcher that needs a label to be set, e.g. rule="team-spend" or team!=""'
        )
    if not author.strip():
        raise ValueError("a silence needs an author")
    if not comment.strip():
        raise ValueError("a silence needs a comment saying why")
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at), ("now", now)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must carry a timezone (got {value.isoformat()})")
    if ends_at <= starts_at:
        raise ValueError(f"ends_at {ends_at.isoformat()} must be after starts_at {starts_at.isoformat()}")
    if ends_at <= now:
        raise ValueError(f"ends_at {ends_at.isoformat()} is already past")
    return Silence(
        id=uuid.uuid4().hex[:12],
        matchers=parsed,
        author=author.strip(),
        comment=comment.strip(),
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        created_at=now.astimezone(UTC),
    )


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The first silence active at ``now`` whose matchers all match ``labels``, else None."""
    for silence in silences:
        if silence.is_active(now) and silence.matches(labels):
            return silence
    return None
