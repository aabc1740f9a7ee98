"""If-None-Match (RFC 9110 section 13.1.2): parsing, weak comparison, malformed values."""

from __future__ import annotations

import pytest

from writebehind.http import ANY, EntityTag, answer_not_modified, none_match_fails
from writebehind.http import parse_if_none_match as parse

X, Y = EntityTag("x"), EntityTag("y")
WX = EntityTag("x", weak=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"x"', (X,)),
        ('W/"x"', (WX,)),
        ('"x", "y"', (X, Y)),
        ('"x","y"', (X, Y)),
        (' \t"x" \t, \tW/"y"\t ', (X, EntityTag("y", weak=True))),
        ('"x",,"y"', (X, Y)),  # empty elements are allowed (RFC 9110 5.6.1)
        (', "x" ,', (X,)),
        ("", ()),
        (" , ,", ()),
        ('""', (EntityTag(""),)),
        ('"a,b"', (EntityTag("a,b"),)),  # a comma inside the quotes is part of the tag
        ('"W/x"', (EntityTag("W/x"),)),
        ('"\x80\xff"', (EntityTag("\x80\xff"),)),  # obs-text
        ("*", ANY),
        (" * ", ANY),
    ],
)
def test_parses(value: str, expected: object) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "x",  # unquoted
        '"x',  # unterminated
        'x"',
        '"x" "y"',  # no comma between
        '"x"y',
        'w/"x"',  # the weak prefix is case-sensitive
        'W/ "x"',
        "W/x",
        '"x", *',  # * stands alone
        "*, *",
        "**",
        '"a b"',  # a space is no etagc
        '"a\x7fb"',
        '"a\x00b"',
        '"ā"',  # beyond Latin-1: not from header bytes
        '"x";q=1',
        "'x'",
    ],
)
def test_malformed_values_parse_to_none(value: str) -> None:
    assert parse(value) is None


def test_field_lines_combine_into_one_list() -> None:
    assert parse(['"x"', 'W/"y"']) == (X, EntityTag("y", weak=True))
    assert parse(["*"]) == ANY
    assert parse(["*", '"x"']) is None  # * within a list
    assert parse([]) is None
    assert parse(None) is None
    assert parse(['"x"', "bad"]) is None


@pytest.mark.parametrize(
    ("header", "current", "fails"),
    [
        ('"x"', X, True),
        ('W/"x"', X, True),  # weak comparison: W/ ignored
        ('"x"', WX, True),
        ('"y", "x"', X, True),
        ('"y"', X, False),
        ('"X"', X, False),  # opaque tags compare exactly
        ("*", X, True),
        ("*", None, False),  # no current representation
        ('"x"', None, False),
        (None, X, False),
        ("", X, False),
        ("x", X, False),  # malformed: ignored, never a 304
        ('"x" garbage', X, False),
    ],
)
def test_evaluation(header: str | None, current: EntityTag | None, fails: bool) -> None:
    assert none_match_fails(parse(header), current) is fails
    assert answer_not_modified(header, current) is fails


@pytest.mark.parametrize("method", ["GET", "HEAD", "get", "head"])
def test_get_and_head_get_304(method: str) -> None:
    assert answer_not_modified('"x"', X, method=method)


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_other_methods_never_get_304(method: str) -> None:
    # RFC 9110 13.1.2: they would get 412, which is not this function's answer.
    assert not answer_not_modified('"x"', X, method=method)
    assert not answer_not_modified("*", X, method=method)
