"""The HTTP helpers refuse arguments of the wrong type with ``InvalidInput``.

A wrong type is a programming mistake, not a malformed header: it raises rather
than being read as "no precondition", and never as an ``AttributeError`` or
``TypeError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from writebehind.errors import InvalidInput
from writebehind.http import (
    CachePolicy,
    EntityTag,
    answer_not_modified,
    counted,
    decide,
    has_validator,
    none_match_fails,
    parse_if_none_match,
    response_headers,
)

TAG = EntityTag("abc")
POLICY = CachePolicy()

BAD_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("parse_if_none_match an int", lambda: parse_if_none_match(3)),  # type: ignore[arg-type]
    ("parse_if_none_match an int line", lambda: parse_if_none_match(['"a"', 3])),  # type: ignore[list-item]
    ("parse_if_none_match bytes", lambda: parse_if_none_match(b'"a"')),  # type: ignore[arg-type]
    ("none_match_fails a str condition", lambda: none_match_fails('"abc"', TAG)),  # type: ignore[arg-type]
    ("none_match_fails a str tag", lambda: none_match_fails((TAG,), "abc")),  # type: ignore[arg-type]
    ("answer_not_modified a str tag", lambda: answer_not_modified('"abc"', "abc")),  # type: ignore[arg-type]
    ("answer_not_modified an int method", lambda: answer_not_modified('"a"', TAG, method=1)),  # type: ignore[arg-type]
    ("decide no policy", lambda: decide('"abc"', TAG, None)),  # type: ignore[arg-type]
    ("decide a str tag", lambda: decide('"abc"', "abc", POLICY)),  # type: ignore[arg-type]
    ("response_headers a str tag", lambda: response_headers("abc", POLICY)),  # type: ignore[arg-type]
    ("response_headers no policy", lambda: response_headers(TAG, None)),  # type: ignore[arg-type]
    ("counted a str", lambda: counted("200")),  # type: ignore[arg-type]
    ("counted no status", lambda: counted(42)),
    ("has_validator a str", lambda: has_validator("1-1")),  # type: ignore[arg-type]
    ("CachePolicy.from_reads no ReadPolicy", lambda: CachePolicy.from_reads(1)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("label", "call"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_wrong_types_raise_invalid_input(label: str, call: Callable[[], Any]) -> None:
    with pytest.raises(InvalidInput):
        call()
