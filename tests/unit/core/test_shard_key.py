"""Unit tests for writebehind.core.shard_key and the shard filters of the guarded writes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import bson
import pytest
from pymongo import DeleteOne, UpdateOne

from writebehind.core.codec import ChangeRecord, decode_record
from writebehind.core.errors import (
    ConfigurationError,
    InvalidDocument,
    InvalidInput,
    MalformedRecord,
    MissingShardKey,
    NotEncodable,
    ShardKeyChanged,
)
from writebehind.core.guarded import guarded_replace, snapshot, tombstone
from writebehind.core.letter_format import letter_fields
from writebehind.core.shard_key import (
    ShardKey,
    collection_shard_key,
    decode_values,
    encode_values,
    parse_shard_keys,
    shard_filter,
    stored_conflict,
)
from writebehind.core.version import Version
from writebehind.sink.guards import Pending, guarded_write
from writebehind.sink.plan import decode_entries

NOW = dt.datetime(2024, 6, 1, 12, 0, 0)
GRACE = dt.timedelta(days=7)
KEY = ShardKey(("tenant", "region"))


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("tenant", ("tenant",)),
        (("tenant", "region"), ("tenant", "region")),
        (["tenant"], ("tenant",)),
        ({"tenant": 1, "region": "hashed"}, ("tenant", "region")),
        (("_id",), ()),
        (("tenant", "_id"), ("tenant",)),
    ],
)
def test_parse_accepts_names_tuples_and_key_documents(spec: Any, fields: tuple[str, ...]) -> None:
    assert ShardKey.parse(spec).fields == fields


@pytest.mark.parametrize(
    "spec", [(), "", ("a.b",), ("$x",), ("_wb",), ("a", "a"), 42, None, (1,), {"": 1}]
)
def test_parse_refuses_bad_keys(spec: Any) -> None:
    with pytest.raises(ConfigurationError):
        ShardKey.parse(spec)


def test_values_in_key_order_and_missing_field_refused() -> None:
    assert KEY.values({"region": "eu", "x": 1, "tenant": "t1"}) == {"tenant": "t1", "region": "eu"}
    assert list(KEY.values({"region": "eu", "tenant": "t1"})) == ["tenant", "region"]
    with pytest.raises(MissingShardKey) as caught:
        KEY.values({"tenant": "t1"})
    assert caught.value.path == "region"
    assert isinstance(caught.value, InvalidDocument)


def test_none_is_a_value_but_arrays_are_refused() -> None:
    assert KEY.values({"tenant": None, "region": "eu"}) == {"tenant": None, "region": "eu"}
    with pytest.raises(InvalidDocument, match="array"):
        KEY.values({"tenant": ["a"], "region": "eu"})


def test_given_values_must_be_exactly_the_key() -> None:
    assert KEY.given({"tenant": "t", "region": "r"}) == {"tenant": "t", "region": "r"}
    with pytest.raises(InvalidInput, match="outside"):
        KEY.given({"tenant": "t", "region": "r", "other": 1})
    with pytest.raises(MissingShardKey):
        KEY.given({"tenant": "t"})
    with pytest.raises(InvalidInput):
        KEY.given("t")


def test_for_write_keeps_values_fixed() -> None:
    stored = {"tenant": "t", "region": "r", "n": 1}
    assert KEY.for_write(stored, {**stored, "n": 2}) == {"tenant": "t", "region": "r"}
    assert KEY.for_write(None, {"tenant": "t", "region": "r"}) == {"tenant": "t", "region": "r"}
    assert KEY.for_write(stored, None) == {"tenant": "t", "region": "r"}  # a delete
    with pytest.raises(ShardKeyChanged, match="changes"):
        KEY.for_write(stored, {**stored, "tenant": "u"})
    with pytest.raises(ShardKeyChanged, match="drops"):
        KEY.for_write(stored, {"tenant": "t", "n": 2})
    with pytest.raises(ShardKeyChanged):  # 1 and True are different BSON values
        ShardKey(("k",)).for_write({"k": 1}, {"k": True})
    with pytest.raises(ShardKeyChanged):  # a stored document without the field gains it
        ShardKey(("k",)).for_write({"n": 1}, {"k": 1})
    with pytest.raises(MissingShardKey, match="shard_key="):
        KEY.for_write(None, None)  # deleting a document that is not stored


def test_values_round_trip_through_the_record_field() -> None:
    values = {"tenant": uuid.uuid4(), "region": dt.datetime(2024, 1, 1)}
    raw = encode_values(values)
    assert decode_values(raw) == values
    assert encode_values({}) == b""
    assert decode_values(b"") == {}
    with pytest.raises(NotEncodable):
        encode_values({"tenant": object()})


@pytest.mark.parametrize(
    "values",
    [{"$where": "1"}, {"a.b": 1}, {"_id": 1}, {"_wb": 1}, {"t": [1]}],
)
def test_decode_refuses_what_would_change_a_filter(values: dict[str, Any]) -> None:
    with pytest.raises(MalformedRecord):
        decode_values(bson.encode(values))
    with pytest.raises(MalformedRecord):
        decode_values(b"not bson")


def test_configured_and_given_keys_must_agree() -> None:
    configured = parse_shard_keys({"orders": "tenant"})
    assert collection_shard_key(configured, "orders", None) == ShardKey(("tenant",))
    assert collection_shard_key(configured, "orders", ("tenant",)) == ShardKey(("tenant",))
    assert collection_shard_key(configured, "users", None) is None
    assert collection_shard_key(configured, "users", "org") == ShardKey(("org",))
    with pytest.raises(ConfigurationError, match="differs"):
        collection_shard_key(configured, "orders", "region")
    with pytest.raises(ConfigurationError):
        parse_shard_keys(["orders"])  # type: ignore[arg-type]


# -- the filters the worker sends ---------------------------------------------


def _pending(op: str, doc: dict[str, Any], shard: dict[str, Any]) -> Pending:
    body = bson.encode(doc if op == "set" else {"_id": doc["_id"]})
    record = ChangeRecord("5-1", Version.parse("5-1"), op, "orders", body, encode_values(shard))  # type: ignore[arg-type]
    return Pending(record, bson.decode(body), shard)


def test_upsert_filter_carries_the_shard_key() -> None:
    doc = {"_id": 7, "tenant": "t", "region": "r", "n": 1}
    model = guarded_write(
        _pending("set", doc, {"tenant": "t", "region": "r"}), now=NOW, tombstone_grace=GRACE
    )
    assert isinstance(model, UpdateOne)
    assert model._filter == {"_id": 7, "tenant": "t", "region": "r"}
    assert model._upsert is True


def test_tombstone_keeps_the_shard_key_and_filters_on_it() -> None:
    model = guarded_write(
        _pending("del", {"_id": 7}, {"tenant": "t"}), now=NOW, tombstone_grace=GRACE
    )
    assert isinstance(model, UpdateOne)
    assert model._filter == {"_id": 7, "tenant": "t"}
    new = model._doc[0]["$replaceWith"]["$cond"][1]["$literal"]  # type: ignore[index]
    assert new["_id"] == 7 and new["tenant"] == "t" and new["_wb"]["deleted"] is True


def test_hard_delete_filter_carries_the_shard_key() -> None:
    model = guarded_write(
        _pending("del", {"_id": 7}, {"tenant": "t"}),
        now=NOW,
        tombstone_grace=GRACE,
        hard_deletes=True,
    )
    assert isinstance(model, DeleteOne)
    assert model._filter["_id"] == 7 and model._filter["tenant"] == "t"
    assert "$expr" in model._filter


def test_unsharded_records_filter_on_id_alone() -> None:
    model = guarded_write(_pending("set", {"_id": 7, "n": 1}, {}), now=NOW, tombstone_grace=GRACE)
    assert isinstance(model, UpdateOne)
    assert model._filter == {"_id": 7}
    assert tombstone(7, Version.parse("1-1"), NOW) == {
        "_id": 7,
        "_wb": {"v": [1, 1], "deleted": True, "purge_at": NOW},
    }
    assert shard_filter(7, {}) == {"_id": 7}
    assert guarded_replace(7, Version.parse("1-1"), snapshot({"_id": 7}, Version.parse("1-1")))


def test_records_decode_with_and_without_the_sk_field() -> None:
    base = {b"op": b"set", b"c": b"orders", b"d": bson.encode({"_id": 1, "tenant": "t"})}
    old = decode_record(b"1-1", base)
    assert old.shard_key == b""
    raw = encode_values({"tenant": "t"})
    new = decode_record(b"1-2", {**base, b"sk": raw})
    assert new.shard_key == raw
    pendings, malformed = decode_entries([(b"1-1", base), (b"1-2", {**base, b"sk": raw})], None)  # type: ignore[arg-type]
    assert not malformed
    assert [p.shard for p in pendings] == [{}, {"tenant": "t"}]


def test_a_record_with_a_bad_sk_is_malformed() -> None:
    base = {b"op": b"set", b"c": b"orders", b"d": bson.encode({"_id": 1})}
    pendings, malformed = decode_entries(
        [(b"1-1", {**base, b"sk": bson.encode({"$where": "sleep(1)"})})],
        None,  # type: ignore[arg-type]
    )
    assert not pendings
    assert "sk" in malformed[0].reason


def test_dead_letters_keep_the_sk_field_only_when_present() -> None:
    common: dict[str, Any] = {
        "op": "set",
        "collection": "orders",
        "body": b"x",
        "version": "1-1",
        "source_id": "1-1",
        "partition": 0,
        "failure": {},
    }
    assert b"sk" not in letter_fields(**common) and "sk" not in letter_fields(**common)
    fields = letter_fields(**common, shard_key=b"raw")
    assert fields[fields.index("sk") + 1] == b"raw"


def test_a_dead_letter_re_drives_with_its_shard_key() -> None:
    from writebehind.tools.letters import decode_letter

    raw = encode_values({"tenant": "t"})
    fields = letter_fields(
        op="set",
        collection="orders",
        body=bson.encode({"_id": 1, "tenant": "t"}),
        version="1-1",
        source_id="1-1",
        partition=0,
        failure={},
        shard_key=raw,
    )
    as_bytes = {
        str(k).encode(): v if isinstance(v, bytes) else str(v).encode()
        for k, v in zip(fields[::2], fields[1::2], strict=True)
    }
    letter = decode_letter(0, b"2-1", as_bytes)
    assert letter.problem is None
    assert letter.pending().shard == {"tenant": "t"}
    assert letter.pending().record.shard_key == raw
    bad = decode_letter(0, b"2-2", {**as_bytes, b"sk": bson.encode({"$ne": 1})})
    assert bad.problem is not None and "sk" in bad.problem


def test_stored_conflict_names_a_changed_shard_key_value() -> None:
    assert stored_conflict({"tenant": "a"}, {"_id": 1, "tenant": "a", "n": 1}) is None
    assert stored_conflict({}, {"_id": 1}) is None
    reason = stored_conflict({"tenant": "b"}, {"_id": 1, "tenant": "a"})
    assert reason is not None and "tenant='a'" in reason and "'b'" in reason
    assert stored_conflict({"tenant": "b"}, {"_id": 1}) is not None  # stored without it
