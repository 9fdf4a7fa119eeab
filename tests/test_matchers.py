"""Label matchers: parsing, errors that name the bad text, matching and the string round trip."""

from __future__ import annotations

import pytest

from sentinel.route.matchers import Matcher, matches_all, parse, parse_all


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('severity="critical"', "severity", "=", "critical"),
        ("severity=critical", "severity", "=", "critical"),
        ('team!="search"', "team", "!=", "search"),
        ('team=~"search|ads"', "team", "=~", "search|ads"),
        ('team!~"ads.*"', "team", "!~", "ads.*"),
        ("kind!=budget", "kind", "!=", "budget"),
        ("team=~search|ads", "team", "=~", "search|ads"),
        ('  team  =~  "search|ads"  ', "team", "=~", "search|ads"),
        ("team = search", "team", "=", "search"),
        ('team!=""', "team", "!=", ""),
        ("team=", "team", "=", ""),
        ('summary="say \\"hi\\""', "summary", "=", 'say "hi"'),
        ('path="a\\\\b"', "path", "=", "a\\b"),
        ('rule=~"a\\.b"', "rule", "=~", "a\\.b"),  # an unknown escape keeps its backslash
        ('note="two\\nlines"', "note", "=", "two\nlines"),
        ('x="a=b!=c"', "x", "=", "a=b!=c"),
        ('x="with space"', "x", "=", "with space"),
        ("_private9=1", "_private9", "=", "1"),
    ],
)
def test_parse(text: str, name: str, op: str, value: str) -> None:
    assert parse(text) == Matcher(name, op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty matcher"),
        ("   ", "empty matcher"),
        ('="x"', "missing label name in matcher '=\"x\"'"),
        ('te-am="x"', "bad label name 'te-am' in matcher 'te-am=\"x\"'"),
        ('9team="x"', "bad label name '9team'"),
        ('team.id="x"', "bad label name 'team.id'"),
        ("team", "missing operator after 'team' in matcher 'team'"),
        ('team "x"', "missing operator after 'team'"),
        ("team==x", "unknown operator '==' in matcher 'team==x'"),
        ('team~"x"', "unknown operator '~'"),
        ('team=!"x"', "unknown operator '=!'"),
        ("spend>5", "unknown operator '>'"),
        ('team=~"("', "bad regex '(' in matcher 'team=~\"(\"': missing ), unterminated subpattern"),
        ('team!~"[a-"', "bad regex '[a-'"),
        ('team="search', "unterminated quote in matcher 'team=\"search'"),
        ('team="search\\"', "unterminated quote"),
        ('team="a" b', "unexpected 'b' after the closing quote"),
        ("team='search'", "use double quotes"),
        ("team=a b", "unquoted value cannot contain spaces"),
    ],
)
def test_parse_errors_name_the_text(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "op", "value", "message"),
    [
        ("bad-name", "=", "x", "'bad-name' is not a label name"),
        ("team", "==", "x", "unknown operator '=='"),
        ("team", "=~", "(", "bad regex '('"),
    ],
)
def test_constructor_validates(name: str, op: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Matcher(name, op, value)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity="critical"', {}, False),
        ('severity!="critical"', {"severity": "warning"}, True),
        ('severity!="critical"', {"severity": "critical"}, False),
        ('severity!="critical"', {}, True),
        # A missing label is the empty string.
        ('team!=""', {"team": "search"}, True),
        ('team!=""', {}, False),
        ('team!=""', {"team": ""}, False),
        ('team=""', {}, True),
        ('team=""', {"team": "ads"}, False),
        # Regexes are anchored at both ends.
        ('team=~"search|ads"', {"team": "search"}, True),
        ('team=~"search|ads"', {"team": "ads"}, True),
        ('team=~"search|ads"', {"team": "research"}, False),
        ('team=~"search|ads"', {"team": "search-2"}, False),
        ('team=~"search|ads"', {"team": "adsearch"}, False),
        ('team=~"sea"', {"team": "search"}, False),
        ('team=~"sea.*"', {"team": "search"}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team!~"search|ads"', {"team": "research"}, True),
        ('team!~"search|ads"', {"team": "ads"}, False),
        ('team!~"search|ads"', {}, True),
        ('rule=~"a\\.b"', {"rule": "a.b"}, True),
        ('rule=~"a\\.b"', {"rule": "axb"}, False),
        ("severity=Critical", {"severity": "critical"}, False),  # case matters
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text",
    [
        'severity="critical"',
        "severity=critical",
        'team!=""',
        'team=~"search|ads"',
        'team!~"a\\.b"',
        'summary="say \\"hi\\" \\\\ done"',
        'note="two\\nlines"',
        "x=\"=~!= 'quoted'\"",
        "x=",
    ],
)
def test_str_round_trips(text: str) -> None:
    matcher = parse(text)
    again = parse(str(matcher))
    assert again == matcher
    assert str(again) == str(matcher)


@pytest.mark.parametrize(
    ("matcher", "text"),
    [
        (Matcher("severity", "=", "critical"), 'severity="critical"'),
        (Matcher("team", "!=", 'a"b\\c'), 'team!="a\\"b\\\\c"'),
        (Matcher("team", "!=", ""), 'team!=""'),
    ],
)
def test_str(matcher: Matcher, text: str) -> None:
    assert str(matcher) == text
    assert parse(text) == matcher


@pytest.mark.parametrize(
    ("texts", "labels", "expected"),
    [
        ((), {}, True),
        ((), {"team": "x"}, True),
        (('kind="budget"', 'exhausted="true"'), {"kind": "budget", "exhausted": "true"}, True),
        (('kind="budget"', 'exhausted="true"'), {"kind": "budget", "exhausted": "false"}, False),
        (('kind="budget"', 'exhausted="true"'), {"kind": "budget"}, False),
        (('kind!="budget"', 'team=~"s.*"'), {"kind": "anomaly", "team": "search"}, True),
    ],
)
def test_matches_all(texts: tuple[str, ...], labels: dict[str, str], expected: bool) -> None:
    assert matches_all(parse_all(texts), labels) is expected


def test_parse_all_keeps_order_and_stops_at_a_bad_one() -> None:
    assert parse_all(["a=1", "b!=2"]) == (Matcher("a", "=", "1"), Matcher("b", "!=", "2"))
    with pytest.raises(ValueError, match="bad label name 'b-'"):
        parse_all(["a=1", "b-=2"])
