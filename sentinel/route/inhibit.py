"""Inhibition: while an alert matching a rule's source matchers fires, alerts matching its target matchers
that share the labels named in ``equal`` are muted (Alertmanager's inhibit rules). Pure.

A label missing on both alerts counts as equal. An alert never inhibits itself, and when the target
matches the source matchers too, source alerts that match the target matchers are ignored, so two alerts
that match both sides of a rule cannot mute each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sentinel.config import InhibitSettings
from sentinel.route.matchers import Matcher, check_label_name, matches_all, parse


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


def build_rules(settings: Sequence[InhibitSettings]) -> tuple[InhibitRule, ...]:
    """Parse the configured rules; a ``ValueError`` names the rule and field, e.g. ``inhibit[0].equal[1]``."""
    rules = []
    for i, rule in enumerate(settings):
        source = _parse(rule.source_matchers, f"inhibit[{i}].source_matchers")
        target = _parse(rule.target_matchers, f"inhibit[{i}].target_matchers")
        for j, name in enumerate(rule.equal):
            try:
                check_label_name(name)
            except ValueError as exc:
                raise ValueError(f"inhibit[{i}].equal[{j}]: {exc}") from None
        rules.append(InhibitRule(source=source, target=target, equal=tuple(rule.equal)))
    return tuple(rules)


def _parse(texts: Sequence[str], where: str) -> tuple[Matcher, ...]:
    out = []
    for j, text in enumerate(texts):
        try:
            out.append(parse(text))
        except ValueError as exc:
            raise ValueError(f"{where}[{j}]: {exc}") from None
    return tuple(out)


def inhibited_by(
    target_labels: Mapping[str, str],
    firing: Sequence[Mapping[str, str]],
    rules: Sequence[InhibitRule],
) -> InhibitRule | None:
    """The first rule under which some other firing alert mutes ``target_labels``, else None."""
    target = dict(target_labels)
    for rule in rules:
        if not matches_all(rule.target, target):
            continue
        two_sided = matches_all(rule.source, target)
        for source in firing:
            # Identical labels are the target itself (the two-sided rule below would skip it as well).
            if dict(source) == target or not matches_all(rule.source, source):
                continue
            if two_sided and matches_all(rule.target, source):
                continue
            if all(source.get(name, "") == target.get(name, "") for name in rule.equal):
                return rule
    return None
