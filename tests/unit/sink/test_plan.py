"""Unit tests for writebehind.sink.plan: decoding stream entries and coalescing them."""

from __future__ import annotations

import uuid
from typing import Any

import bson
import pytest
from bson import ObjectId

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.version import Version
from writebehind.sink.guards import Pending
from writebehind.sink.plan import DocumentWrites, Malformed, coalesce, decode_entries

OPTS = DEFAULT_CODEC_OPTIONS


def fields(
    doc: dict[str, Any] | bytes,
    *,
    op: bytes = b"set",
    collection: bytes = b"users",
    ov: bytes | None = None,
) -> dict[bytes, bytes]:
    body = doc if isinstance(doc, bytes) else bson.encode(doc, codec_options=OPTS)
    out = {b"op": op, b"c": collection, b"d": body}
    if ov is not None:
        out[b"ov"] = ov
    return out


def entry(eid: str, doc: dict[str, Any] | bytes, **kw: Any) -> tuple[bytes, dict[bytes, bytes]]:
    return eid.encode(), fields(doc, **kw)


def pendings_of(*entries: tuple[bytes, dict[bytes, bytes]]) -> list[Pending]:
    pendings, malformed = decode_entries(list(entries), OPTS)
    assert malformed == []
    return pendings


# decode_entries


def test_decode_entries_decodes_set_and_del() -> None:
    oid = ObjectId()
    uid = uuid.uuid4()
    pendings, malformed = decode_entries(
        [
            entry("1-0", {"_id": 42, "name": "a", "tags": ["x"]}),
            entry("1-1", {"_id": "k"}, op=b"del", collection=b"orders"),
            entry("2-0", {"_id": oid, "n": 1.5}),
            entry("2-1", {"_id": uid}),
        ],
        OPTS,
    )
    assert malformed == []
    assert [p.entry_id for p in pendings] == ["1-0", "1-1", "2-0", "2-1"]
    first = pendings[0]
    assert first.document == {"_id": 42, "name": "a", "tags": ["x"]}
    assert first.doc_id == 42
    assert first.version == Version(1, 0)
    assert (first.record.op, first.record.collection) == ("set", "users")
    assert first.record.body == bson.encode({"_id": 42, "name": "a", "tags": ["x"]})
    second = pendings[1]
    assert (second.record.op, second.record.collection, second.doc_id) == ("del", "orders", "k")
    assert pendings[2].doc_id == oid
    assert pendings[3].doc_id == uid


def test_decode_entries_uses_original_version() -> None:
    (pending,) = pendings_of(entry("9-0", {"_id": 1}, ov=b"3-7"))
    assert pending.entry_id == "9-0"
    assert pending.version == Version(3, 7)


def test_decode_entries_empty() -> None:
    assert decode_entries([], OPTS) == ([], [])


GOOD = {"_id": 1, "x": 1}


@pytest.mark.parametrize(
    ("bad_fields", "reason_part"),
    [
        pytest.param({b"c": b"users", b"d": bson.encode(GOOD)}, "'op'", id="no-op"),
        pytest.param({b"op": b"set", b"d": bson.encode(GOOD)}, "'c'", id="no-collection"),
        pytest.param({b"op": b"set", b"c": b"users"}, "'d'", id="no-body"),
        pytest.param({}, "MalformedRecord", id="empty"),
        pytest.param(fields(GOOD, op=b"upsert"), "unknown op", id="unknown-op"),
        pytest.param(fields(GOOD, ov=b"not-a-version"), "MalformedRecord", id="bad-ov"),
        pytest.param(fields(b"\x00\x01\x02 not bson"), "InvalidBSON", id="body-not-bson"),
        pytest.param(fields({"x": 1}), "no _id", id="no-_id"),
        pytest.param(fields({"_id": 1.5}), "UnsupportedIdType", id="float-_id"),
        pytest.param(fields({"_id": True}), "UnsupportedIdType", id="bool-_id"),
        pytest.param(fields({"_id": None}), "UnsupportedIdType", id="null-_id"),
        pytest.param(fields({"_id": {"a": 1}}), "UnsupportedIdType", id="document-_id"),
    ],
)
def test_decode_entries_malformed_goes_aside(
    bad_fields: dict[bytes, bytes], reason_part: str
) -> None:
    pendings, malformed = decode_entries(
        [entry("1-0", {"_id": "before"}), (b"1-1", bad_fields), entry("1-2", {"_id": "after"})],
        OPTS,
    )
    assert [p.doc_id for p in pendings] == ["before", "after"]
    assert len(malformed) == 1
    bad = malformed[0]
    assert isinstance(bad, Malformed)
    assert bad.entry_id == "1-1"
    assert bad.fields == bad_fields
    assert reason_part in bad.reason
    assert bad.reason.split(":", 1)[0].isidentifier()  # "<ExceptionType>: <message>"


def test_decode_entries_several_malformed_keep_order() -> None:
    pendings, malformed = decode_entries(
        [
            (b"1-0", {}),
            entry("1-1", {"_id": 1}),
            entry("1-2", {"_id": 2.0}),
            entry("1-3", b"junk"),
            entry("1-4", {"_id": 2}),
        ],
        OPTS,
    )
    assert [p.entry_id for p in pendings] == ["1-1", "1-4"]
    assert [m.entry_id for m in malformed] == ["1-0", "1-2", "1-3"]


# coalesce


def test_coalesce_groups_by_collection_and_typed_id() -> None:
    groups = coalesce(
        pendings_of(
            entry("1-0", {"_id": 42}),
            entry("1-1", {"_id": "42"}),
            entry("1-2", {"_id": 42}, collection=b"orders"),
            entry("1-3", {"_id": 42}),
            entry("1-4", {"_id": "42"}),
        )
    )
    assert [(g.collection, g.key) for g in groups] == [
        ("users", "i42"),
        ("users", "s42"),
        ("orders", "i42"),
    ]
    assert [g.entry_ids() for g in groups] == [["1-0", "1-3"], ["1-1", "1-4"], ["1-2"]]
    assert all(isinstance(g, DocumentWrites) for g in groups)


def test_coalesce_orders_versions_numerically() -> None:
    (group,) = coalesce(
        pendings_of(
            entry("5-10", {"_id": 1, "n": 10}),
            entry("5-9", {"_id": 1, "n": 9}),
            entry("10-0", {"_id": 1, "n": 100}),
            entry("5-100", {"_id": 1, "n": 1005}),
        )
    )
    assert group.entry_ids() == ["5-9", "5-10", "5-100", "10-0"]
    assert group.newest.entry_id == "10-0"
    assert group.newest.document["n"] == 100


def test_coalesce_orders_by_original_version() -> None:
    # A replayed record ("9-0", originally "3-0") is older than "5-0" and "5-1".
    (group,) = coalesce(
        pendings_of(
            entry("5-0", {"_id": "d", "n": 5}),
            entry("5-1", {"_id": "d", "n": 6}),
            entry("9-0", {"_id": "d", "n": 3}, ov=b"3-0"),
        )
    )
    assert group.entry_ids() == ["9-0", "5-0", "5-1"]
    assert [p.version for p in group.records] == [Version(3, 0), Version(5, 0), Version(5, 1)]
    assert group.newest.entry_id == "5-1"


def test_coalesce_original_version_can_be_newest() -> None:
    (group,) = coalesce(
        pendings_of(
            entry("9-0", {"_id": "d"}, ov=b"8-0"),
            entry("9-1", {"_id": "d"}, ov=b"5-2"),
            entry("6-0", {"_id": "d"}),
        )
    )
    assert group.entry_ids() == ["9-1", "6-0", "9-0"]
    assert group.newest.version == Version(8, 0)


def test_coalesce_entry_ids_cover_all_records() -> None:
    entries = [entry(f"1-{i}", {"_id": i % 3}) for i in range(10)]
    groups = coalesce(pendings_of(*entries))
    assert len(groups) == 3
    covered = [eid for g in groups for eid in g.entry_ids()]
    assert sorted(covered) == sorted(e[0].decode() for e in entries)
    assert sum(len(g.records) for g in groups) == 10


def test_drop_newest_promotes_the_next_newest() -> None:
    (group,) = coalesce(
        pendings_of(
            entry("1-2", {"_id": 7, "n": 2}),
            entry("1-0", {"_id": 7, "n": 0}),
            entry("1-1", {"_id": 7, "n": 1}),
        )
    )
    assert group.newest.entry_id == "1-2"
    dropped = group.drop_newest()
    assert dropped.entry_id == "1-2"
    assert dropped.document["n"] == 2
    assert group.newest.entry_id == "1-1"
    assert group.entry_ids() == ["1-0", "1-1"]
    assert group.drop_newest().entry_id == "1-1"
    assert group.newest.entry_id == "1-0"
    group.drop_newest()
    assert group.records == []


def test_coalesce_empty() -> None:
    assert coalesce([]) == []
