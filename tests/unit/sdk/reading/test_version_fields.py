"""A version-only read's HMGET reply (v, t, a) parsed: how it counts, and the version."""

from __future__ import annotations

import pytest

from writebehind.core.errors import InvalidVersion
from writebehind.core.version import Version
from writebehind.sdk.reading.entry import VERSION_FIELDS, parse_version_fields


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
