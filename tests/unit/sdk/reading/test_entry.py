"""Unit tests for writebehind.sdk.reading.entry: cache entries and script replies parsed, and a
version-only read's HMGET reply (v, t, a): how it counts, and the version."""

from __future__ import annotations

import pytest

from writebehind.core.errors import InvalidVersion
from writebehind.core.version import Version
from writebehind.sdk.reading.entry import (
    MISSING,
    VERSION_FIELDS,
    parse_entry,
    parse_script_reply,
    parse_version_fields,
)


def test_the_fields_asked_for_leave_out_the_body() -> None:
    assert VERSION_FIELDS == ("v", "t", "a")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([None, None, None], (None, None)),
        ([b"5-10", None, None], ("hit", Version(5, 10))),
        ([b"5-10", b"1", None], ("deleted", None)),
        ([b"0-0", None, b"1"], ("negative_hit", None)),
        ([b"7-1", b"1", b"1"], ("deleted", None)),
    ],
)
def test_parse(fields: list[bytes | None], expected: tuple[str | None, Version | None]) -> None:
    assert parse_version_fields(fields) == expected


def test_a_damaged_version_is_an_error_not_a_guess() -> None:
    with pytest.raises(InvalidVersion):
        parse_version_fields([b"garbage", None, None])


def test_parse_entries() -> None:
    assert parse_entry([None, None, None, None, None], -2) is MISSING
    dirty = parse_entry([b"5-1", b"BSON", None, None, None], -1)
    assert dirty.version == Version(5, 1) and not dirty.clean and not dirty.reads_absent
    clean = parse_entry([b"5-1", b"BSON", None, None, b"12"], 9000)
    assert clean.clean and clean.load_ms == 12 and clean.ttl_ms == 9000
    assert parse_entry([b"5-1", None, b"1", None, None], 10).tombstone
    negative = parse_entry([b"0-0", None, None, b"1", None], 10)
    assert negative.negative and negative.reads_absent


def test_parse_script_replies() -> None:
    reply = parse_script_reply([b"filled", 1700, b"2-0", b"B", None, None, b"3", 500])
    assert reply.status == "filled" and reply.now_ms == 1700
    assert reply.entry.version == Version(2, 0) and reply.entry.body == b"B"
    assert parse_script_reply([b"l", 1700]).entry is MISSING
