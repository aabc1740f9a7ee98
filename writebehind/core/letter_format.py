"""The dead-letter record: the fields of an entry in a partition's dead-letter stream (no IO).

Written by the worker (``DEAD_LETTER`` script), by replay (``DEAD_LETTER_ONCE``)
and by a re-drive that fails again; read by ``tools.letters``. In this order:

    op c d ov [sk]           the change record: op, collection, BSON body, original version,
                             shard key values (only when the record has them: ``core.shard_key``)
    source_id partition      where it came from: its entry id in the partition stream
    error_kind error_code    why it failed: ``permanent``/``transient``/..., MongoDB's code or ""
    error                    MongoDB's message, cut to ``MAX_ERROR_CHARS``
    deliveries failed_at_ms  how often it was tried; when it last failed (ms since the epoch)
    consumer                 who dead-lettered it (a worker, ``replay``, a re-drive)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ERROR_CHARS = 2000
"""A dead letter keeps this much of MongoDB's error message."""

FieldValue = bytes | str | int


def failure_fields(
    *,
    kind: str,
    code: int | None,
    message: str,
    deliveries: int,
    failed_at_ms: int,
    consumer: str,
) -> dict[str, FieldValue]:
    """The fields that say why, when and by whom a record was dead-lettered."""
    return {
        "error_kind": kind,
        "error_code": "" if code is None else code,
        "error": message[:MAX_ERROR_CHARS],
        "deliveries": deliveries,
        "failed_at_ms": failed_at_ms,
        "consumer": consumer,
    }


def letter_fields(
    *,
    op: str,
    collection: str,
    body: bytes,
    version: str,
    source_id: str,
    partition: int,
    failure: Mapping[str, FieldValue],
    shard_key: bytes = b"",
) -> list[FieldValue]:
    """A new dead letter's field/value pairs, flat, as ``XADD`` takes them."""
    record: dict[str, FieldValue] = {
        "op": op,
        "c": collection,
        "d": body,
        "ov": version,
        **({"sk": shard_key} if shard_key else {}),
        "source_id": source_id,
        "partition": partition,
    }
    return [item for pair in {**record, **failure}.items() for item in pair]


def updated_fields(fields: Mapping[bytes, bytes], failure: Mapping[str, FieldValue]) -> list[Any]:
    """An existing letter's fields with a new failure; everything else, and the order, kept."""
    merged: dict[bytes, Any] = {**fields, **{k.encode(): v for k, v in failure.items()}}
    return [item for pair in merged.items() for item in pair]
