"""Checking and encoding documents, change records and cache entries (no IO).

Everything here runs before anything reaches Redis, so a document that could
never be stored in MongoDB is refused with a typed error and nothing half-done.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import InvalidDocument as BsonInvalidDocument

from writebehind.core.errors import (
    ConfigurationError,
    DocumentTooLarge,
    IdMismatch,
    IntegerOutOfRange,
    InvalidCollectionName,
    InvalidDocument,
    InvalidFieldName,
    NotDecodable,
    NotEncodable,
)
from writebehind.core.errors import MalformedRecord as MalformedRecord  # re-exported
from writebehind.core.keys import encode_id, validate_collection_name
from writebehind.core.replies import as_text
from writebehind.core.version import Version

META_FIELD = "_wb"
MAX_BSON_SIZE = 16 * 1024 * 1024
# Room for the ``_wb`` metadata the worker adds: {v: [int64, int64], deleted: bool}.
_META_ALLOWANCE = 64
MAX_DOCUMENT_SIZE = MAX_BSON_SIZE - _META_ALLOWANCE
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 100

DEFAULT_CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.STANDARD
)

Op = Literal["set", "del"]


def encoding_options(options: CodecOptions[Any] | None) -> CodecOptions[Any]:
    """Codec options for encoding records: the caller's, but with UUIDs storable.

    A database handed in with pymongo's default ``UNSPECIFIED`` representation
    cannot encode ``uuid.UUID`` at all; records use the standard (subtype 4) form.
    """
    if options is None:
        return DEFAULT_CODEC_OPTIONS
    if options.uuid_representation == UuidRepresentation.UNSPECIFIED:
        return options.with_options(uuid_representation=UuidRepresentation.STANDARD)
    return options


_UUID_NAMES = {
    getattr(UuidRepresentation, name): name.lower()
    for name in ("STANDARD", "PYTHON_LEGACY", "JAVA_LEGACY", "CSHARP_LEGACY", "UNSPECIFIED")
}


def codec_text(options: CodecOptions[Any] | None) -> str:
    """The codec options every reader of records must share, as one canonical line.

    ``uuid=standard tz_aware=false tzinfo=utc datetime=datetime``: the UUID
    representation, tz-awareness and time zone, and datetime conversion of
    ``bson.codec_options.CodecOptions`` (pymongo docs, "codec_options"), after
    ``encoding_options``. Recorded in Redis, so producers that disagree are refused.
    """
    o = encoding_options(options)
    tz = str(o.tzinfo) if o.tz_aware and o.tzinfo is not None else "utc"
    conversion = DatetimeConversion(
        o.datetime_conversion or DatetimeConversion.DATETIME
    ).name.lower()
    return (
        f"uuid={_UUID_NAMES.get(o.uuid_representation, o.uuid_representation)} "
        f"tz_aware={str(o.tz_aware).lower()} tzinfo={tz} datetime={conversion}"
    )


def parse_codec_text(text: str) -> CodecOptions[Any]:
    """The ``CodecOptions`` of a ``codec_text`` line; ``ConfigurationError`` if unreadable."""
    try:
        fields = dict(part.split("=", 1) for part in text.split())
        uuid_names = {name: value for value, name in _UUID_NAMES.items()}
        tz_aware = fields["tz_aware"] == "true"
        tzinfo = None
        if tz_aware and fields["tzinfo"] != "utc":
            tzinfo = zoneinfo.ZoneInfo(fields["tzinfo"])
        return CodecOptions(
            tz_aware=tz_aware,
            uuid_representation=uuid_names[fields["uuid"]],
            tzinfo=tzinfo,
            datetime_conversion=DatetimeConversion[fields["datetime"].upper()],
        )
    except (KeyError, ValueError, LookupError) as exc:
        raise ConfigurationError(f"unreadable codec options recorded in Redis: {text!r}") from exc


def _id_key(value: Any) -> tuple[type, Any]:
    # bson.Int64 (what MongoDB returns for large ints) is the same id as the int.
    if isinstance(value, int) and not isinstance(value, bool):
        return int, int(value)
    return type(value), value


def same_id(a: Any, b: Any) -> bool:
    """Ids match only with the same type: ``42`` is not ``"42"``, ``42.0`` or ``True``."""
    return bool(_id_key(a) == _id_key(b))


def _check_value(value: Any, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidDocument(f"nesting deeper than {_MAX_DEPTH} levels", path)
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise IntegerOutOfRange(f"integer {value} does not fit in int64", path)
    elif isinstance(value, Mapping):
        _check_fields(value, path, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{path}.{i}", depth + 1)


def _check_fields(doc: Mapping[Any, Any], path: str, depth: int) -> None:
    for key, value in doc.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str):
            raise InvalidFieldName(f"field names must be str, not {type(key).__name__}", where)
        if key.startswith("$"):
            raise InvalidFieldName("field names may not start with '$'", where)
        if "." in key:
            raise InvalidFieldName("field names may not contain '.'", where)
        if "\x00" in key:
            raise InvalidFieldName("field names may not contain NUL", where)
        _check_value(value, where, depth)


# Values that need no check of their own (the exact types: a subclass takes the full check).
_PLAIN = frozenset({str, float, bytes, bool, type(None)})


def _fields_ok(doc: Mapping[Any, Any], depth: int) -> bool:
    """A quick pass of ``_check_fields``: ``True`` only if it would pass.

    No paths are built (they are only for errors): a ``False`` sends the
    document through ``_check_fields``, which names the first bad field. It may
    say ``False`` where ``_check_fields`` passes (a ``str`` subclass as a key).
    """
    if depth > _MAX_DEPTH:
        return False
    for key, value in doc.items():
        if type(key) is not str or "." in key or "\x00" in key or key[:1] == "$":
            return False
        kind = type(value)
        if kind in _PLAIN:
            continue
        if kind is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                return False
        elif kind is dict:
            if not _fields_ok(value, depth + 1):
                return False
        elif kind is list:
            if not _items_ok(value, depth + 1):
                return False
        elif isinstance(value, Mapping | list | tuple | int):
            return False  # subclasses and tuples: the full check decides
    return True


def _items_ok(items: list[Any], depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    for value in items:
        kind = type(value)
        if kind in _PLAIN:
            continue
        if kind is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                return False
        elif kind is dict:
            if not _fields_ok(value, depth + 1):
                return False
        elif kind is list:
            if not _items_ok(value, depth + 1):
                return False
        elif isinstance(value, Mapping | list | tuple | int):
            return False
    return True


def encode_document(doc_id: Any, doc: Any, options: CodecOptions[Any] | None = None) -> bytes:
    """Check ``doc`` and return its BSON with ``_id`` first.

    Raises:
        UnsupportedIdType: ``doc_id`` is not a document id.
        InvalidDocument: ``doc`` is not a mapping, or not storable (``InvalidFieldName``,
            ``IntegerOutOfRange``, ``NotEncodable``, ``DocumentTooLarge``).
        IdMismatch: ``doc["_id"]`` differs from ``doc_id``.
    """
    encode_id(doc_id)
    if not isinstance(doc, Mapping):
        raise InvalidDocument(f"a document must be a mapping, not {type(doc).__name__}")
    if "_id" in doc and not same_id(doc["_id"], doc_id):
        raise IdMismatch(f"document _id {doc['_id']!r} differs from the id argument {doc_id!r}")
    if META_FIELD in doc:
        raise InvalidFieldName(f"{META_FIELD!r} is reserved for writebehind's metadata")
    if not _fields_ok(doc, 0):
        _check_fields(doc, "", 0)
    # ``_id`` first, with the id argument's value (an equal ``bson.Int64`` in the
    # document would encode as another BSON type).
    full: dict[str, Any] = {"_id": doc_id, **doc}
    full["_id"] = doc_id
    codec = encoding_options(options)
    try:
        raw = bson.encode(full, codec_options=codec)
    except (BsonInvalidDocument, TypeError, OverflowError, ValueError) as exc:
        raise NotEncodable(f"document is not BSON-encodable: {exc}") from exc
    try:
        # The worker decodes it under the same options: what it cannot read would be
        # acknowledged here and dead-lettered there.
        bson.decode(raw, codec_options=codec)
    except Exception as exc:
        raise NotDecodable(
            f"document encodes, but cannot be read back under the deployment's codec options "
            f"({codec_text(options)}): {exc}"
        ) from exc
    if len(raw) > MAX_DOCUMENT_SIZE:
        raise DocumentTooLarge(
            f"document encodes to {len(raw)} bytes; the limit is {MAX_DOCUMENT_SIZE} "
            "(16 MiB less room for writebehind's metadata)"
        )
    return raw


def encode_id_document(doc_id: Any, options: CodecOptions[Any] | None = None) -> bytes:
    """The body of a tombstone record: just the ``_id``."""
    encode_id(doc_id)
    return bson.encode({"_id": doc_id}, codec_options=encoding_options(options))


def decode_document(raw: bytes, options: CodecOptions[Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = bson.decode(raw, codec_options=encoding_options(options))
    return doc


def user_view(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A MongoDB document as the application sees it: no metadata, tombstones absent."""
    if doc is None:
        return None
    meta = doc.get(META_FIELD)
    if isinstance(meta, Mapping) and meta.get("deleted"):
        return None
    return {k: v for k, v in doc.items() if k != META_FIELD}


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One decoded stream entry: a full snapshot (``set``) or a tombstone (``del``).

    ``version`` is the original version: the entry id, unless the record was
    re-added by replay or a dead-letter re-drive, which keep the version it had.
    ``shard_key`` is the raw ``sk`` field (``core.shard_key``): ``b""`` when the
    collection is not sharded or the record predates the field.
    """

    entry_id: str
    version: Version
    op: Op
    collection: str
    body: bytes
    shard_key: bytes = b""

    def document(self, options: CodecOptions[Any] | None = None) -> dict[str, Any]:
        return decode_document(self.body, options)


def _text(fields: Mapping[bytes, bytes], name: bytes) -> str:
    try:
        return fields[name].decode("utf-8")
    except KeyError:
        raise MalformedRecord(f"record has no {name.decode()!r} field") from None
    except UnicodeDecodeError:
        raise MalformedRecord(f"record field {name.decode()!r} is not UTF-8") from None


def decode_record(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> ChangeRecord:
    """Decode the fields XADDed by the write script (``op``, ``c``, ``d``, optional ``ov``, ``sk``).

    Raises ``MalformedRecord`` for an entry that is not a writebehind record.
    """
    eid = as_text(entry_id)
    op = _text(fields, b"op")
    if op not in ("set", "del"):
        raise MalformedRecord(f"unknown op {op!r}")
    body = fields.get(b"d")
    if body is None:
        raise MalformedRecord("record has no 'd' field")
    original = fields.get(b"ov")
    try:
        version = Version.parse(original if original is not None else eid)
    except ValueError as exc:
        raise MalformedRecord(str(exc)) from None
    collection = _text(fields, b"c")
    try:
        # The SDK checks names before writing; a record added past it with a name
        # MongoDB refuses client-side would otherwise be retried for ever.
        validate_collection_name(collection)
    except InvalidCollectionName as exc:
        raise MalformedRecord(str(exc)) from None
    shard_key = fields.get(b"sk", b"")
    return ChangeRecord(eid, version, op, collection, body, shard_key)  # type: ignore[arg-type]
