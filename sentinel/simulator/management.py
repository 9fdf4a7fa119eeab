"""`/user/list`, `/user/info`, `/team/list`, `/v2/team/list`, `/key/list` in the shapes of the captured
LiteLLM 1.110 fixtures. Budget counters (`spend`) are the current-window sums at the model's clock.

Keys handed to the server for callers (roles.py) are listed like any key, and their users like any user, with
the caller's role: a real proxy lists the viewer user Sentinel reads with, and its key. They have no traffic.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sentinel.simulator.api import ApiError, Params, detail_error
from sentinel.simulator.budgets import iso_ms_z, iso_z, next_reset, window_start
from sentinel.simulator.entities import ADMIN_USER_ID, SimKey, SimTeam, SimUser
from sentinel.simulator.roles import MASTER, Caller
from sentinel.simulator.traffic import TrafficModel

Json = dict[str, Any]
# Every simulated key is set up like the captured proxy's keys: its owner may ask for `mock_response` (API.md §9).
KEY_METADATA: Json = {"allow_client_mock_response": True}


@dataclass(frozen=True)
class _Counters:
    """Spend counters of every user, team and key at one clock reading."""

    user_spend: list[float]
    team_spend: list[float]
    key_spend: list[float]
    key_total: list[float]
    member_total: dict[tuple[int, int], float]  # (team, user) -> lifetime spend of the user's keys in the team
    last_active: list[datetime | None]


def _page_count(total: int, size: int) -> int:
    return math.ceil(total / size) if total else 0


class Management:
    def __init__(self, model: TrafficModel, callers: Mapping[str, Caller] | None = None) -> None:
        self.model = model
        self._cache: tuple[int, _Counters] | None = None
        self._roles = {c.user_id: c.role for c in (callers or {}).values()}
        known = {u.user_id for u in model.users}
        # Set up before the traffic history starts, as an operator would create Sentinel's key.
        created = datetime.combine(model.dates[0] - timedelta(days=1), time(9), model.now.tzinfo)
        self._extra_users: list[SimUser] = []
        self._extra_keys: list[SimKey] = []
        for raw, caller in (callers or {}).items():
            if caller.user_id not in known:
                known.add(caller.user_id)
                self._extra_users.append(SimUser(caller.user_id, None, None, caller.role, (), created, "caller"))
            token = hashlib.sha256(raw.encode()).hexdigest()
            key = SimKey(token, raw, f"sk-...{raw[-4:]}", f"{caller.user_id}-key", caller.user_id, None, created)
            self._extra_keys.append(key)

    def _users(self) -> list[SimUser]:
        """The model's users (with any caller's role) and then the callers' own users."""
        roles = self._roles
        users = [replace(u, user_role=roles[u.user_id]) if u.user_id in roles else u for u in self.model.users]
        return users + self._extra_users

    def _keys(self) -> list[SimKey]:
        """The model's keys, then the callers' keys; an index below `dims.n_keys` is a model key."""
        return self.model.keys + self._extra_keys

    # ------------------------------------------------------------------ counters
    def _counters(self) -> _Counters:
        snap = self.model.snapshot()
        if self._cache is not None and self._cache[0] == snap.version:
            return self._cache[1]
        m, now = self.model, snap.now
        users, teams, keys = self._users(), m.teams, self._keys()
        callers_keys = np.zeros(len(keys) - m.dims.n_keys)  # no traffic
        user_index = {u.user_id: i for i, u in enumerate(users)}
        team_index = {t.team_id: i for i, t in enumerate(teams)}
        key_user = np.array([user_index.get(k.user_id or "", -1) for k in keys], dtype=np.int64)
        key_team = np.array([team_index.get(k.team_id or "", -1) for k in keys], dtype=np.int64)
        total = np.concatenate([m.key_spend_since(None), callers_keys])

        def window(duration: str | None) -> NDArray[np.float64]:
            if duration is None:  # no budget_duration: the counter is never reset
                return total
            since = window_start(duration, next_reset(duration, now)).date()
            return np.concatenate([m.key_spend_since(since), callers_keys])

        def per(owner: NDArray[np.int64], duration: str | None, size: int) -> list[float]:
            valid = owner >= 0
            sums = np.bincount(owner[valid], weights=window(duration)[valid], minlength=size)
            return [float(x) for x in sums]

        user_windows = {d: per(key_user, d, len(users)) for d in {u.budget_duration for u in users}}
        team_windows = {d: per(key_team, d, len(teams)) for d in {t.budget_duration for t in teams}}
        user_spend = [user_windows[u.budget_duration][i] for i, u in enumerate(users)]
        team_spend = [team_windows[t.budget_duration][i] for i, t in enumerate(teams)]
        key_spend = [float(window(k.budget_duration)[i]) for i, k in enumerate(keys)]
        member: dict[tuple[int, int], float] = {}
        for i in range(len(keys)):
            if key_team[i] >= 0 and key_user[i] >= 0:
                pair = (int(key_team[i]), int(key_user[i]))
                member[pair] = member.get(pair, 0.0) + float(total[i])
        counters = _Counters(
            user_spend, team_spend, key_spend, total.tolist(), member, self._last_active(len(keys), snap.now)
        )
        self._cache = (snap.version, counters)
        return counters

    def _last_active(self, n_keys: int, now: datetime) -> list[datetime | None]:
        snap = self.model.snapshot()
        dims = self.model.dims
        last: list[datetime | None] = [None] * n_keys
        for block in snap.between(date.min, date.max):  # newest first: the first hit is the latest day
            for k in np.unique(dims.slot_key[block.slot]).tolist():
                if last[k] is None:
                    moment = datetime.combine(block.day, time(17, 42, 7), now.tzinfo)
                    last[k] = min(moment, now - timedelta(seconds=41))
        return last

    # ------------------------------------------------------------------ users
    def _user_row(self, i: int, user: SimUser, c: _Counters) -> Json:
        reset = next_reset(user.budget_duration, self.model.now) if user.budget_duration else None
        return {
            "user_id": user.user_id,
            "user_alias": user.user_alias,
            "team_id": None,
            "sso_user_id": None,
            "organization_id": None,
            "object_permission_id": None,
            "password_reset_required": None,
            "last_breach_check_at": None,
            "teams": list(user.teams),
            "user_role": user.user_role,
            "max_budget": user.max_budget,
            "spend": c.user_spend[i],
            "user_email": user.user_email,
            "models": [],
            "metadata": {},
            "max_parallel_requests": None,
            "tpm_limit": None,
            "rpm_limit": None,
            "budget_duration": user.budget_duration,
            "budget_reset_at": iso_z(reset) if reset else None,
            "allowed_cache_controls": [],
            "policies": [],
            "model_spend": {},
            "model_max_budget": {},
            "created_at": iso_ms_z(user.created_at),
            "updated_at": iso_ms_z(self._updated(user.created_at)),
        }

    def _updated(self, created: datetime) -> datetime:
        return max(created, self.model.now - timedelta(minutes=7))

    def user_list(self, p: Params) -> Json:
        page = p.integer("page", 1, ge=1)
        size = p.integer("page_size", 25, ge=1, le=100)
        c = self._counters()
        users = list(enumerate(self._users()))
        wanted = set(p.csv("user_ids"))
        role, email, team, search = p.text("role"), p.text("user_email"), p.text("team"), p.text("search")
        users = [
            (i, u)
            for i, u in users
            if (not wanted or u.user_id in wanted)
            and (role is None or u.user_role == role)
            and (email is None or email.lower() in (u.user_email or "").lower())
            and (team is None or team in u.teams)
            and (search is None or search.lower() in f"{u.user_id} {u.user_email or ''}".lower())
        ]
        keys_per_user: dict[str | None, int] = {}
        for k in self._keys():
            keys_per_user[k.user_id] = keys_per_user.get(k.user_id, 0) + 1
        sort_by = p.text("sort_by")
        if sort_by is None:  # the proxy's default: newest first
            users.sort(key=lambda iu: iu[1].created_at, reverse=True)
        else:
            field = {"spend": lambda iu: c.user_spend[iu[0]]}.get(sort_by, lambda iu: getattr(iu[1], sort_by, "") or "")
            users.sort(key=field, reverse=(p.text("sort_order") or "asc").lower() == "desc")
        rows = []
        for i, u in users[(page - 1) * size : page * size]:
            row = self._user_row(i, u, c)
            row.update(
                {
                    "organization_memberships": None,
                    "object_permission": None,
                    "key_count": keys_per_user.get(u.user_id, 0),
                }
            )
            rows.append(row)
        return {
            "users": rows,
            "total": len(users),
            "page": page,
            "page_size": size,
            "total_pages": _page_count(len(users), size),
        }

    def user_info(self, p: Params, caller: Caller = MASTER) -> Json:
        """Without `user_id`: the caller's own row — with every key and team when the caller has the admin view."""
        c = self._counters()
        users = self._users()
        user_id = p.text("user_id")
        wanted = caller.user_id if user_id is None else user_id
        index = next((i for i, u in enumerate(users) if u.user_id == wanted), -1)
        if index < 0:
            raise detail_error(404, f"User {user_id} not found")
        user = users[index]
        info = {"verified_subjects": None, **self._user_row(index, user, c)}
        info.update(
            {
                "litellm_organization_table": None,
                "organization_memberships": [],
                "invitations_created": None,
                "invitations_updated": None,
                "invitations_user": None,
                "object_permission": None,
            }
        )
        aliases = {t.team_id: t.team_alias for t in self.model.teams}
        if user.user_id == ADMIN_USER_ID or (user_id is None and caller.admin_view):
            # The admin view lists every key, as token rows (with `org_id`), and every team as a bare team row.
            return {
                "user_id": user.user_id,
                "user_info": info,
                "keys": [
                    {**self._key_token(i, k, c), "team_alias": aliases.get(k.team_id or "")}
                    for i, k in enumerate(self._keys())
                ],
                "teams": [self._team_row(t, team, c) for t, team in enumerate(self.model.teams)],
            }
        # A user's own view: their keys as `/team/list` embeds keys, and their teams with their membership only.
        info["model_max_budget_usage"] = {}  # per-model budget usage, keyed by model; none are set here
        keys = [(i, k) for i, k in enumerate(self._keys()) if k.user_id == user.user_id]
        teams = [self._team_list_item(t, c) for t in self.model.teams if t.team_id in user.teams]
        for team in teams:
            team["team_memberships"] = [m for m in team["team_memberships"] if m["user_id"] == user.user_id]
        return {
            "user_id": user.user_id,
            "user_info": info,
            "keys": [{**self._key_row(i, k, c), "team_alias": aliases.get(k.team_id or "")} for i, k in keys],
            "teams": teams,
        }

    # ------------------------------------------------------------------ keys
    def _budget_table(self, key: SimKey) -> Json | None:
        """The budget row `/key/generate` creates for a soft budget, as a real 1.108.7 proxy serves it: only
        the soft budget is set there; the key's own row keeps max_budget, budget_duration and the reset."""
        if key.soft_budget is None:
            return None
        stamp = iso_ms_z(key.created_at)
        return {
            "budget_id": key.budget_id,
            "max_budget": None,
            "soft_budget": key.soft_budget,
            "max_parallel_requests": None,
            "tpm_limit": None,
            "rpm_limit": None,
            "tpd_limit": None,
            "model_max_budget": {},
            "budget_duration": None,
            "budget_reset_at": None,
            "allowed_models": [],
            "temp_budget_increase": None,
            "temp_budget_expiry": None,
            "created_at": stamp,
            "created_by": ADMIN_USER_ID,
            "updated_at": stamp,
            "updated_by": ADMIN_USER_ID,
            "organization": None,
            "projects": None,
            "keys": None,
            "end_users": None,
            "tags": None,
            "model_access_groups": None,
            "team_membership": None,
            "organization_membership": None,
        }

    def _key_common(self, i: int, key: SimKey, c: _Counters) -> tuple[str | None, str | None]:
        reset = next_reset(key.budget_duration, self.model.now) if key.budget_duration else None
        active = c.last_active[i]
        return (iso_z(reset) if reset else None), (iso_ms_z(active) if active else None)

    def _key_row(self, i: int, key: SimKey, c: _Counters) -> Json:
        """A key as `/team/list` and `/user/info` embed it."""
        reset, active = self._key_common(i, key, c)
        return {
            "token": key.token,
            "key_name": key.key_name,
            "key_alias": key.key_alias,
            "soft_budget_cooldown": False,
            "spend": c.key_spend[i],
            "total_spend": c.key_total[i],
            "expires": None,
            "models": [],
            "aliases": {},
            "config": {},
            "router_settings": {},
            "user_id": key.user_id,
            "team_id": key.team_id,
            "agent_id": None,
            "project_id": None,
            "permissions": {},
            "max_parallel_requests": None,
            "metadata": dict(KEY_METADATA),
            "blocked": None,
            "tpm_limit": None,
            "rpm_limit": None,
            "tpd_limit": None,
            "max_budget": key.max_budget,
            "budget_duration": key.budget_duration,
            "budget_reset_at": reset,
            "allowed_cache_controls": [],
            "allowed_routes": [],
            "key_type": "default",
            "policies": [],
            "access_group_ids": [],
            "model_spend": {},
            "model_max_budget": {},
            "budget_fallbacks": {},
            "budget_id": key.budget_id,
            "organization_id": None,
            "object_permission_id": None,
            "created_at": iso_ms_z(key.created_at),
            "created_by": ADMIN_USER_ID,
            "updated_at": iso_ms_z(self._updated(key.created_at)),
            "updated_by": ADMIN_USER_ID,
            "settings_updated_at": None,
            "last_active": active,
            "rotation_count": 0,
            "auto_rotate": False,
            "rotation_interval": None,
            "last_rotation_at": None,
            "key_rotation_at": None,
            "budget_limits": None,
            "litellm_budget_table": self._budget_table(key),
            "litellm_organization_table": None,
            "litellm_project_table": None,
            "object_permission": None,
            "jwt_key_mappings": None,
        }

    def _key_token(self, i: int, key: SimKey, c: _Counters) -> Json:
        """A key as the admin view of `/user/info` prints it (the verification-token row, `org_id` included)."""
        reset, active = self._key_common(i, key, c)
        return {
            "token": key.token,
            "key_name": key.key_name,
            "key_alias": key.key_alias,
            "spend": c.key_spend[i],
            "total_spend": c.key_total[i],
            "max_budget": key.max_budget,
            "expires": None,
            "models": [],
            "aliases": {},
            "config": {},
            "user_id": key.user_id,
            "team_id": key.team_id,
            "agent_id": None,
            "project_id": None,
            "max_parallel_requests": None,
            "metadata": dict(KEY_METADATA),
            "tpm_limit": None,
            "rpm_limit": None,
            "tpd_limit": None,
            "budget_duration": key.budget_duration,
            "budget_reset_at": reset,
            "allowed_cache_controls": [],
            "allowed_routes": [],
            "key_type": "default",
            "permissions": {},
            "model_spend": {},
            "model_max_budget": {},
            "budget_fallbacks": {},
            "soft_budget_cooldown": False,
            "blocked": None,
            "litellm_budget_table": self._budget_table(key),
            "budget_id": key.budget_id,
            "org_id": None,
            "created_at": iso_ms_z(key.created_at),
            "created_by": ADMIN_USER_ID,
            "updated_at": iso_ms_z(self._updated(key.created_at)),
            "updated_by": ADMIN_USER_ID,
            "settings_updated_at": None,
            "last_active": active,
            "object_permission_id": None,
            "object_permission": None,
            "access_group_ids": [],
            "rotation_count": 0,
            "auto_rotate": False,
            "rotation_interval": None,
            "last_rotation_at": None,
            "key_rotation_at": None,
            "router_settings": {},
            "budget_limits": None,
        }

    def _key_object(self, i: int, key: SimKey, c: _Counters) -> Json:
        """A key as `/key/list?return_full_object=true` prints it (a UserAPIKeyAuth-shaped object)."""
        row = self._key_token(i, key, c)
        # The auth-object fields the proxy leaves unpopulated on this route (see key_list.json).
        for name in (
            "team_spend",
            "team_alias",
            "team_tpm_limit",
            "team_rpm_limit",
            "team_tpd_limit",
            "team_max_budget",
            "team_soft_budget",
            "team_model_max_budget",
        ):
            row[name] = None
        row.update({"team_models": [], "team_blocked": False})
        for name in (
            "soft_budget",
            "team_model_aliases",
            "team_member",
            "team_metadata",
            "team_object_permission_id",
            "team_member_spend",
            "team_member_tpm_limit",
            "team_member_rpm_limit",
            "end_user_id",
            "end_user_tpm_limit",
            "end_user_rpm_limit",
            "end_user_tpd_limit",
            "end_user_max_budget",
            "end_user_model_max_budget",
            "organization_alias",
            "organization_max_budget",
            "organization_tpm_limit",
            "organization_rpm_limit",
            "organization_metadata",
            "project_alias",
            "project_metadata",
            "last_refreshed_at",
            "api_key",
            "user_role",
            "allowed_model_region",
            "parent_otel_span",
            "rpm_limit_per_model",
            "tpm_limit_per_model",
            "user_tpm_limit",
            "user_rpm_limit",
            "user_email",
            "user_spend",
            "user_max_budget",
            "user_model_max_budget",
            "request_route",
        ):
            row[name] = None
        row.update(
            {
                "is_session_token": False,
                "user": None,
                "created_by_user": None,
                "end_user_object_permission": None,
                "team_object_permission": None,
                "jwt_claims": None,
            }
        )
        return row

    def key_list(self, p: Params) -> Json:
        page = p.integer("page", 1, ge=1)
        size = p.integer("size", 10, ge=1, le=100)
        full = p.flag("return_full_object")
        p.flag("include_team_keys")
        c = self._counters()
        user_id, team_id = p.text("user_id"), p.text("team_id")
        key_hash, alias = p.text("key_hash"), p.text("key_alias")
        keys = [
            (i, k)
            for i, k in enumerate(self._keys())
            if (user_id is None or k.user_id == user_id)
            and (team_id is None or k.team_id == team_id)
            and (key_hash is None or k.token == key_hash)
            and (alias is None or k.key_alias == alias)
        ]
        sort_by = p.text("sort_by")
        descending = (p.text("sort_order") or "desc").lower() == "desc"
        if sort_by == "spend":
            keys.sort(key=lambda ik: c.key_spend[ik[0]], reverse=descending)
        elif sort_by == "max_budget":
            keys.sort(key=lambda ik: ik[1].max_budget or 0.0, reverse=descending)
        elif sort_by == "key_alias":
            keys.sort(key=lambda ik: ik[1].key_alias, reverse=descending)
        else:  # created_at, newest first, as the proxy does by default
            keys.sort(key=lambda ik: ik[1].created_at, reverse=descending)
        chosen = keys[(page - 1) * size : page * size]
        rows: list[Any] = [self._key_object(i, k, c) if full else k.token for i, k in chosen]
        return {
            "keys": rows,
            "total_count": len(keys),
            "current_page": page,
            "total_pages": _page_count(len(keys), size),
        }

    # ------------------------------------------------------------------ teams
    def _team_row(self, t: int, team: SimTeam, c: _Counters) -> Json:
        reset = next_reset(team.budget_duration, self.model.now) if team.budget_duration else None
        emails = {u.user_id: u.user_email for u in self._users()}
        members = [{"user_id": ADMIN_USER_ID, "user_email": None, "role": "admin"}]
        members += [{"user_id": u, "user_email": emails.get(u), "role": "user"} for u in team.members]
        return {
            "team_alias": team.team_alias,
            "team_id": team.team_id,
            "organization_id": None,
            "admins": [],
            "members": [],
            "members_with_roles": members,
            "team_member_permissions": [],
            "metadata": {},
            "tpm_limit": None,
            "rpm_limit": None,
            "tpd_limit": None,
            "max_budget": team.max_budget,
            "soft_budget": team.soft_budget,
            "budget_duration": team.budget_duration,
            "budget_limits": None,
            "models": [],
            "blocked": False,
            "router_settings": {},
            "access_group_ids": [],
            "default_team_member_models": [],
            "spend": c.team_spend[t],
            "max_parallel_requests": None,
            "budget_reset_at": iso_z(reset) if reset else None,
            "model_id": None,
            "model_spend": {},
            "model_max_budget": {},
            "policies": [],
            "allow_team_guardrail_config": False,
            "litellm_model_table": None,
            "object_permission": None,
            "object_permission_id": None,
            "updated_at": iso_ms_z(self._updated(team.created_at)),
            "created_at": iso_ms_z(team.created_at),
        }

    def _team_list_item(self, team: SimTeam, c: _Counters) -> Json:
        teams = self.model.teams
        t = next(i for i, x in enumerate(teams) if x.team_id == team.team_id)
        user_index = {u.user_id: i for i, u in enumerate(self._users())}
        row = self._team_row(t, team, c)
        memberships = [
            {
                "user_id": ADMIN_USER_ID,
                "team_id": team.team_id,
                "budget_id": None,
                "spend": 0.0,
                "total_spend": 0.0,
                "litellm_budget_table": None,
            }
        ]
        for u in team.members:
            spent = c.member_total.get((t, user_index[u]), 0.0)
            memberships.append(
                {
                    "user_id": u,
                    "team_id": team.team_id,
                    "budget_id": None,
                    "spend": spent,
                    "total_spend": spent,
                    "litellm_budget_table": None,
                }
            )
        row["team_memberships"] = memberships
        row["keys"] = [self._key_row(i, k, c) for i, k in enumerate(self._keys()) if k.team_id == team.team_id]
        return row

    def team_list(self, p: Params) -> list[Json]:
        c = self._counters()
        user_id = p.text("user_id")
        org = p.text("organization_id")
        teams = [
            t
            for t in self.model.teams
            if (user_id is None or user_id in t.members) and (org is None or org == "default_organization")
        ]  # no team belongs to an organization
        return [self._team_list_item(t, c) for t in sorted(teams, key=lambda t: t.team_alias)]

    def v2_team_list(self, p: Params) -> Json:
        page = p.integer("page", 1, ge=1)
        size = p.integer("page_size", 10, ge=1, le=100)
        c = self._counters()
        user_id, team_id, alias = p.text("user_id"), p.text("team_id"), p.text("team_alias")
        teams = [
            (t, x)
            for t, x in enumerate(self.model.teams)
            if (user_id is None or user_id in x.members)
            and (team_id is None or x.team_id == team_id)
            and (alias is None or alias.lower() in x.team_alias.lower())
        ]
        sort_by = p.text("sort_by")
        if sort_by is None:
            teams.sort(key=lambda tx: tx[1].created_at, reverse=True)
        else:
            descending = (p.text("sort_order") or "asc").lower() == "desc"
            if sort_by == "spend":
                teams.sort(key=lambda tx: c.team_spend[tx[0]], reverse=descending)
            else:
                teams.sort(key=lambda tx: str(getattr(tx[1], sort_by, "") or ""), reverse=descending)
        key_counts: dict[str | None, int] = {}
        for k in self._keys():
            key_counts[k.team_id] = key_counts.get(k.team_id, 0) + 1
        rows = []
        for t, team in teams[(page - 1) * size : page * size]:
            row = self._team_row(t, team, c)
            row.update(
                {
                    "members_count": len(team.members) + 1,
                    "keys_count": key_counts.get(team.team_id, 0),
                    "access_group_models": None,
                    "access_group_mcp_server_ids": None,
                    "access_group_agent_ids": None,
                    "access_group_skill_names": None,
                }
            )
            rows.append(row)
        return {
            "teams": rows,
            "total": len(teams),
            "page": page,
            "page_size": size,
            "total_pages": _page_count(len(teams), size),
        }


__all__ = ["ApiError", "Management"]
