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
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

import sqlite_utils

from sentinel import logs
from sentinel.config import PrivacySettings
from sentinel.errors import ConfigError
from sentinel.models import DailyActivity, Grain, KeyRecord, KeyRef, TeamRecord, UserRecord
from sentinel.rules.loader import RuleSet
from sentinel.rules.schema import AbsenceRule, AnomalyRule, BudgetRule, Selector, ThresholdRule
from sentinel.store import transaction

PREFIX = "u-"
UNASSIGNED = ("", "Unassigned")  # keys without a user: not a person, kept as the proxy names them
R = TypeVar("R", AnomalyRule, BudgetRule, ThresholdRule, AbsenceRule)


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


def rules_for(rules: RuleSet, transform: Pseudonymizer) -> RuleSet:
    """Rule files name users by their real ids; the store holds pseudonyms. Each selector also
    matches the pseudonyms of the ids it names (an id that is not a user's matches nothing more),
    and a ``user`` entity label (a key's owner) is the pseudonym."""
    if not transform.active:
        return rules

    def select(sel: Selector) -> Selector:
        if not sel.ids and "user" not in sel.labels:
            return sel
        ids = tuple(dict.fromkeys((*sel.ids, *(transform.user(i) for i in sel.ids))))
        labels = {**sel.labels, **({"user": transform.user(sel.labels["user"])} if "user" in sel.labels else {})}
        return sel.model_copy(update={"ids": ids, "labels": labels})

    def each(group: tuple[R, ...]) -> tuple[R, ...]:
        return tuple(r.model_copy(update={"select": select(r.select)}) for r in group)

    return replace(
        rules,
        budgets=each(rules.budgets),
        anomalies=each(rules.anomalies),
        thresholds=each(rules.thresholds),
        absences=each(rules.absences),
    )


def check_store(db: sqlite_utils.Database, transform: Pseudonymizer, now: datetime) -> None:
    """Refuse to mix real ids and pseudonyms in one store: the mode of the first sync is kept
    (``daemon_state`` key "privacy"), and a sync in the other mode is a configuration error."""
    mode = "pseudonymized" if transform.active else "plain"
    row = db.conn.execute("SELECT value FROM daemon_state WHERE key = 'privacy'").fetchone()
    stored = json.loads(row[0]).get("mode") if row else None
    if stored is None:
        ids = [r[0] for r in db.conn.execute("SELECT user_id FROM users LIMIT 50")]
        if ids:  # a store from before the mode was recorded: what do its ids look like?
            stored = "pseudonymized" if all(i.startswith(PREFIX) or i in UNASSIGNED for i in ids) else "plain"
        else:
            stored = mode
        with transaction(db):
            db.conn.execute(
                "INSERT OR REPLACE INTO daemon_state (key, value, updated_at) VALUES ('privacy', ?, ?)",
                (json.dumps({"mode": stored}), now.isoformat()),
            )
    if stored != mode:
        raise ConfigError(
            f"[privacy] pseudonymize_users is {'on' if transform.active else 'off'}, but this store holds "
            f"{'pseudonymized' if stored == 'pseudonymized' else 'real'} user ids; mixing them would split people "
            "in two. Use a new store (store.path) for the new setting, or set it back."
        )
