"""The routing tree: inheritance, first-match and continue, missing receivers, group keys and labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sentinel.config import RouteSettings, Settings
from sentinel.route.tree import Destination, Route, build, group_key, match

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)

# As it would come out of config.toml's [route] table.
TREE = RouteSettings.model_validate(
    {
        "receiver": "default",
        "group_by": ["rule"],
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True, "group_wait": "10s"},
            {
                "matchers": ['team=~"search|ads"'],
                "receiver": "slack-search",
                "group_by": ["team"],
                "routes": [
                    {"matchers": ["kind=budget"], "group_by": ["team", "entity_id"], "repeat_interval": "1h"},
                ],
            },
            {"matchers": ['kind="absence"'], "receiver": "ops", "group_by": ["..."], "group_interval": "10m"},
        ],
    }
)


def node(route: Route, path: str) -> Route:
    """The node at a path like "route.routes[1].routes[0]"."""
    for part in path.split(".")[1:]:
        route = route.routes[int(part.removeprefix("routes[").removesuffix("]"))]
    return route


@pytest.mark.parametrize(
    ("path", "receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "continue_"),
    [
        ("route", "default", ("rule",), 0 * S, 5 * M, 4 * H, False),
        ("route.routes[0]", "pager", ("rule",), 10 * S, 5 * M, 4 * H, True),
        ("route.routes[1]", "slack-search", ("team",), 0 * S, 5 * M, 4 * H, False),
        ("route.routes[1].routes[0]", "slack-search", ("team", "entity_id"), 0 * S, 5 * M, 1 * H, False),
        ("route.routes[2]", "ops", ("...",), 0 * S, 10 * M, 4 * H, False),
    ],
)
def test_build_inherits_what_a_child_leaves_unset(
    path: str,
    receiver: str,
    group_by: tuple[str, ...],
    group_wait: timedelta,
    group_interval: timedelta,
    repeat_interval: timedelta,
    continue_: bool,
) -> None:
    got = node(build(TREE), path)
    assert (got.receiver, got.group_by, got.group_wait, got.group_interval, got.repeat_interval, got.continue_) == (
        receiver,
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        continue_,
    )


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (RouteSettings(), (None, ("rule",), 0 * S, 5 * M, 4 * H)),
        (Settings().route, (None, ("rule",), 0 * S, 5 * M, 4 * H)),
        (
            RouteSettings(receiver="r", group_by=(), group_wait="0s", group_interval="1m", repeat_interval="2d"),
            ("r", (), timedelta(0), 1 * M, 48 * H),
        ),
    ],
)
def test_root_defaults(root: RouteSettings, expected: tuple[Any, ...]) -> None:
    got = build(root)
    assert (got.receiver, got.group_by, got.group_wait, got.group_interval, got.repeat_interval) == expected


def test_a_root_setting_reaches_grandchildren() -> None:
    tree = build(
        RouteSettings(
            receiver="a",
            group_wait="1m",
            routes=(RouteSettings(matchers=("x=1",), routes=(RouteSettings(matchers=("y=1",)),)),),
        )
    )
    grandchild = tree.routes[0].routes[0]
    assert (grandchild.receiver, grandchild.group_wait, grandchild.group_by) == ("a", 1 * M, ("rule",))


# (receiver, route_path, group_key) of each destination, in order.
@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(
            {"rule": "spend", "severity": "warning"},
            [("default", "route", 'route:{rule="spend"}')],
            id="no child matches: the root",
        ),
        pytest.param(
            {"rule": "spend", "severity": "critical"},
            [("pager", "route.routes[0]", 'route.routes[0]:{rule="spend"}')],
            id="continue with no later match: not the root as well",
        ),
        pytest.param(
            {"rule": "spend", "severity": "critical", "team": "search"},
            [
                ("pager", "route.routes[0]", 'route.routes[0]:{rule="spend"}'),
                ("slack-search", "route.routes[1]", 'route.routes[1]:{team="search"}'),
            ],
            id="continue: the next sibling too",
        ),
        pytest.param(
            {"rule": "b", "severity": "critical", "team": "ads", "kind": "budget", "entity_id": "t-1"},
            [
                ("pager", "route.routes[0]", 'route.routes[0]:{rule="b"}'),
                ("slack-search", "route.routes[1].routes[0]", 'route.routes[1].routes[0]:{entity_id="t-1",team="ads"}'),
            ],
            id="continue, then the deepest match",
        ),
        pytest.param(
            {"rule": "b", "team": "search", "kind": "budget"},
            [("slack-search", "route.routes[1].routes[0]", 'route.routes[1].routes[0]:{entity_id="",team="search"}')],
            id="nested child; a missing group label is empty",
        ),
        pytest.param(
            {"rule": "spend", "team": "research"},
            [("default", "route", 'route:{rule="spend"}')],
            id="regex is anchored",
        ),
        pytest.param(
            {"rule": "gone", "team": "search", "kind": "absence"},
            [("slack-search", "route.routes[1]", 'route.routes[1]:{team="search"}')],
            id="first matching child wins over a later one",
        ),
        pytest.param(
            {"rule": "gone", "kind": "absence", "source": "prod"},
            [("ops", "route.routes[2]", 'route.routes[2]:{kind="absence",rule="gone",source="prod"}')],
            id="... groups by every label",
        ),
        pytest.param(
            {"severity": "critical", "kind": "absence", "rule": "gone"},
            [
                ("pager", "route.routes[0]", 'route.routes[0]:{rule="gone"}'),
                ("ops", "route.routes[2]", 'route.routes[2]:{kind="absence",rule="gone",severity="critical"}'),
            ],
            id="continue skips a non-matching sibling",
        ),
    ],
)
def test_match(labels: dict[str, str], expected: list[tuple[str, str, str]]) -> None:
    got = match(build(TREE), labels)
    assert [(d.receiver, d.route_path, d.group_key) for d in got] == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"rule": "spend", "severity": "warning"}, ("default", {"rule": "spend"}, 0 * S, 5 * M, 4 * H)),
        ({"rule": "spend", "severity": "critical"}, ("pager", {"rule": "spend"}, 10 * S, 5 * M, 4 * H)),
        (
            {"rule": "b", "team": "ads", "kind": "budget", "entity_id": "t-1"},
            ("slack-search", {"team": "ads", "entity_id": "t-1"}, 0 * S, 5 * M, 1 * H),
        ),
        (
            {"kind": "absence", "rule": "gone"},
            ("ops", {"kind": "absence", "rule": "gone"}, 0 * S, 10 * M, 4 * H),
        ),
    ],
)
def test_destination_carries_group_labels_and_timing(labels: dict[str, str], expected: tuple[Any, ...]) -> None:
    [got] = match(build(TREE), labels)
    assert (got.receiver, dict(got.group_labels), got.group_wait, got.group_interval, got.repeat_interval) == expected


NO_ROOT_RECEIVER = RouteSettings(
    routes=(
        RouteSettings(matchers=('severity="critical"',), receiver="pager"),
        RouteSettings(matchers=('team="search"',)),  # inherits "no receiver"
    )
)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"rule": "x", "severity": "warning"}, []),
        ({"rule": "x", "severity": "critical"}, ["pager"]),
        ({"rule": "x", "team": "search"}, []),
        ({"rule": "x", "severity": "critical", "team": "search"}, ["pager"]),
    ],
)
def test_no_receiver_sends_nothing(labels: dict[str, str], receivers: list[str]) -> None:
    assert [d.receiver for d in match(build(NO_ROOT_RECEIVER), labels)] == receivers


def test_the_default_settings_route_sends_nothing() -> None:
    assert match(build(Settings().route), {"rule": "x", "severity": "critical"}) == []


def test_two_routes_to_one_receiver_keep_separate_groups() -> None:
    tree = build(
        RouteSettings(
            receiver="slack",
            routes=(
                RouteSettings.model_validate({"matchers": ["kind=budget"], "continue": True}),
                RouteSettings(matchers=("team=search",)),
            ),
        )
    )
    got = match(tree, {"rule": "r", "kind": "budget", "team": "search"})
    assert [(d.receiver, d.group_key) for d in got] == [
        ("slack", 'route.routes[0]:{rule="r"}'),
        ("slack", 'route.routes[1]:{rule="r"}'),
    ]
    assert len({(d.receiver, d.group_key) for d in got}) == len(got)


@pytest.mark.parametrize(
    ("path", "group_labels", "key"),
    [
        ("route", {}, "route:{}"),
        ("route", {"team": "a", "rule": "b"}, 'route:{rule="b",team="a"}'),
        ("route", {"rule": "b", "team": "a"}, 'route:{rule="b",team="a"}'),  # order of the mapping is irrelevant
        ("route.routes[0]", {"rule": 'say "hi"'}, 'route.routes[0]:{rule="say \\"hi\\""}'),
        ("route", {"rule": "a,b=c}"}, 'route:{rule="a,b=c}"}'),
        ("route", {"team": ""}, 'route:{team=""}'),
        ("route", {"team": "équipe"}, 'route:{team="équipe"}'),
    ],
)
def test_group_key(path: str, group_labels: dict[str, str], key: str) -> None:
    assert group_key(path, group_labels) == key


def test_every_label_grouping_is_independent_of_label_order() -> None:
    tree = build(RouteSettings(receiver="r", group_by=("...",)))
    a = match(tree, {"rule": "x", "team": "t", "model": "m"})
    b = match(tree, {"model": "m", "team": "t", "rule": "x"})
    assert a == b
    assert a[0].group_key == 'route:{model="m",rule="x",team="t"}'


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            RouteSettings(routes=(RouteSettings(matchers=("a=1",)), RouteSettings(matchers=("bad-name=1",)))),
            "route.routes[1].matchers[0]: bad label name 'bad-name'",
        ),
        (
            RouteSettings(routes=(RouteSettings(routes=(RouteSettings(matchers=("a=1", 'b=~"("')),)),)),
            "route.routes[0].routes[0].matchers[1]: bad regex '('",
        ),
        (
            RouteSettings(routes=(RouteSettings(matchers=("team==x",)),)),
            "route.routes[0].matchers[0]: unknown operator",
        ),
        (RouteSettings(matchers=("a=1",)), "route.matchers: the root route"),
        (RouteSettings.model_validate({"continue": True}), "route.continue"),
        (RouteSettings(group_by=("...", "team")), 'route.group_by: "..."'),
        (RouteSettings(routes=(RouteSettings(group_by=("rule", "a-b")),)), "route.routes[0].group_by[1]"),
        (RouteSettings(routes=(RouteSettings(repeat_interval="0s"),)), "route.routes[0].repeat_interval: must be"),
        (RouteSettings(group_interval="0m"), "route.group_interval: must be"),
        (RouteSettings(routes=(RouteSettings(receiver=" "),)), "route.routes[0].receiver: empty"),
    ],
)
def test_build_errors_name_the_route_path(settings: RouteSettings, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        build(settings)
    assert message in str(caught.value)


def test_destination_type() -> None:
    [got] = match(build(TREE), {"rule": "spend"})
    assert got == Destination(
        receiver="default",
        group_key='route:{rule="spend"}',
        group_labels={"rule": "spend"},
        group_wait=0 * S,
        group_interval=5 * M,
        repeat_interval=4 * H,
        route_path="route",
    )
