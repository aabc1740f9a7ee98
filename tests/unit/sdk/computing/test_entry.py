"""Computed values as BSON, their stamps and validators, and the scripts' replies (no servers)."""

from __future__ import annotations

import datetime

import bson
import pytest

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.errors import InvalidInput, NotDecodable, NotEncodable
from writebehind.sdk.computing.entry import (
    NO_STAMP,
    complete,
    decode_value,
    encode_value,
    join_stamps,
    parse_capture,
    parse_check,
    validator,
)

OPTIONS = DEFAULT_CODEC_OPTIONS


@pytest.mark.parametrize(
    "value",
    [1, "s", 1.5, True, [1, "a"], {"a": {"b": [None]}}, datetime.datetime(2020, 1, 1), b"x"],
)
def test_values_round_trip(value: object) -> None:
    assert decode_value(encode_value(value, OPTIONS), OPTIONS) == value


def test_what_bson_cannot_hold_is_refused_as_invalid_input() -> None:
    for value in ({1, 2}, object(), 2**70, {1: "int key"}):
        with pytest.raises(NotEncodable):
            encode_value(value, OPTIONS)
    assert issubclass(NotEncodable, InvalidInput)


def test_damaged_bodies_do_not_decode() -> None:
    for body in (b"", b"\x80\x04\x95pickle", bson.encode({"x": 1}), bson.encode({"v": 1})[:-1]):
        with pytest.raises(NotDecodable):
            decode_value(body, OPTIONS)


def test_stamps_and_validators() -> None:
    assert join_stamps(["1", "2-0"]) == "1,2-0"
    assert complete(["1", "2-0"]) and not complete(["1", NO_STAMP])
    v = validator("{wb}:cv:1:n:k", "1,2-0", b"body")
    assert v == validator("{wb}:cv:1:n:k", "1,2-0", b"body") and len(v) == 32
    assert v != validator("{wb}:cv:1:n:k", "1,2-1", b"body")
    assert v != validator("{wb}:cv:1:n:j", "1,2-0", b"body")
    assert v != validator("{wb}:cv:1:n:k", "1,2-0", b"other")  # same stamps, another value
    assert validator("{wb}:cv:1:n:k", "1,2-0", b"") != validator("{wb}:cv:1:n:k", "1,2-0\n", b"")


def test_parse_replies() -> None:
    hit = parse_check([b"h", 5, b"", b"body", b"", b"12", 9000, b"1,2"])
    assert (hit.status, hit.body, hit.negative, hit.load_ms, hit.ttl_ms, hit.stamps) == (
        "hit",
        b"body",
        False,
        12,
        9000,
        "1,2",
    )
    negative = parse_check([b"h", 5, b"", b"", b"1", b"", -1, b"1"])
    assert negative.negative and negative.load_ms is None
    assert parse_check([b"w", 5, b"generation"]).reason == "generation"
    assert parse_check([b"l", 5, b"miss"]).status == "lease"
    assert parse_capture([[b"10", b"", b"3-1"], []]) == (["10", NO_STAMP, "3-1"], [])
    assert parse_capture([[b"10"], [b"{t}:gen:all"]]) == (["10"], ["{t}:gen:all"])
