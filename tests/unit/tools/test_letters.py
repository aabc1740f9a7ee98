"""Unit tests for writebehind.tools.letters: dead-letter IDs and decoding (no servers)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import bson
import pytest
from bson import ObjectId

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.version import Version
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.tools.letters import (
    InvalidLetterId,
    LetterId,
    decode_letter,
    format_doc_id,
    iso_time,
    refailed_fields,
    to_json_value,
)


def letter_fields(doc: dict[str, Any] | bytes, **overrides: Any) -> dict[bytes, bytes]:
    """The fields the worker writes for a dead letter, as Redis returns them."""
    body = doc if isinstance(doc, bytes) else bson.encode(doc, codec_options=DEFAULT_CODEC_OPTIONS)
    values: dict[str, Any] = {
        "op": "set",
        "c": "people",
        "d": body,
        "ov": "1718000000000-3",
        "source_id": "1718000000000-3",
        "partition": "2",
        "error_kind": "permanent",
        "error_code": "121",
        "error": "Document failed validation",
        "deliveries": "4",
        "failed_at_ms": "1718000000500",
        "consumer": "host-1-abc",
    }
    values.update(overrides)
    return {
        k.encode(): v if isinstance(v, bytes) else str(v).encode()
        for k, v in values.items()
        if v is not None
    }


# LetterId


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/1718000000000-0", LetterId(3, "1718000000000-0")),
        ("0/5-10", LetterId(0, "5-10")),
        (" 15/1-2 ", LetterId(15, "1-2")),
        ("2/007-01", LetterId(2, "7-1")),
    ],
)
def test_letter_id_parses(text: str, expected: LetterId) -> None:
    parsed = LetterId.parse(text, partitions=16)
    assert parsed == expected
    assert LetterId.parse(str(parsed), partitions=16) == parsed


@pytest.mark.parametrize(
    "text",
    ["", "3", "1718000000000-0", "3/", "3/1718000000000", "/1-0", "a/1-0", "3/1-0-0",
     "3/1-x", "-1/1-0", "3:1-0", "3/99999999999999999999-0"],
)  # fmt: skip
def test_malformed_letter_ids_are_refused(text: str) -> None:
    with pytest.raises(InvalidLetterId, match=r"dead-letter ID|stream entry id"):
        LetterId.parse(text, partitions=16)


def test_letter_id_partition_must_exist() -> None:
    assert LetterId.parse("15/1-0", partitions=16).partition == 15
    with pytest.raises(InvalidLetterId, match="partitions are 0 to 15"):
        LetterId.parse("16/1-0", partitions=16)
    assert LetterId.parse("16/1-0").partition == 16


def test_letter_ids_sort_by_entry_id_as_numbers_then_partition() -> None:
    ids = [LetterId(1, "5-10"), LetterId(0, "5-9"), LetterId(0, "5-10"), LetterId(2, "10-0")]
    assert sorted(ids, key=lambda i: i.sort_key) == [
        LetterId(0, "5-9"),
        LetterId(0, "5-10"),
        LetterId(1, "5-10"),
        LetterId(2, "10-0"),
    ]


# decode_letter


def test_decode_letter_reads_every_field() -> None:
    letter = decode_letter(2, b"1718000000600-0", letter_fields({"_id": "u1", "x": 1}))
    assert letter.id == LetterId(2, "1718000000600-0")
    assert letter.collection == "people"
    assert letter.doc_id == "u1"
    assert letter.version == Version(1718000000000, 3)
    assert letter.op == "set"
    assert (letter.error_kind, letter.error_code, letter.error) == (
        "permanent",
        121,
        "Document failed validation",
    )
    assert letter.deliveries == 4
    assert letter.failed_at == dt.datetime(2024, 6, 10, 6, 13, 20, 500000, tzinfo=dt.UTC)
    assert iso_time(letter.failed_at) == "2024-06-10T06:13:20.500Z"
    assert letter.source_id == "1718000000000-3"
    assert letter.consumer == "host-1-abc"
    assert letter.problem is None
    assert letter.document() == {"_id": "u1", "x": 1}


def test_redrive_uses_the_original_version_not_the_dead_letter_entry_id() -> None:
    letter = decode_letter(0, "1718000000600-0", letter_fields({"_id": 7}))
    pending = letter.pending()
    assert pending.version == Version(1718000000000, 3)
    assert pending.doc_id == 7
    assert pending.record.op == "set" and pending.record.collection == "people"
    assert pending.document == {"_id": 7}
    # Without ov, the source entry id is the original version.
    no_ov = decode_letter(0, "9-0", letter_fields({"_id": 7}, ov=None, source_id="3-1"))
    assert no_ov.version == Version(3, 1)


def test_typed_ids_survive_decoding() -> None:
    oid, uid = ObjectId(), uuid.uuid4()
    assert decode_letter(0, "1-0", letter_fields({"_id": oid})).doc_id == oid
    assert decode_letter(0, "1-0", letter_fields({"_id": uid})).doc_id == uid
    assert decode_letter(0, "1-0", letter_fields({"_id": "42"})).doc_id == "42"
    assert decode_letter(0, "1-0", letter_fields({"_id": 42})).doc_id == 42


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"d": b"\x05\x00\x00"}, "not decodable"),
        ({"d": bson.encode({"x": 1})}, "no _id"),
        ({"d": bson.encode({"_id": 1.5})}, "not decodable"),
        ({"op": "patch"}, "unknown op"),
        ({"ov": None, "source_id": None}, "no original version"),
        ({"ov": "garbage"}, "no original version"),
        ({"c": ""}, "collection name"),
        ({"c": "a$b"}, "collection name"),
    ],
)
def test_undecodable_letters_decode_with_a_problem(overrides: dict[str, Any], problem: str) -> None:
    fields = letter_fields({"_id": "u1"})
    fields.update(
        {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in overrides.items()
         if v is not None}
    )  # fmt: skip
    for name, value in overrides.items():
        if value is None:
            del fields[name.encode()]
    letter = decode_letter(1, "1-0", fields)
    assert letter.problem is not None and problem in letter.problem
    with pytest.raises(ValueError, match="cannot be re-driven"):
        letter.pending()


def test_missing_numbers_decode_as_unknown() -> None:
    letter = decode_letter(
        0, "1-0", letter_fields({"_id": 1}, error_code="", deliveries=None, failed_at_ms="x")
    )
    assert letter.error_code is None
    assert letter.deliveries == 0
    assert letter.failed_at is None and iso_time(letter.failed_at) is None


# refailed_fields


def test_refailed_fields_keep_the_record_and_update_the_error() -> None:
    original = letter_fields({"_id": "u1"})
    letter = decode_letter(2, "1718000000600-0", original)
    error = ErrorInfo(Failure.PERMANENT, 11000, "E11000 duplicate key " + "x" * 3000)
    flat = refailed_fields(letter, error, now_ms=1718000009999, consumer="dlq-replay@h-1")
    pairs = dict(zip(flat[::2], flat[1::2], strict=True))
    assert list(pairs) == list(original)  # same fields, same order
    for kept in (b"op", b"c", b"d", b"ov", b"source_id", b"partition"):
        assert pairs[kept] == original[kept]
    assert pairs[b"error_kind"] == "permanent"
    assert pairs[b"error_code"] == 11000
    assert isinstance(pairs[b"error"], str) and len(pairs[b"error"]) == 2000
    assert pairs[b"deliveries"] == 5
    assert pairs[b"failed_at_ms"] == 1718000009999
    assert pairs[b"consumer"] == "dlq-replay@h-1"
    no_code = refailed_fields(
        letter, ErrorInfo(Failure.PERMANENT, None, "x"), now_ms=1, consumer="c"
    )
    assert dict(zip(no_code[::2], no_code[1::2], strict=True))[b"error_code"] == ""


# JSON and display


def test_json_values_are_relaxed_extended_json() -> None:
    oid = ObjectId("0123456789abcdef01234567")
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_json_value("u1") == "u1"
    assert to_json_value(42) == 42
    assert to_json_value(None) is None
    assert to_json_value(oid) == {"$oid": "0123456789abcdef01234567"}
    assert to_json_value(uid) == {
        "$binary": {"base64": "EjRWeBI0VngSNFZ4EjRWeA==", "subType": "04"}
    }
    assert to_json_value({"when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}) == {
        "when": {"$date": "2024-01-02T00:00:00Z"}
    }


def test_document_ids_print_unambiguously() -> None:
    assert format_doc_id("42") == "'42'"
    assert format_doc_id(42) == "42"
    assert format_doc_id(ObjectId("0123456789abcdef01234567")) == (
        "ObjectId('0123456789abcdef01234567')"
    )
    assert format_doc_id(None) == "?"


def test_as_dict_is_json_ready() -> None:
    letter = decode_letter(2, "1718000000600-0", letter_fields({"_id": ObjectId(), "n": 1}))
    out = letter.as_dict(with_document=True)
    assert out["id"] == "2/1718000000600-0"
    assert out["version"] == "1718000000000-3"
    assert out["error_code"] == 121
    assert out["failed_at"] == "2024-06-10T06:13:20.500Z"
    assert out["replayable"] is True and out["problem"] is None
    assert set(out["document_id"]) == {"$oid"}
    assert out["document"]["n"] == 1
    assert "document" not in letter.as_dict()
