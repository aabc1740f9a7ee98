"""Unit tests for writebehind.core.guarded: the version-guarded write models' parts."""

from __future__ import annotations

import datetime as dt

from writebehind.core.guarded import (
    STORED_VERSION,
    guarded_replace,
    newer_than_stored,
    snapshot,
    tombstone,
)
from writebehind.core.version import Version

NOW = dt.datetime(2024, 6, 1, 12, 0, 0)


def test_newer_than_stored_structure() -> None:
    assert STORED_VERSION == "$_wb.v"
    assert newer_than_stored(Version(5, 10)) == {
        "$lt": [{"$ifNull": ["$_wb.v", [-1, -1]]}, [5, 10]]
    }


def test_helpers() -> None:
    v = Version(1, 2)
    assert snapshot({"_id": 1, "a": 2}, v) == {"_id": 1, "a": 2, "_wb": {"v": [1, 2]}}
    assert tombstone(1, v, NOW) == {
        "_id": 1,
        "_wb": {"v": [1, 2], "deleted": True, "purge_at": NOW},
    }


def test_a_guarded_replace_is_an_upsert_of_the_literal_unless_as_new_is_stored() -> None:
    v = Version(3, 4)
    new = snapshot({"_id": "k", "x": "$y"}, v)
    op = guarded_replace("k", v, new, {"tenant": "acme"})
    assert op._filter == {"_id": "k", "tenant": "acme"}
    assert op._upsert is True
    [stage] = op._doc
    assert stage == {"$replaceWith": {"$cond": [newer_than_stored(v), {"$literal": new}, "$$ROOT"]}}


def test_a_tombstone_keeps_the_shard_key_values() -> None:
    doc = tombstone(1, Version(1, 2), NOW, {"tenant": "acme"})
    assert doc["tenant"] == "acme" and doc["_wb"]["deleted"] is True
