"""Label matchers in Alertmanager's syntax: ``name="value"``, ``name!="value"``, ``name=~"re"``, ``name!~"re"``.

Values may also be written unquoted (``severity=critical``) and whitespace may surround the operator.
Regexes are anchored at both ends (``team=~"search|ads"`` matches ``search`` but not ``research``).
A label the alert does not carry reads as the empty string, so ``team!=""`` means "has a team" and
``team=""`` means "has no team".

Inside double quotes, ``\\"`` is a quote, ``\\\\`` a backslash and ``\\n`` a newline; any other backslash is
kept as written, so regex escapes such as ``"a\\.b"`` need no doubling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]
OPS: tuple[Op, ...] = ("=", "!=", "=~", "!~")

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR_CHARS = "=!~<>"
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


def check_label_name(name: str) -> str:
    """``name`` if it is a valid label name (letters, digits and underscores, not starting with a digit)."""
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a label name (letters, digits and _, not starting with a digit)")
    return name


@dataclass(frozen=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_label_name(self.name)
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}; use one of {', '.join(OPS)}")
        if self.op in ("=~", "!~"):
            try:
                compiled = re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"bad regex {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is not None:
            found = self._regex.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{quoted}"'


def parse(text: str) -> Matcher:
    """One matcher from its text; a ``ValueError`` says what is wrong and quotes the text."""
    where = f"in matcher {text!r}"
    rest = text.strip()
    if not rest:
        raise ValueError(f'empty matcher {text!r}; write e.g. severity="critical"')

    end = 0
    while end < len(rest) and not rest[end].isspace() and rest[end] not in _OPERATOR_CHARS + "\"'":
        end += 1
    name, rest = rest[:end], rest[end:].lstrip()
    if not name:
        raise ValueError(f"missing label name {where}")
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"bad label name {name!r} {where} (letters, digits and _, not starting with a digit)")

    end = 0
    while end < len(rest) and rest[end] in _OPERATOR_CHARS:
        end += 1
    op, rest = rest[:end], rest[end:].lstrip()
    if not op:
        raise ValueError(f"missing operator after {name!r} {where}; use one of {', '.join(OPS)}")
    if op not in OPS:
        raise ValueError(f"unknown operator {op!r} {where}; use one of {', '.join(OPS)}")

    value = _value(rest, where)
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regex {value!r} {where}: {exc}") from None
    return Matcher(name, op, value)


def _value(rest: str, where: str) -> str:
    if rest.startswith("'"):
        raise ValueError(f"single quotes are not quotes {where}; use double quotes")
    if not rest.startswith('"'):
        if any(c.isspace() or c == '"' for c in rest):
            raise ValueError(f"an unquoted value cannot contain spaces or quotes {where}; quote it")
        return rest
    out: list[str] = []
    i = 1
    while i < len(rest):
        char = rest[i]
        if char == "\\" and i + 1 < len(rest):
            nxt = rest[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            trailing = rest[i + 1 :].strip()
            if trailing:
                raise ValueError(f"unexpected {trailing!r} after the closing quote {where}")
            return "".join(out)
        out.append(char)
        i += 1
    raise ValueError(f"unterminated quote {where}")


def parse_all(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse(t) for t in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
