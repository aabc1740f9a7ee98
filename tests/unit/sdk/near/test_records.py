"""Unit tests for writebehind.sdk.near.records: what a stream record evicts."""

from __future__ import annotations

import bson

from writebehind.core.keys import encode_id
from writebehind.core.version import Version
from writebehind.sdk.near.records import from_change, from_invalidation


def test_a_change_record_names_its_document_and_version() -> None:
    body = bson.encode({"_id": 42, "n": 1})
    eviction = from_change(b"5-1", {b"op": b"set", b"c": b"users", b"d": body})
    assert eviction is not None
    assert (eviction.collection, eviction.key, eviction.version) == (
        "users",
        encode_id(42),
        Version(5, 1),
    )
    assert from_change(b"5-2", {b"c": b"users", b"d": b"not bson"}) is None
    assert from_change(b"5-3", {b"op": b"set"}) is None


def test_an_invalidation_record_has_no_version() -> None:
    eviction = from_invalidation({b"c": b"users", b"i": b"s1"})
    assert eviction is not None and eviction.version is None and eviction.key == "s1"
    assert from_invalidation({b"c": b"users"}) is None
