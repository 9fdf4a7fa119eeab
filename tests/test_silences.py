"""Silences: state over time, validation, matching, and the store (a real SQLite file)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils

from sentinel.route import silences
from sentinel.route.matchers import parse
from sentinel.route.silences import Silence, silenced_by
from sentinel.store import open_store
from sentinel.store import silences as store

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def silence(
    id: str = "abc123def456",
    matchers: tuple[str, ...] = ('team="search"',),
    starts_at: datetime = T0 + H,
    ends_at: datetime = T0 + 3 * H,
) -> Silence:
    return Silence(
        id=id,
        matchers=tuple(parse(m) for m in matchers),
        author="ana",
        comment="migration week",
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=T0,
    )


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (T0, "pending"),
        (T0 + H - US, "pending"),
        (T0 + H, "active"),  # starts_at itself is active
        (T0 + 2 * H, "active"),
        (T0 + 3 * H - US, "active"),
        (T0 + 3 * H, "expired"),  # ends_at itself is expired
        (T0 + 4 * H, "expired"),
        (datetime(2025, 3, 10, 14, 59, tzinfo=timezone(timedelta(hours=2))), "pending"),  # 12:59Z in another zone
        (datetime(2025, 3, 10, 15, 0, tzinfo=timezone(timedelta(hours=2))), "active"),  # 13:00Z
    ],
)
def test_state(now: datetime, state: str) -> None:
    assert silence().state(now) == state
    assert silence().is_active(now) is (state == "active")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matchers": []}, "at least one matcher"),
        ({"matchers": 'team="search"'}, "a list of matcher strings"),
        ({"matchers": ['rule=~".*"']}, "would also match an alert with no labels"),
        ({"matchers": ['team=""']}, "would also match an alert with no labels"),
        ({"matchers": ['team!="x"', 'rule=~".*"']}, "would also match an alert with no labels"),
        ({"matchers": ["team==x"]}, "unknown operator '=='"),
        ({"matchers": ['team=~"("']}, "bad regex"),
        ({"author": "  "}, "needs an author"),
        ({"comment": ""}, "needs a comment"),
        ({"ends_at": T0 + H}, "must be after starts_at"),
        ({"ends_at": T0}, "must be after starts_at"),
        ({"starts_at": T0 - 3 * H, "ends_at": T0 - H}, "already past"),
        ({"starts_at": T0 - 3 * H, "ends_at": T0}, "already past"),
        ({"starts_at": datetime(2025, 3, 10, 13, 0)}, "starts_at must carry a timezone"),
        ({"now": datetime(2025, 3, 10, 12, 0)}, "now must carry a timezone"),
    ],
)
def test_new_refuses(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "matchers": ['team="search"'],
        "author": "ana",
        "comment": "migration week",
        "starts_at": T0 + H,
        "ends_at": T0 + 3 * H,
        "now": T0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError) as caught:
        silences.new(**args)  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "matchers",
    [
        ['team="search"'],
        ['team!=""'],  # "has a team": does not match an empty label set
        ['rule=~".*"', 'team!=""'],  # one matcher that needs a label is enough
        ['rule=~".+"'],
    ],
)
def test_new_accepts(matchers: list[str]) -> None:
    made = silences.new(matchers, " ana ", " why ", T0 - H, T0 + H, T0)
    assert [str(m) for m in made.matchers] == [str(parse(m)) for m in matchers]
    assert (made.author, made.comment, made.created_at) == ("ana", "why", T0)
    assert made.is_active(T0)
    assert len(made.id) == 12


def test_new_gives_fresh_ids_and_utc_times() -> None:
    plus2 = timezone(timedelta(hours=2))
    a = silences.new(["a=1"], "x", "y", T0.astimezone(plus2), T0 + H, T0)
    b = silences.new(["a=1"], "x", "y", T0, T0 + H, T0)
    assert a.id != b.id
    assert a.starts_at == T0 and a.starts_at.utcoffset() == timedelta(0)


SEARCH = silence("s1", ('team="search"',), T0, T0 + 2 * H)
BUDGETS = silence("s2", ('kind="budget"', 'team=~"search|ads"'), T0, T0 + H)
LATER = silence("s3", ('kind="anomaly"',), T0 + H, T0 + 2 * H)


@pytest.mark.parametrize(
    ("labels", "now", "expected"),
    [
        ({"team": "search", "kind": "anomaly"}, T0, "s1"),
        ({"team": "ads", "kind": "budget"}, T0, "s2"),
        ({"team": "ads", "kind": "budget"}, T0 + H, None),  # s2 ended
        ({"team": "search", "kind": "budget"}, T0 + H, "s1"),
        ({"team": "ads", "kind": "anomaly"}, T0, None),  # s3 still pending
        ({"team": "ads", "kind": "anomaly"}, T0 + H, "s3"),
        ({"team": "research"}, T0, None),
        ({}, T0, None),
        ({"team": "search"}, T0 - US, None),
    ],
)
def test_silenced_by(labels: dict[str, str], now: datetime, expected: str | None) -> None:
    found = silenced_by(labels, [SEARCH, BUDGETS, LATER], now)
    assert (found.id if found else None) == expected


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_store(tmp_path / "s.db")


def test_add_and_read_back_from_a_reopened_file(db: sqlite_utils.Database, tmp_path: Path) -> None:
    tricky = silence("aaa000000001", ('summary="say \\"hi\\""', 'rule=~"a\\.b|c"', 'team!=""'))
    store.add(db, tricky)
    store.add(db, replace(silence("bbb000000002"), created_at=T0 + H))
    again = open_store(tmp_path / "s.db")
    assert store.all_(again) == [tricky, replace(silence("bbb000000002"), created_at=T0 + H)]
    row = again.conn.execute("SELECT matchers, starts_at FROM silences WHERE id = 'aaa000000001'").fetchone()
    assert json.loads(row[0]) == ['summary="say \\"hi\\""', 'rule=~"a\\\\.b|c"', 'team!=""']
    assert row[1] == "2025-03-10T13:00:00+00:00"


def test_add_refuses_a_taken_id(db: sqlite_utils.Database) -> None:
    store.add(db, silence("abc"))
    with pytest.raises(ValueError, match="abc already exists"):
        store.add(db, silence("abc"))
    assert len(store.all_(db)) == 1


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("abc123000000", "abc123000000"),
        ("abc1", "abc123000000"),
        ("abc4", "abc456000000"),
        (" def ", "def000000000"),
        ("d", "def000000000"),
        ("ab", KeyError("2 silences have ids starting 'ab'")),
        ("abc", KeyError("2 silences have ids starting 'abc'")),
        ("zz", KeyError("no silence with an id starting 'zz'")),
        ("abc123000000x", KeyError("no silence")),
        ("%", KeyError("no silence")),
        ("", KeyError("give a silence id")),
    ],
)
def test_get_by_unique_prefix(db: sqlite_utils.Database, prefix: str, expected: str | KeyError) -> None:
    for id_ in ("abc123000000", "abc456000000", "def000000000"):
        store.add(db, silence(id_))
    if isinstance(expected, KeyError):
        with pytest.raises(KeyError) as caught:
            store.get(db, prefix)
        assert str(expected.args[0]) in str(caught.value.args[0])
    else:
        assert store.get(db, prefix).id == expected


def test_an_exact_id_wins_over_longer_ids_it_prefixes(db: sqlite_utils.Database) -> None:
    store.add(db, silence("abc"))
    store.add(db, silence("abcdef"))
    assert store.get(db, "abc").id == "abc"


@pytest.mark.parametrize(
    ("now", "expected_starts", "expected_ends"),
    [
        (T0 + 2 * H, T0 + H, T0 + 2 * H),  # active: ends now
        (T0 + 3 * H - US, T0 + H, T0 + 3 * H - US),
        (T0, T0, T0),  # pending: ends before it began
    ],
)
def test_expire(db: sqlite_utils.Database, now: datetime, expected_starts: datetime, expected_ends: datetime) -> None:
    store.add(db, silence("abc123def456"))
    store.add(db, silence("other0000000"))
    expired = store.expire(db, "abc1", now)
    assert (expired.starts_at, expired.ends_at) == (expected_starts, expected_ends)
    assert expired.state(now) == "expired"
    assert store.get(db, "abc123def456") == expired
    assert "abc123def456" not in [s.id for s in store.active(db, now)]
    assert [s.id for s in store.active(db, T0 + 3 * H - US)] == ["other0000000"]
    assert store.get(db, "other").ends_at == T0 + 3 * H  # untouched


@pytest.mark.parametrize("now", [T0 + 3 * H, T0 + 5 * H])
def test_expiring_an_expired_silence_refuses(db: sqlite_utils.Database, now: datetime) -> None:
    store.add(db, silence("abc123def456"))
    with pytest.raises(ValueError, match="already expired"):
        store.expire(db, "abc123def456", now)
    assert store.get(db, "abc").ends_at == T0 + 3 * H


def test_expiring_twice_refuses_the_second_time(db: sqlite_utils.Database) -> None:
    store.add(db, silence("abc123def456"))
    store.expire(db, "abc", T0 + 2 * H)
    with pytest.raises(ValueError, match="already expired"):
        store.expire(db, "abc", T0 + 2 * H)


def test_expire_unknown_or_ambiguous(db: sqlite_utils.Database) -> None:
    store.add(db, silence("abc1"))
    store.add(db, silence("abc2"))
    with pytest.raises(KeyError, match="no silence"):
        store.expire(db, "zzz", T0 + 2 * H)
    with pytest.raises(KeyError, match="2 silences"):
        store.expire(db, "abc", T0 + 2 * H)
    assert [s.ends_at for s in store.all_(db)] == [T0 + 3 * H, T0 + 3 * H]


@pytest.mark.parametrize(
    ("now", "ids"),
    [
        (T0 - H, []),
        (T0, ["s1", "s2"]),
        (T0 + H, ["s1", "s3"]),
        (T0 + 2 * H - US, ["s1", "s3"]),
        (T0 + 2 * H, []),
    ],
)
def test_active(db: sqlite_utils.Database, now: datetime, ids: list[str]) -> None:
    for s in (SEARCH, BUDGETS, LATER):
        store.add(db, s)
    assert [s.id for s in store.active(db, now)] == ids


def test_a_new_silence_round_trips_through_the_store(db: sqlite_utils.Database) -> None:
    made = silences.new(['team=~"search|ads"', "kind!=budget"], "ana", "deploy", T0, T0 + H, T0)
    store.add(db, made)
    [back] = store.active(db, T0)
    assert back == made
    assert silenced_by({"team": "ads", "kind": "anomaly"}, [back], T0) == made
    assert silenced_by({"team": "ads", "kind": "budget"}, [back], T0) is None
