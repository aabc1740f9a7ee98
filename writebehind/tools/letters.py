"""Dead letters as operators see them: their IDs, their decoded fields (no IO).

The worker writes each dead letter to its partition's dead-letter stream with
the fields ``core.letter_format`` defines (``op c d ov source_id partition
error_kind error_code error deliveries failed_at_ms consumer``). A dead letter is addressed as
``<partition>/<entry id>`` (``3/1718000000000-0``): entry ids are unique per
stream only, so the partition is part of the name.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import json_util
from bson.codec_options import CodecOptions
from bson.json_util import JSONMode, JSONOptions

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS, ChangeRecord, decode_document
from writebehind.core.errors import InvalidInput
from writebehind.core.errors import InvalidLetterId as InvalidLetterId  # re-exported
from writebehind.core.keys import encode_id, validate_collection_name
from writebehind.core.letter_format import failure_fields, updated_fields
from writebehind.core.replies import as_text, field_text
from writebehind.core.shard_key import decode_values
from writebehind.core.version import Version
from writebehind.sink.classify import ErrorInfo
from writebehind.sink.guards import Pending

_LETTER_ID = re.compile(r"(\d{1,5})/(\d{1,20}-\d{1,20})")
JSON_OPTIONS = JSONOptions(
    json_mode=JSONMode.RELAXED, uuid_representation=DEFAULT_CODEC_OPTIONS.uuid_representation
)
"""Documents and ids in JSON output: MongoDB Extended JSON, relaxed."""


@dataclass(frozen=True, slots=True)
class LetterId:
    """``<partition>/<entry id of the dead-letter stream>``."""

    partition: int
    entry_id: str

    @classmethod
    def parse(cls, text: str, partitions: int | None = None) -> LetterId:
        """Read ``<partition>/<entry id>``; raises ``InvalidLetterId`` (partition too high, too)."""
        match = _LETTER_ID.fullmatch(text.strip())
        if match is None:
            raise InvalidLetterId(
                f"not a dead-letter ID: {text!r} (expected <partition>/<entry id>, "
                "e.g. 3/1718000000000-0, as `writebehind dlq list` shows)"
            )
        partition = int(match.group(1))
        if partitions is not None and partition >= partitions:
            raise InvalidLetterId(
                f"no partition {partition} in {text!r}: partitions are 0 to {partitions - 1}"
            )
        try:
            version = Version.parse(match.group(2))
        except ValueError:
            raise InvalidLetterId(f"not a stream entry id in {text!r}") from None
        return cls(partition, str(version))

    @property
    def sort_key(self) -> tuple[Version, int]:
        return Version.parse(self.entry_id), self.partition

    def __str__(self) -> str:
        return f"{self.partition}/{self.entry_id}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One decoded dead letter.

    Decoding never fails: what cannot be read is left ``None`` and ``problem``
    says why the letter cannot be re-driven.
    """

    id: LetterId
    collection: str
    op: str
    doc_id: Any
    version: Version | None
    """The record's original version: what a re-drive writes it with."""
    error_kind: str
    error_code: int | None
    error: str
    deliveries: int
    failed_at_ms: int | None
    source_id: str
    """The entry id the record had in its partition stream."""
    consumer: str
    body: bytes = field(repr=False)
    problem: str | None = None
    fields: Mapping[bytes, bytes] = field(default_factory=dict, repr=False, compare=False)
    codec: CodecOptions[Any] = field(default=DEFAULT_CODEC_OPTIONS, repr=False, compare=False)
    """The deployment's codec options (``core.deployment.reader_codec``)."""
    shard_key: bytes = field(default=b"", repr=False)
    """The record's ``sk`` field: shard key values (``core.shard_key``), ``b""`` if none."""

    @property
    def failed_at(self) -> dt.datetime | None:
        if self.failed_at_ms is None:
            return None
        return dt.datetime.fromtimestamp(self.failed_at_ms / 1000, dt.UTC)

    def document(self) -> dict[str, Any] | None:
        """The record's document (for ``del``, just ``{_id}``), or None if undecodable."""
        try:
            return decode_document(self.body, self.codec)
        except Exception:
            return None

    def pending(self) -> Pending:
        """The record as the worker would write it, at its original version.

        Raises ``InvalidInput`` when the letter cannot be re-driven (``problem`` says why).
        """
        if self.problem is not None or self.version is None:
            raise InvalidInput(f"dead letter {self.id} cannot be re-driven: {self.problem}")
        document = self.document()
        assert document is not None
        record = ChangeRecord(
            self.source_id,
            self.version,
            self.op,  # type: ignore[arg-type]
            self.collection,
            self.body,
            self.shard_key,
        )
        return Pending(record, document, decode_values(self.shard_key, self.codec))

    def as_dict(self, *, with_document: bool = False) -> dict[str, Any]:
        """JSON-ready: ids and documents in relaxed Extended JSON."""
        out: dict[str, Any] = {
            "id": str(self.id),
            "partition": self.id.partition,
            "collection": self.collection,
            "document_id": to_json_value(self.doc_id),
            "version": None if self.version is None else str(self.version),
            "op": self.op,
            "error_kind": self.error_kind,
            "error_code": self.error_code,
            "error": self.error,
            "deliveries": self.deliveries,
            "failed_at": iso_time(self.failed_at),
            "failed_at_ms": self.failed_at_ms,
            "source_id": self.source_id,
            "consumer": self.consumer,
            "replayable": self.problem is None,
            "problem": self.problem,
        }
        if with_document:
            out["document"] = to_json_value(self.document())
        return out


def _int(fields: Mapping[bytes, bytes], name: bytes) -> int | None:
    try:
        return int(fields[name])
    except (KeyError, ValueError):
        return None


def decode_letter(
    partition: int,
    entry_id: bytes | str,
    fields: Mapping[bytes, bytes],
    codec: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS,
) -> DeadLetter:
    """Read one entry of a dead-letter stream."""
    eid = as_text(entry_id)
    collection, op = field_text(fields, b"c"), field_text(fields, b"op")
    source_id = field_text(fields, b"source_id")
    body = fields.get(b"d", b"")
    problems: list[str] = []
    # The original version; never the dead-letter entry's own id, which is newer
    # than the record and would let it overwrite newer data.
    version: Version | None = None
    original = field_text(fields, b"ov") or source_id
    try:
        version = Version.parse(original)
    except ValueError:
        problems.append(f"no original version (ov={original!r})")
    doc_id: Any = None
    try:
        document = decode_document(body, codec)
        doc_id = document["_id"]
        encode_id(doc_id)
    except KeyError:
        problems.append("the document has no _id")
    except Exception as exc:
        problems.append(f"the document is not decodable: {type(exc).__name__}: {exc}")
    if op not in ("set", "del"):
        problems.append(f"unknown op {op!r}")
    shard_key = fields.get(b"sk", b"")
    try:
        decode_values(shard_key, codec)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        validate_collection_name(collection)
    except ValueError as exc:
        problems.append(str(exc))
    return DeadLetter(
        id=LetterId(partition, eid),
        collection=collection,
        op=op,
        doc_id=doc_id,
        version=version,
        error_kind=field_text(fields, b"error_kind"),
        error_code=_int(fields, b"error_code"),
        error=field_text(fields, b"error"),
        deliveries=_int(fields, b"deliveries") or 0,
        failed_at_ms=_int(fields, b"failed_at_ms"),
        source_id=source_id,
        consumer=field_text(fields, b"consumer"),
        body=body,
        problem="; ".join(problems) or None,
        fields=dict(fields),
        codec=codec,
        shard_key=shard_key,
    )


def refailed_fields(
    letter: DeadLetter, error: ErrorInfo, *, now_ms: int, consumer: str
) -> list[bytes | str | int]:
    """The fields of a letter that failed again on re-drive: the new error, one more try.

    Everything else (the record, its original version, where it came from) is
    kept as it was, in the worker's field order.
    """
    failure = failure_fields(
        kind=error.kind.value,
        code=error.code,
        message=error.message,
        deliveries=letter.deliveries + 1,
        failed_at_ms=now_ms,
        consumer=consumer,
    )
    return updated_fields(letter.fields, failure)


def to_json_value(value: Any) -> Any:
    """A BSON value (ObjectId, UUID, datetime, Decimal128, ...) as relaxed Extended JSON."""
    if value is None or isinstance(value, str | int | float):
        return value
    return json.loads(json_util.dumps(value, json_options=JSON_OPTIONS))


def document_json(document: Any, *, indent: int | None = 2) -> str:
    return json_util.dumps(document, json_options=JSON_OPTIONS, indent=indent)


def format_doc_id(doc_id: Any) -> str:
    """How a document id prints for people: ``'u1'``, ``42``, ``ObjectId('...')``.

    ``repr`` keeps ``42`` and ``'42'`` apart, as writebehind does.
    """
    return "?" if doc_id is None else repr(doc_id)


def iso_time(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
