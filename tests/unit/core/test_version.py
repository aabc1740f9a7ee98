"""Unit tests for writebehind.core.version: stream-id versions, ordered as (ms, seq)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from writebehind.core.version import ZERO, Version

INT64_MAX = 2**63 - 1


def test_ordering_is_numeric_not_textual() -> None:
    newer, older = Version.parse("5-10"), Version.parse("5-9")
    assert "5-10" < "5-9"  # the trap the numeric ordering avoids
    assert newer > older
    assert older < newer
    assert newer >= older
    assert not newer <= older
    assert max(older, newer) is newer


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("0-0", "0-1"),
        ("5-9", "5-10"),
        ("9-99", "10-0"),
        ("999-5", "1000-0"),
        ("1718000000000-3", "1718000000001-0"),
        (f"{INT64_MAX}-{INT64_MAX - 1}", f"{INT64_MAX}-{INT64_MAX}"),
    ],
)
def test_ordering_pairs(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert Version.parse(higher) > Version.parse(lower)
    assert Version.parse(lower) != Version.parse(higher)


@pytest.mark.parametrize(
    "text", ["0-0", "0-1", "5-9", "5-10", "1718000000000-3", f"{INT64_MAX}-{INT64_MAX}"]
)
def test_str_round_trips(text: str) -> None:
    version = Version.parse(text)
    assert str(version) == text
    assert Version.parse(str(version)) == version


def test_parse_fields_and_bytes() -> None:
    version = Version.parse("1718000000000-3")
    assert (version.ms, version.seq) == (1718000000000, 3)
    assert Version.parse(b"1718000000000-3") == version
    assert version.collection is None
    assert version.doc_id is None
    assert version.deleted is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "a-b",
        "5-",
        "-5",
        "5-9-1",
        "-",
        "5--1",
        "-5-1",
        "5-a",
        "a-5",
        " 5-1",
        "5-1 ",
        "+5-1",
        "5.0-1",
        "0x5-1",
        "5_0-1",
        "²-1",
        f"{INT64_MAX + 1}-0",
        f"0-{INT64_MAX + 1}",
        b"",
        b"5-",
        b"a-b",
    ],
)
def test_parse_rejects_garbage(text: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is exactly ValueError
        Version.parse(text)


@pytest.mark.parametrize("text", ["\u0663-1", "1-\u0663", "\uff11-1"])
def test_parse_rejects_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Version.parse(text)


@pytest.mark.parametrize(
    ("ms", "seq"),
    [
        (-1, 0),
        (0, -1),
        (INT64_MAX + 1, 0),
        (0, INT64_MAX + 1),
        (2**64, 0),
        (1.0, 0),
        (0, 1.0),
        ("5", 0),
        (0, "5"),
        (None, 0),
        (True, 0),
        (0, True),
        (False, 0),
        (0, False),
    ],
)
def test_constructor_rejects_bad_values(ms: object, seq: object) -> None:
    with pytest.raises(ValueError, match=r"Version\.(ms|seq)"):
        Version(ms, seq)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ms", "seq"), [(0, 0), (INT64_MAX, INT64_MAX), (1, INT64_MAX)])
def test_constructor_accepts_bounds(ms: int, seq: int) -> None:
    version = Version(ms, seq)
    assert (version.ms, version.seq) == (ms, seq)


def test_hidden_fields_do_not_affect_equality_ordering_or_hash() -> None:
    plain = Version(5, 10)
    tagged = Version(5, 10, "users", 42, True)
    other = plain.for_document("orders", "x")
    assert plain == tagged == other
    assert hash(plain) == hash(tagged) == hash(other)
    assert not plain < tagged
    assert not tagged < plain
    assert plain <= tagged
    assert plain >= tagged
    assert len({plain, tagged, other}) == 1
    assert Version(5, 9, "zzz", "zzz", True) < Version(5, 10, "aaa", "aaa", False)
    assert repr(plain) == repr(tagged)


def test_for_document_keeps_id_and_sets_hidden_fields() -> None:
    base = Version.parse("7-2")
    tagged = base.for_document("users", "alice", deleted=True)
    assert (tagged.ms, tagged.seq) == (7, 2)
    assert tagged.collection == "users"
    assert tagged.doc_id == "alice"
    assert tagged.deleted is True
    assert base.collection is None  # the original is untouched
    assert base.for_document("users", 1).deleted is False


@pytest.mark.parametrize(("ms", "seq"), [(0, 0), (5, 10), (1718000000000, 3), (INT64_MAX, 1)])
def test_pair_round_trip(ms: int, seq: int) -> None:
    version = Version(ms, seq)
    pair = version.as_pair()
    assert pair == [ms, seq]
    assert isinstance(pair, list)
    assert Version.from_pair(pair) == version
    assert Version.from_pair((ms, seq)) == version


@pytest.mark.parametrize("pair", [[1], [1, 2, 3], [], [-1, 0], [0, 2**63]])
def test_from_pair_rejects_bad_pairs(pair: list[int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Version.from_pair(pair)


def test_sorting_a_shuffled_list() -> None:
    expected = [Version(ms, seq) for ms in (0, 1, 2, 9, 10, 11, 100) for seq in (0, 1, 2, 9, 10)]
    rng = random.Random(1234)
    for _ in range(20):
        shuffled = expected[:]
        rng.shuffle(shuffled)
        assert sorted(shuffled) == expected
    texts = [str(v) for v in expected]
    shuffled_texts = texts[:]
    rng.shuffle(shuffled_texts)
    assert [str(v) for v in sorted(map(Version.parse, shuffled_texts))] == texts
    assert sorted(texts) != texts  # text order would have been wrong


def test_is_immutable() -> None:
    version = Version(1, 2)
    for name, value in (("ms", 5), ("seq", 5), ("collection", "x"), ("deleted", True)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(version, name, value)
    assert (version.ms, version.seq, version.collection, version.deleted) == (1, 2, None, False)


def test_zero_is_the_smallest_version() -> None:
    assert Version(0, 0) == ZERO
    assert str(ZERO) == "0-0"
    assert Version(0, 1) > ZERO
    assert min(Version(3, 0), ZERO, Version(0, 1)) is ZERO
