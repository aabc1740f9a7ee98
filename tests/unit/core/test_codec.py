"""Unit tests for writebehind.core.codec: document checks, BSON encoding and record decoding."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import ObjectId
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128

from writebehind import errors
from writebehind.core.codec import (
    DEFAULT_CODEC_OPTIONS,
    MAX_BSON_SIZE,
    MAX_DOCUMENT_SIZE,
    ChangeRecord,
    MalformedRecord,
    decode_document,
    decode_record,
    encode_document,
    encode_id_document,
    encoding_options,
    same_id,
    user_view,
)
from writebehind.core.errors import (
    DocumentTooLarge,
    IdMismatch,
    IntegerOutOfRange,
    InvalidDocument,
    InvalidFieldName,
    InvalidInput,
    NotEncodable,
    UnsupportedIdType,
)
from writebehind.core.version import Version

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
OID = ObjectId("0123456789abcdef01234567")
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def round_trip(doc_id: Any, doc: Any) -> dict[str, Any]:
    return decode_document(encode_document(doc_id, doc))


def nested(levels: int) -> dict[str, Any]:
    """A document with ``levels`` sub-documents nested below it, the innermost ``{"a": 1}``."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return {"a": value}


# -- encode_document: successes --------------------------------------------------------


@pytest.mark.parametrize("doc_id", ["alice", 42, OID, UID, INT64_MAX, INT64_MIN, ""])
def test_id_is_first(doc_id: Any) -> None:
    doc = {"z": 1, "a": 2, "m": {"x": 1}}
    decoded = round_trip(doc_id, doc)
    assert next(iter(decoded)) == "_id"
    assert decoded["_id"] == doc_id
    assert isinstance(decoded["_id"], type(doc_id))
    assert list(decoded)[1:] == ["z", "a", "m"]  # the rest keeps its order


def test_id_is_first_even_when_given_last() -> None:
    raw = encode_document("k", OrderedDict([("b", 1), ("a", 2), ("_id", "k")]))
    decoded = bson.decode(raw)
    assert list(decoded) == ["_id", "b", "a"]
    assert decoded["_id"] == "k"
    # And it really is the first element of the BSON bytes (type 0x02, name "_id").
    assert raw[4:9] == b"\x02_id\x00"


def test_does_not_mutate_the_input() -> None:
    doc = {"b": 1, "_id": 7}
    encode_document(7, doc)
    assert list(doc) == ["b", "_id"]


def test_round_trips_values() -> None:
    when = dt.datetime(2024, 5, 17, 12, 34, 56, 789000)
    doc = {
        "when": when,
        "oid": OID,
        "dec": Decimal128(Decimal("12345.6789")),
        "blob": b"\x00\x01\xffbytes",
        "uid": UID,
        "max": INT64_MAX,
        "min": INT64_MIN,
        "small": -5,
        "float": 1.5,
        "bool": True,
        "none": None,
        "text": "héllo 日本",
        "dollar": "$x",
        "dotted": "a.b",
        "nul_value": "a\x00b",
        "list": [1, "two", [3, [4]], {"five": 5}],
        "nested": {"deep": {"deeper": {"items": [{"a": 1}, {"b": [True, None]}]}}},
        "empty_doc": {},
        "empty_list": [],
    }
    decoded = round_trip("k", doc)
    assert decoded == {"_id": "k", **doc}
    assert isinstance(decoded["uid"], uuid.UUID)
    assert isinstance(decoded["dec"], Decimal128)
    assert decoded["dec"].to_decimal() == Decimal("12345.6789")
    assert isinstance(decoded["blob"], bytes)
    assert isinstance(decoded["oid"], ObjectId)
    assert decoded["max"] == INT64_MAX
    assert decoded["min"] == INT64_MIN


def test_datetime_keeps_millisecond_precision() -> None:
    decoded = round_trip(1, {"t": dt.datetime(2024, 1, 2, 3, 4, 5, 123456)})
    assert decoded["t"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123000)


def test_tuples_are_stored_as_lists() -> None:
    assert round_trip(1, {"t": (1, (2, 3))})["t"] == [1, [2, 3]]


def test_values_may_look_like_operators_and_paths() -> None:
    decoded = round_trip("$id.with.dots", {"v": "$set", "w": ["$x", "a.b"], "x": {"y": "$"}})
    assert decoded == {"_id": "$id.with.dots", "v": "$set", "w": ["$x", "a.b"], "x": {"y": "$"}}


def test_nested_wb_field_is_allowed() -> None:
    # Only the top-level _wb is reserved.
    assert round_trip(1, {"x": {"_wb": 1}})["x"] == {"_wb": 1}


def test_uuid_encodes_even_with_unspecified_representation() -> None:
    raw = encode_document(UID, {"u": UID}, CodecOptions())
    decoded = decode_document(raw, CodecOptions())
    assert decoded == {"_id": UID, "u": UID}
    # Stored as the standard subtype 4.
    plain = bson.decode(raw, codec_options=CodecOptions(uuid_representation=0))
    assert isinstance(plain["u"], Binary)
    assert plain["u"].subtype == 4


# -- encode_document: refusals ---------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "error", "path"),
    [
        ({"$x": 1}, InvalidFieldName, "$x"),
        ({"$": 1}, InvalidFieldName, "$"),
        ({"ok": {"$inc": 1}}, InvalidFieldName, "ok.$inc"),
        ({"items": [{"ok": 1}, {"$bad": 1}]}, InvalidFieldName, "items.1.$bad"),
        ({"a": [[{"$b": 1}]]}, InvalidFieldName, "a.0.0.$b"),
        ({"a.b": 1}, InvalidFieldName, "a.b"),
        ({"x": {"a.b": 1}}, InvalidFieldName, "x.a.b"),
        ({".": 1}, InvalidFieldName, "."),
        ({"a\x00b": 1}, InvalidFieldName, "a\x00b"),
        ({"x": [{"\x00": 1}]}, InvalidFieldName, "x.0.\x00"),
        ({1: "a"}, InvalidFieldName, "1"),
        ({"x": {None: 1}}, InvalidFieldName, "x.None"),
        ({b"bytes": 1}, InvalidFieldName, "b'bytes'"),
        ({"n": 2**63}, IntegerOutOfRange, "n"),
        ({"n": -(2**63) - 1}, IntegerOutOfRange, "n"),
        ({"a": {"b": [1, 2**63]}}, IntegerOutOfRange, "a.b.1"),
        ({"a": [{"b": -(2**63) - 1}]}, IntegerOutOfRange, "a.0.b"),
        ({"a": (1, (2**100,))}, IntegerOutOfRange, "a.1.0"),
    ],
)
def test_refuses_with_path(doc: dict[Any, Any], error: type[InvalidDocument], path: str) -> None:
    with pytest.raises(error) as info:
        encode_document("k", doc)
    assert type(info.value) is error
    assert info.value.path == path
    assert repr(path) in str(info.value)


def test_reserved_meta_field() -> None:
    with pytest.raises(InvalidFieldName, match="_wb"):
        encode_document("k", {"_wb": {"v": [1, 2]}})


@pytest.mark.parametrize(
    "doc",
    [
        {"o": object()},
        {"s": {1, 2}},
        {"f": frozenset()},
        {"nested": {"deep": [1, {"s": {3}}]}},
        {"c": 1 + 2j},
        {"fn": len},
    ],
)
def test_not_encodable(doc: dict[str, Any]) -> None:
    with pytest.raises(NotEncodable):
        encode_document("k", doc)


def test_document_too_large() -> None:
    with pytest.raises(DocumentTooLarge):
        encode_document("k", {"blob": b"\x00" * (16 * 1024 * 1024)})


def test_document_at_exactly_the_limit_encodes() -> None:
    overhead = len(encode_document("k", {"blob": b""}))
    payload = b"x" * (MAX_DOCUMENT_SIZE - overhead)
    raw = encode_document("k", {"blob": payload})
    assert len(raw) == MAX_DOCUMENT_SIZE
    assert MAX_DOCUMENT_SIZE < MAX_BSON_SIZE
    with pytest.raises(DocumentTooLarge):
        encode_document("k", {"blob": payload + b"x"})


@pytest.mark.parametrize(
    ("doc_id", "given"),
    [
        (42, "42"),
        ("42", 42),
        (1, True),
        (0, False),
        (1, 1.0),
        (1, 2),
        ("a", "b"),
        (OID, str(OID)),
        (OID, ObjectId("ffffffffffffffffffffffff")),
        (UID, str(UID)),
        (UID, UID.hex),
        (1, None),
        (1, [1]),
    ],
)
def test_id_mismatch(doc_id: Any, given: Any) -> None:
    with pytest.raises(IdMismatch):
        encode_document(doc_id, {"_id": given, "x": 1})


@pytest.mark.parametrize("doc_id", [42, "42", OID, UID])
def test_matching_id_in_document_is_accepted(doc_id: Any) -> None:
    assert round_trip(doc_id, {"x": 1, "_id": doc_id}) == {"_id": doc_id, "x": 1}


@pytest.mark.parametrize("doc_id", [True, 1.0, None, b"k", 2**63])
def test_unsupported_document_id(doc_id: Any) -> None:
    with pytest.raises(UnsupportedIdType):
        encode_document(doc_id, {"x": 1})


@pytest.mark.parametrize("doc", [None, [("a", 1)], "doc", b"doc", 42, {("a", 1)}])
def test_non_mapping_document(doc: Any) -> None:
    with pytest.raises(InvalidDocument) as info:
        encode_document("k", doc)
    assert type(info.value) is InvalidDocument


def test_nesting_limit() -> None:
    assert round_trip("k", nested(100))["_id"] == "k"
    for levels in (101, 150):
        with pytest.raises(InvalidDocument, match="nesting deeper than 100") as info:
            encode_document("k", nested(levels))
        assert type(info.value) is InvalidDocument


def deep_list(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_limit_counts_lists() -> None:
    assert round_trip("k", {"l": deep_list(100)})["l"] == deep_list(100)
    with pytest.raises(InvalidDocument, match="nesting deeper than 100"):
        encode_document("k", {"l": deep_list(101)})


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(InvalidDocument):
        encode_document("k", nested(5000))


@pytest.mark.parametrize(
    "error",
    [
        InvalidDocument,
        InvalidFieldName,
        IntegerOutOfRange,
        NotEncodable,
        DocumentTooLarge,
        IdMismatch,
        UnsupportedIdType,
    ],
)
def test_error_classes_are_invalid_input(error: type[Exception]) -> None:
    assert issubclass(error, InvalidInput)
    assert issubclass(error, ValueError)
    assert issubclass(error, errors.WriteBehindError)


def test_encode_id_document() -> None:
    assert decode_document(encode_id_document(UID)) == {"_id": UID}
    assert bson.decode(encode_id_document(42)) == {"_id": 42}
    with pytest.raises(UnsupportedIdType):
        encode_id_document(True)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [(42, 42, True), (42, "42", False), (1, True, False), (1, 1.0, False), (OID, OID, True)],
)
def test_same_id(a: Any, b: Any, same: bool) -> None:
    assert same_id(a, b) is same
    assert same_id(b, a) is same


# -- user_view -------------------------------------------------------------------------


def test_user_view_strips_metadata() -> None:
    doc = {"_id": 1, "x": 2, "_wb": {"v": [5, 1], "deleted": False}}
    assert user_view(doc) == {"_id": 1, "x": 2}
    assert "_wb" in doc  # the input is left alone


def test_user_view_without_metadata() -> None:
    assert user_view({"_id": 1, "x": 2}) == {"_id": 1, "x": 2}


@pytest.mark.parametrize(
    "doc",
    [
        {"_wb": {"deleted": True}},
        {"_id": 1, "_wb": {"v": [5, 1], "deleted": True}},
        None,
    ],
)
def test_user_view_hides_tombstones_and_none(doc: dict[str, Any] | None) -> None:
    assert user_view(doc) is None


# -- decode_record ---------------------------------------------------------------------


def test_decode_set_record() -> None:
    body = encode_document("alice", {"age": 30})
    record = decode_record(b"1718000000000-3", {b"op": b"set", b"c": b"users", b"d": body})
    assert isinstance(record, ChangeRecord)
    assert record.entry_id == "1718000000000-3"
    assert record.version == Version.parse("1718000000000-3")
    assert record.op == "set"
    assert record.collection == "users"
    assert record.body == body
    assert record.document() == {"_id": "alice", "age": 30}


def test_decode_record_accepts_str_entry_id() -> None:
    record = decode_record("5-10", {b"op": b"del", b"c": b"users", b"d": encode_id_document(1)})
    assert record.entry_id == "5-10"
    assert record.version == Version(5, 10)
    assert record.op == "del"
    assert record.document() == {"_id": 1}


def test_decode_record_uses_original_version() -> None:
    fields = {b"op": b"set", b"c": b"users", b"d": encode_document(1, {}), b"ov": b"7-2"}
    record = decode_record(b"9-0", fields)
    assert record.entry_id == "9-0"
    assert record.version == Version(7, 2)
    assert record.version != Version.parse(record.entry_id)


def test_decode_record_unicode_collection() -> None:
    fields = {b"op": b"set", b"c": "ünï 日本".encode(), b"d": encode_document(1, {})}
    assert decode_record(b"1-1", fields).collection == "ünï 日本"


BODY = bson.encode({"_id": 1})


@pytest.mark.parametrize(
    "fields",
    [
        {b"c": b"users", b"d": BODY},
        {b"op": b"upsert", b"c": b"users", b"d": BODY},
        {b"op": b"SET", b"c": b"users", b"d": BODY},
        {b"op": b"", b"c": b"users", b"d": BODY},
        {b"op": b"set", b"c": b"users"},
        {b"op": b"del", b"c": b"users"},
        {b"op": b"set", b"d": BODY},
        {},
    ],
)
def test_malformed_records(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(MalformedRecord):
        decode_record(b"1-1", fields)


@pytest.mark.parametrize(
    "fields",
    [
        {b"op": b"set", b"c": b"users", b"d": BODY, b"ov": b"junk"},
        {b"op": b"\xff", b"c": b"users", b"d": BODY},
        {b"op": b"set", b"c": b"\xff", b"d": BODY},
        # Collection names the SDK refuses, added to the stream past it.
        {b"op": b"set", b"c": b"", b"d": BODY},
        {b"op": b"set", b"c": b"bad$name", b"d": BODY},
        {b"op": b"set", b"c": b"x\x00y", b"d": BODY},
        {b"op": b"del", b"c": b"system.users", b"d": BODY},
        {b"op": b"set", b"c": b"a" * 201, b"d": BODY},
    ],
)
def test_malformed_record_values(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(MalformedRecord):
        decode_record(b"1-1", fields)


def test_malformed_record_is_a_value_error() -> None:
    assert issubclass(MalformedRecord, ValueError)


# -- encoding_options ------------------------------------------------------------------


def test_encoding_options_default_gets_standard_uuids() -> None:
    given = CodecOptions()
    assert given.uuid_representation == UuidRepresentation.UNSPECIFIED
    result = encoding_options(given)
    assert result.uuid_representation == UuidRepresentation.STANDARD


def test_encoding_options_keeps_other_settings_when_fixing_uuids() -> None:
    tz = dt.timezone(dt.timedelta(hours=2))
    result = encoding_options(CodecOptions(tz_aware=True, tzinfo=tz))
    assert result.uuid_representation == UuidRepresentation.STANDARD
    assert result.tz_aware is True
    assert result.tzinfo == tz


@pytest.mark.parametrize(
    "representation",
    [
        UuidRepresentation.STANDARD,
        UuidRepresentation.PYTHON_LEGACY,
        UuidRepresentation.JAVA_LEGACY,
        UuidRepresentation.CSHARP_LEGACY,
    ],
)
def test_encoding_options_keeps_given_options(representation: int) -> None:
    given = CodecOptions(uuid_representation=representation, tz_aware=True)
    assert encoding_options(given) is given


def test_encoding_options_none_is_the_default() -> None:
    assert encoding_options(None) is DEFAULT_CODEC_OPTIONS
    assert DEFAULT_CODEC_OPTIONS.uuid_representation == UuidRepresentation.STANDARD
