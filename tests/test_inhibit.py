"""Inhibition: the shipped default (an exhausted budget mutes the same entity's upward anomalies) and the
general rules: equal labels, self-inhibition, two-sided matches, and configuration errors."""

from __future__ import annotations

import pytest

from sentinel.config import DEFAULT_INHIBIT, InhibitSettings, Settings
from sentinel.route.inhibit import InhibitRule, build_rules, inhibited_by
from sentinel.route.matchers import parse

EXHAUSTED = {"kind": "budget", "exhausted": "true", "entity_type": "team", "entity_id": "t-search", "rule": "b"}
SPIKE = {"kind": "anomaly", "direction": "up", "entity_type": "team", "entity_id": "t-search", "rule": "a"}


@pytest.mark.parametrize(
    ("target", "firing", "muted"),
    [
        pytest.param(SPIKE, [EXHAUSTED], True, id="same entity's upward anomaly"),
        pytest.param(SPIKE, [], False, id="nothing firing"),
        pytest.param(SPIKE, [{**EXHAUSTED, "entity_id": "t-ads"}], False, id="another entity's budget"),
        pytest.param(SPIKE, [{**EXHAUSTED, "entity_type": "user"}], False, id="same id, another entity type"),
        pytest.param({**SPIKE, "direction": "down"}, [EXHAUSTED], False, id="a drop is not inhibited"),
        pytest.param(SPIKE, [{**EXHAUSTED, "exhausted": "false"}], False, id="budget not exhausted"),
        pytest.param(SPIKE, [{k: v for k, v in EXHAUSTED.items() if k != "exhausted"}], False, id="no exhausted"),
        pytest.param({**SPIKE, "kind": "absence"}, [EXHAUSTED], False, id="not an anomaly"),
        pytest.param(SPIKE, [{**SPIKE, "rule": "other"}], False, id="another anomaly is no source"),
        pytest.param(SPIKE, [{"kind": "x"}, {**EXHAUSTED, "entity_id": "t-ads"}, EXHAUSTED], True, id="any source"),
        pytest.param(
            {k: v for k, v in SPIKE.items() if k != "entity_type"},
            [{k: v for k, v in EXHAUSTED.items() if k != "entity_type"}],
            True,
            id="a label missing on both is equal",
        ),
        pytest.param(
            {k: v for k, v in SPIKE.items() if k != "entity_type"},
            [EXHAUSTED],
            False,
            id="missing on one side only",
        ),
        pytest.param(EXHAUSTED, [EXHAUSTED], False, id="the budget alert itself is not muted"),
    ],
)
def test_default_inhibit(target: dict[str, str], firing: list[dict[str, str]], muted: bool) -> None:
    rules = build_rules(DEFAULT_INHIBIT)
    assert (inhibited_by(target, firing, rules) is not None) is muted


def test_default_settings_ship_the_default_rules() -> None:
    budget, absence = build_rules(Settings().inhibit)
    assert budget == InhibitRule(
        source=(parse('kind="budget"'), parse('exhausted="true"')),
        target=(parse('kind="anomaly"'), parse('direction="up"')),
        equal=("entity_type", "entity_id"),
    )
    assert absence == InhibitRule(
        source=(parse('kind="absence"'),),
        target=(parse('kind="anomaly"'), parse('direction="down"')),
        equal=("entity_type", "entity_id"),
    )


def test_an_absence_mutes_the_drop_anomaly_of_the_same_provider_only() -> None:
    rules = build_rules(Settings().inhibit)
    stopped = {"kind": "absence", "entity_type": "provider", "entity_id": "anthropic"}
    drop = {"kind": "anomaly", "direction": "down", "entity_type": "provider", "entity_id": "anthropic"}
    assert inhibited_by(drop, [stopped], rules) is not None
    assert inhibited_by({**drop, "entity_id": "openai"}, [stopped], rules) is None
    assert inhibited_by({**drop, "direction": "up"}, [stopped], rules) is None


# Every warning is muted by a critical of the same team, including one that matches both sides.
BROAD = build_rules([InhibitSettings(source_matchers=("severity=~critical|warning",), target_matchers=("team!=",))])
BY_SEVERITY = build_rules(
    [InhibitSettings(source_matchers=("severity=critical",), target_matchers=("severity=warning",), equal=("team",))]
)


@pytest.mark.parametrize(
    ("rules", "target", "firing", "muted"),
    [
        pytest.param(BY_SEVERITY, {"severity": "warning", "team": "a"}, [{"severity": "critical", "team": "a"}], True),
        pytest.param(BY_SEVERITY, {"severity": "warning", "team": "a"}, [{"severity": "critical", "team": "b"}], False),
        pytest.param(BY_SEVERITY, {"severity": "warning"}, [{"severity": "critical"}], True, id="both teamless"),
        pytest.param(
            BY_SEVERITY, {"severity": "warning", "team": ""}, [{"severity": "critical"}], True, id="empty is missing"
        ),
        pytest.param(
            BY_SEVERITY, {"severity": "critical", "team": "a"}, [{"severity": "critical", "team": "a"}], False
        ),
        pytest.param(
            BROAD,
            {"severity": "critical", "team": "a"},
            [{"severity": "critical", "team": "a"}],
            False,
            id="an alert never inhibits itself",
        ),
        pytest.param(
            BROAD,
            {"severity": "warning", "team": "a", "rule": "x"},
            [{"severity": "critical", "team": "b", "rule": "y"}],
            False,
            id="two alerts matching both sides do not mute each other",
        ),
        pytest.param(
            BROAD,
            {"severity": "warning", "team": "a"},
            [{"severity": "critical"}],
            True,
            id="a source that is no target mutes a two-sided target",
        ),
        pytest.param(
            BROAD,
            {"severity": "info", "team": "a"},
            [{"severity": "critical", "team": "b"}],
            True,
            id="a target that is no source is muted by a two-sided source",
        ),
        pytest.param((), {"severity": "warning"}, [{"severity": "critical"}], False, id="no rules"),
    ],
)
def test_inhibited_by(
    rules: tuple[InhibitRule, ...], target: dict[str, str], firing: list[dict[str, str]], muted: bool
) -> None:
    assert (inhibited_by(target, firing, rules) is not None) is muted


def test_the_first_muting_rule_is_returned() -> None:
    first, second = build_rules(
        [
            InhibitSettings(source_matchers=("kind=outage",), target_matchers=("kind=anomaly",)),
            InhibitSettings(source_matchers=("kind=budget",), target_matchers=("kind=anomaly",)),
        ]
    )
    assert inhibited_by({"kind": "anomaly"}, [{"kind": "budget"}], [first, second]) is second
    assert inhibited_by({"kind": "anomaly"}, [{"kind": "budget"}, {"kind": "outage"}], [first, second]) is first


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            [InhibitSettings(source_matchers=("kind=budget", "bad-label=1"), target_matchers=("kind=anomaly",))],
            "inhibit[0].source_matchers[1]: bad label name 'bad-label'",
        ),
        (
            [
                InhibitSettings(source_matchers=("a=1",), target_matchers=("b=1",)),
                InhibitSettings(source_matchers=("a=1",), target_matchers=('b=~"("',)),
            ],
            "inhibit[1].target_matchers[0]: bad regex '('",
        ),
        (
            [InhibitSettings(source_matchers=("a=1",), target_matchers=("b=1",), equal=("team", "entity-id"))],
            "inhibit[0].equal[1]: 'entity-id' is not a label name",
        ),
    ],
)
def test_build_rules_errors_name_the_field(settings: list[InhibitSettings], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        build_rules(settings)
    assert message in str(caught.value)
