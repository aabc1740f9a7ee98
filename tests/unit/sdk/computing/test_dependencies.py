"""Unit tests for the pure part of writebehind.sdk.computing.dependencies: ``listed``."""

from __future__ import annotations

import re
from typing import Any

import pytest

from writebehind.core.errors import InvalidInput
from writebehind.sdk.computing.dependencies import listed


def test_no_depends_on_lists_nothing() -> None:
    assert listed(None, (1,), {}) == []


def test_pairs_come_from_the_call_arguments_without_duplicates() -> None:
    def depends_on(user: int, *, team: str) -> list[tuple[str, Any]]:
        return [("users", user), ("teams", team), ("users", user)]

    assert listed(depends_on, (7,), {"team": "red"}) == [("users", 7), ("teams", "red")]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (("users", 1), "return a list of (collection, id) pairs"),
        ("users", "must return (collection, id) pairs"),
        (5, "must return (collection, id) pairs"),
        ([("users", 1, 2)], "must return (collection, id) pairs"),
        ([("", 1)], "collection"),
    ],
)
def test_anything_but_pairs_is_refused(returned: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        listed(lambda: returned, (), {})
