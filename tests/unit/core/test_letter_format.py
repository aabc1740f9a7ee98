"""Unit tests for writebehind.core.letter_format: the dead-letter record's fields."""

from __future__ import annotations

from writebehind.core.letter_format import (
    MAX_ERROR_CHARS,
    failure_fields,
    letter_fields,
    updated_fields,
)


def failure(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "kind": "permanent",
        "code": 121,
        "message": "Document failed validation",
        "deliveries": 2,
        "failed_at_ms": 1_718_000_000_000,
        "consumer": "w1",
    }
    values.update(overrides)
    return failure_fields(**values)  # type: ignore[arg-type]


def test_a_new_letter_has_every_field_in_order() -> None:
    fields = letter_fields(
        op="set",
        collection="users",
        body=b"\x05\x00\x00\x00\x00",
        version="5-1",
        source_id="5-1",
        partition=3,
        failure=failure(),
    )
    assert fields[::2] == [
        "op", "c", "d", "ov", "source_id", "partition",
        "error_kind", "error_code", "error", "deliveries", "failed_at_ms", "consumer",
    ]  # fmt: skip
    assert dict(zip(fields[::2], fields[1::2], strict=True))["partition"] == 3


def test_no_code_is_written_as_empty_and_long_errors_are_cut() -> None:
    fields = failure(code=None, message="x" * (MAX_ERROR_CHARS + 10))
    assert fields["error_code"] == ""
    assert len(str(fields["error"])) == MAX_ERROR_CHARS


def test_an_updated_letter_keeps_its_record_and_order() -> None:
    old = {b"op": b"set", b"c": b"users", b"error": b"old", b"deliveries": b"1", b"extra": b"kept"}
    fields = updated_fields(old, failure(message="new", deliveries=2))
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    assert list(pairs)[:5] == [b"op", b"c", b"error", b"deliveries", b"extra"]
    assert pairs[b"error"] == "new"
    assert pairs[b"deliveries"] == 2
    assert pairs[b"extra"] == b"kept"
