"""The quick field check never passes a document the full check refuses.

``_fields_ok`` runs first on every write; ``_check_fields`` (with the paths of
the errors) only when it says no. Compared on seeded random documents built
from every kind the full check treats differently, near the limits.
"""

from __future__ import annotations

import collections
import datetime
import random
from typing import Any

import pytest
from bson import Int64, ObjectId

from writebehind.core.codec import _MAX_DEPTH, _check_fields, _fields_ok
from writebehind.core.errors import InvalidDocument


class Key(str):
    pass


KEYS: list[Any] = ["a", "name", "$set", "a.b", "nul\x00", "x$", "", 1, Key("k"), Key("$k"), b"a"]
SCALARS: list[Any] = [
    None, True, False, 0, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 1.5, "s", b"b",
    Int64(5), ObjectId(), datetime.datetime(2026, 1, 1), {"$x": 1}, {"a.b": 1},
]  # fmt: skip


def passes_full_check(doc: dict[Any, Any]) -> bool:
    try:
        _check_fields(doc, "", 0)
    except InvalidDocument:
        return False
    return True


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.5:
        return rng.choice(SCALARS)
    if roll < 0.7:
        return random_doc(rng, depth - 1)
    if roll < 0.8:
        return collections.OrderedDict(random_doc(rng, depth - 1))
    items = [random_value(rng, depth - 1) for _ in range(rng.randrange(3))]
    return items if roll < 0.95 else tuple(items)


def random_doc(rng: random.Random, depth: int) -> dict[Any, Any]:
    return {rng.choice(KEYS): random_value(rng, depth) for _ in range(rng.randrange(4))}


@pytest.mark.parametrize("seed", range(20))
def test_quick_check_passes_only_what_the_full_check_passes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        doc = random_doc(rng, 4)
        if _fields_ok(doc, 0):
            assert passes_full_check(doc), doc


def nested(depth: int, leaf: Any, wrap: str) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"n": value} if wrap == "dict" else [value]
    return value


@pytest.mark.parametrize("wrap", ["dict", "list"])
@pytest.mark.parametrize("depth", [_MAX_DEPTH - 1, _MAX_DEPTH, _MAX_DEPTH + 1])
def test_quick_check_agrees_at_the_nesting_limit(wrap: str, depth: int) -> None:
    doc = {"top": nested(depth, 1, wrap)}
    if _fields_ok(doc, 0):
        assert passes_full_check(doc)
    assert passes_full_check(doc) == (depth <= _MAX_DEPTH)


def test_plain_documents_take_the_quick_path() -> None:
    doc = {"name": "u", "n": 2**63 - 1, "f": 1.5, "tags": ["a", {"b": [1, None, True]}], "x": {}}
    assert _fields_ok(doc, 0)
