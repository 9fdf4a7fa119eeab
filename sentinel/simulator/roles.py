"""Keys other than the master key, and what each role may read, as a real LiteLLM 1.108.7 proxy answers.

The answers were measured on the real proxy (ROLES.md beside this file); the few marked "source" there were
read from its code instead. Admin roles see everything the master key sees. An internal user is refused the
admin-only lists and sees only their own rows, keys and teams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sentinel.simulator.api import Params, detail_error, proxy_error
from sentinel.simulator.entities import ADMIN_USER_ID

Role = Literal["proxy_admin", "proxy_admin_viewer", "internal_user"]
ROLES: tuple[Role, ...] = ("proxy_admin", "proxy_admin_viewer", "internal_user")


@dataclass(frozen=True)
class Caller:
    """The user a virtual key authenticates as, and that user's role."""

    user_id: str
    role: Role

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")

    @property
    def admin_view(self) -> bool:
        """proxy_admin and proxy_admin_viewer read every route like the master key (API.md §1.2)."""
        return self.role != "internal_user"


MASTER = Caller(ADMIN_USER_ID, "proxy_admin")


@dataclass(frozen=True)
class Scoped:
    """A request's parameters after the caller's scope was applied."""

    params: Params
    caller: Caller
    owner: str | None = None  # only rows of this user's keys (internal users on team routes and spend logs)


def _with(p: Params, **values: str) -> Params:
    return Params({**p.values, **values})


def scope(path: str, p: Params, caller: Caller, teams: tuple[str, ...]) -> Scoped:
    """Refuse or narrow a request the way the proxy does for `caller`, a member of `teams`."""
    if caller.admin_view:
        return Scoped(p, caller)
    me, asked = caller.user_id, p.text("user_id")
    if path in ("/user/daily/activity", "/user/daily/activity/aggregated"):
        if asked is not None and asked != me:
            raise detail_error(403, "Non-admin users can only view their own spend data.")
        return Scoped(_with(p, user_id=me), caller)
    if path in ("/team/daily/activity", "/team/daily/activity/aggregated"):
        for team_id in p.csv("team_ids"):
            if team_id not in teams:
                raise detail_error(
                    404, f"User does not belong to Team= {team_id}. Call `/user/info` to see user's teams"
                )
        # not an admin of the teams: the proxy narrows the answer to the caller's own keys
        return Scoped(p, caller, owner=me)
    if path == "/spend/logs/v2":
        return Scoped(p, caller, owner=me)
    if path == "/user/info":
        if asked is not None and asked != me:
            raise proxy_error(
                403,
                f"key not allowed to access this user's info. user_id={asked}, key's user_id={me}",
                "auth_error",
                "None",
            )
        return Scoped(p, caller)
    if path == "/user/list":
        raise detail_error(403, "Only proxy admins and organization admins can list users.")
    if path in ("/team/list", "/v2/team/list"):
        if asked != me:  # only "my teams" (user_id=<self>) is allowed
            raise detail_error(401, f"Only admin users can query all teams/other teams. Your user role={caller.role}")
        return Scoped(p, caller)
    if path == "/key/list":
        if asked is not None and asked != me:
            raise proxy_error(
                403, "You are not authorized to check another user's keys", "bad_request_error", "user_id"
            )
        team = p.text("team_id")
        if team is not None and team not in teams:
            raise proxy_error(403, "You are not authorized to check this team's keys", "bad_request_error", "team_id")
        return Scoped(_with(p, user_id=me), caller)
    return Scoped(p, caller)
