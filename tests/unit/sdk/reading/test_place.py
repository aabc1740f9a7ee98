"""A document's read-side keys: named as KeySpace names them, the lease's kin only on demand."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from bson import ObjectId

from writebehind.core.errors import UnsupportedIdType
from writebehind.core.keys import KeySpace
from writebehind.sdk.reading.lease import Place


@pytest.mark.parametrize("doc_id", ["a", "", "x:y", 0, -(2**63), ObjectId(), uuid.uuid4()])
@pytest.mark.parametrize("collection", ["users", "a:b", "ü"])
def test_a_place_names_the_keys_the_keyspace_names(collection: str, doc_id: Any) -> None:
    keys = KeySpace("wb", 64)
    place = Place.of(keys, collection, doc_id)
    p = keys.partition_of(collection, doc_id)
    assert place.doc_id == doc_id and place.partition == p
    assert place.entry == keys.cache(p, collection, doc_id)
    assert place.lease == keys.lease(p, collection, doc_id)
    assert place.channel == keys.fill_channel(p, collection, doc_id)
    assert place.marker == keys.eviction_marker(p, collection, doc_id)
    assert place.flush_marker == keys.flush_marker(p, collection)
    assert keys.lease_of_entry(p, place.entry) == place.lease  # what every write deletes


def test_lease_of_entry_refuses_another_partitions_key() -> None:
    keys = KeySpace("wb", 64)
    p, entry = keys.entry_of("users", "u1")
    with pytest.raises(ValueError, match="not a cache entry"):
        keys.lease_of_entry((p + 1) % 64, entry)


def test_a_place_refuses_an_unsupported_id() -> None:
    with pytest.raises(UnsupportedIdType):
        Place.of(KeySpace(), "users", 1.5)
