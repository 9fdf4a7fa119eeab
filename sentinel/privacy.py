"""What Sentinel keeps about people: user ids as opaque pseudonyms, applied once at ingest.

With ``[privacy] pseudonymize_users`` on, every user id read from a proxy becomes
``u-`` + the first 16 hex digits of HMAC-SHA256(pseudonym key, id) before it reaches the store, and
user aliases are dropped; so alerts, digests and reports (which only read the store) show the
pseudonym everywhere, consistently. The same key turns a real id written by an operator (a rule
selector, ``sentinel purge --user``) into the id the store holds. Emails are never stored.

The transform is a pure function over the typed records the client returns.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

from sentinel import logs
from sentinel.config import PrivacySettings
from sentinel.models import DailyActivity, Grain, KeyRecord, KeyRef, TeamRecord, UserRecord

PREFIX = "u-"
UNASSIGNED = ("", "Unassigned")  # keys without a user: not a person, kept as the proxy names them


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps user ids to pseudonyms; ``key`` None: the identity (pseudonymization is off)."""

    key: bytes | None = None
    key_aliases: bool = True  # keep key aliases (they may carry names: [privacy] store_key_aliases)

    @property
    def active(self) -> bool:
        return self.key is not None

    def user(self, user_id: str) -> str:
        if self.key is None or user_id in UNASSIGNED or user_id.startswith(PREFIX):
            return user_id
        digest = hmac.new(self.key, user_id.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:16]

    def maybe_user(self, user_id: str | None) -> str | None:
        return None if user_id is None else self.user(user_id)

    # ---- records from the proxy ------------------------------------------------------------
    def activity(self, activity: DailyActivity) -> DailyActivity:
        """User-grain facts under pseudonyms, key owners hashed, user aliases gone."""
        if not self.active and self.key_aliases:
            return activity
        facts = activity.facts
        aliases = activity.aliases
        if self.active:
            facts = tuple(
                replace(f, entity_id=self.user(f.entity_id)) if f.grain == Grain.USER else f for f in activity.facts
            )
            # The user route's aliases are user aliases (names, emails): none are kept.
            users = {f.entity_id for f in activity.facts if f.grain == Grain.USER}
            aliases = {k: v for k, v in activity.aliases.items() if k not in users}
        keys = tuple(self.key_ref(k) for k in activity.keys)
        return replace(activity, facts=facts, keys=keys, aliases=dict(aliases))

    def key_ref(self, ref: KeyRef) -> KeyRef:
        return replace(
            ref,
            user_id=self.maybe_user(ref.user_id),
            alias=ref.alias if self.key_aliases else None,
        )

    def users(self, rows: list[UserRecord]) -> list[UserRecord]:
        if not self.active:
            return rows
        return [replace(u, user_id=self.user(u.user_id), alias=None) for u in rows]

    def teams(self, rows: list[TeamRecord]) -> list[TeamRecord]:
        if not self.active:
            return rows
        return [
            replace(t, members=tuple(self.user(m) for m in t.members), admins=tuple(self.user(a) for a in t.admins))
            for t in rows
        ]

    def keys(self, rows: list[KeyRecord]) -> list[KeyRecord]:
        if not self.active and self.key_aliases:
            return rows
        return [
            replace(k, user_id=self.maybe_user(k.user_id), alias=k.alias if self.key_aliases else None) for k in rows
        ]


IDENTITY = Pseudonymizer()


def from_settings(privacy: PrivacySettings, environ: dict[str, str] | None = None) -> Pseudonymizer:
    """The configured transform; reads the pseudonym key now (a rotated key would change every id:
    keep it as long as the store)."""
    if not privacy.pseudonymize_users:
        return Pseudonymizer(None, privacy.store_key_aliases)
    secret = privacy.pseudonym_key(environ).get_secret_value()
    logs.register_secret(secret)
    return Pseudonymizer(secret.encode(), privacy.store_key_aliases)
