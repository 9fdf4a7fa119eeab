"""The routing tree: which receivers an alert goes to, and in which group.

Alertmanager's semantics. Every alert enters at the root, which matches everything. Depth first, a child
whose matchers all match takes the alert; the first such child ends the search among its siblings unless
it sets ``continue``, in which case the following siblings are tried too. A node none of whose children
take the alert is itself a destination. A child inherits every setting it leaves unset from its parent;
a destination without a receiver (none set anywhere on its path) sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from sentinel.config import RouteSettings, parse_duration
from sentinel.route.matchers import Matcher, check_label_name, parse

ALL_LABELS = "..."  # group_by = ["..."]: one group per distinct label set

ROOT_GROUP_BY: tuple[str, ...] = ("rule",)
ROOT_GROUP_WAIT = timedelta(0)  # one evaluation finds a group's alerts together: no need to wait
ROOT_GROUP_INTERVAL = timedelta(minutes=5)
ROOT_REPEAT_INTERVAL = timedelta(hours=4)


@dataclass(frozen=True)
class Route:
    """One node of the resolved tree: every inherited setting already filled in."""

    receiver: str | None
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Destination:
    """One place an alert goes: a receiver, and the group it joins there."""

    receiver: str
    group_key: str  # 'route.routes[1]:{rule="x",team="y"}': route path + sorted group labels
    group_labels: Mapping[str, str]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    route_path: str  # "route", "route.routes[1]", "route.routes[1].routes[0]"


def build(settings: RouteSettings) -> Route:
    """Resolve the configured tree; a ``ValueError`` names the route path of the bad setting."""
    if settings.matchers:
        raise ValueError("route.matchers: the root route takes every alert and cannot have matchers")
    if settings.continue_:
        raise ValueError("route.continue: the root route has no siblings to continue to")
    root = Route(
        receiver=None,
        matchers=(),
        group_by=ROOT_GROUP_BY,
        group_wait=ROOT_GROUP_WAIT,
        group_interval=ROOT_GROUP_INTERVAL,
        repeat_interval=ROOT_REPEAT_INTERVAL,
        continue_=False,
        routes=(),
    )
    return _build(settings, root, "route")


def _build(settings: RouteSettings, parent: Route, path: str) -> Route:
    matchers = []
    for i, text in enumerate(settings.matchers):
        try:
            matchers.append(parse(text))
        except ValueError as exc:
            raise ValueError(f"{path}.matchers[{i}]: {exc}") from None
    if settings.receiver is not None and not settings.receiver.strip():
        raise ValueError(f"{path}.receiver: empty; name a receiver or leave it out to inherit the parent's")
    node = Route(
        receiver=settings.receiver if settings.receiver is not None else parent.receiver,
        matchers=tuple(matchers),
        group_by=_group_by(settings.group_by, path) if settings.group_by is not None else parent.group_by,
        group_wait=_duration(settings.group_wait, parent.group_wait, f"{path}.group_wait", zero_ok=True),
        group_interval=_duration(settings.group_interval, parent.group_interval, f"{path}.group_interval"),
        repeat_interval=_duration(settings.repeat_interval, parent.repeat_interval, f"{path}.repeat_interval"),
        continue_=settings.continue_,
        routes=(),
    )
    children = tuple(_build(child, node, f"{path}.routes[{i}]") for i, child in enumerate(settings.routes))
    return replace(node, routes=children)


def _group_by(names: tuple[str, ...], path: str) -> tuple[str, ...]:
    if ALL_LABELS in names:
        if len(names) > 1:
            raise ValueError(f'{path}.group_by: "..." (every label) cannot be combined with label names')
        return (ALL_LABELS,)
    out: list[str] = []
    for i, name in enumerate(names):
        try:
            check_label_name(name)
        except ValueError as exc:
            raise ValueError(f"{path}.group_by[{i}]: {exc}") from None
        if name not in out:
            out.append(name)
    return tuple(out)


def _duration(text: str | None, inherited: timedelta, where: str, *, zero_ok: bool = False) -> timedelta:
    if text is None:
        return inherited
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not zero_ok and value <= timedelta(0):
        raise ValueError(f"{where}: must be longer than 0s")
    return value


def match(route: Route, labels: Mapping[str, str]) -> list[Destination]:
    """Where an alert with these labels goes, in tree order; empty when no receiver takes it."""
    out: list[Destination] = []
    seen: set[tuple[str, str]] = set()
    for node, path in _walk(route, labels, "route"):
        if node.receiver is None:
            continue
        group_labels = _group_labels(node.group_by, labels)
        key = group_key(path, group_labels)
        if (node.receiver, key) in seen:
            continue
        seen.add((node.receiver, key))
        out.append(
            Destination(
                receiver=node.receiver,
                group_key=key,
                group_labels=group_labels,
                group_wait=node.group_wait,
                group_interval=node.group_interval,
                repeat_interval=node.repeat_interval,
                route_path=path,
            )
        )
    return out


def _walk(node: Route, labels: Mapping[str, str], path: str) -> list[tuple[Route, str]]:
    """The nodes that take the alert below (or at) ``node``, which the caller has matched already."""
    found: list[tuple[Route, str]] = []
    for i, child in enumerate(node.routes):
        if not all(m.matches(labels) for m in child.matchers):
            continue
        found.extend(_walk(child, labels, f"{path}.routes[{i}]"))
        if not child.continue_:
            break
    return found or [(node, path)]


def _group_labels(group_by: tuple[str, ...], labels: Mapping[str, str]) -> dict[str, str]:
    if group_by == (ALL_LABELS,):
        return dict(labels)
    return {name: labels.get(name, "") for name in group_by}


def group_key(route_path: str, group_labels: Mapping[str, str]) -> str:
    """A stable key: the route path, then the group labels sorted by name with JSON-quoted values."""
    body = ",".join(f"{name}={json.dumps(group_labels[name], ensure_ascii=False)}" for name in sorted(group_labels))
    return f"{route_path}:{{{body}}}"
