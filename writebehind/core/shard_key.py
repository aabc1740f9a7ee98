"""Shard keys of sharded MongoDB collections: which values a write carries (no IO).

On a sharded collection an upsert must name the full shard key with equality
in its filter, or MongoDB refuses it (MongoDB manual, "Sharded Cluster Query
Routing" and "db.collection.updateOne(): Upsert on a Sharded Collection").
The SDK is told a collection's shard key, takes its values from each document
and puts them in the change record (field ``sk``: the BSON of
``{field: value, ...}``), so the worker, replay and dead-letter re-drives add
them to every filter without configuration of their own that could drift.

Rules (docs/scaling.md, "Sharded collections"):

- Only top-level fields: a dotted (nested) shard key field is refused.
  ``_id`` in the key adds nothing (every filter names ``_id``).
- A document written to a sharded collection must have every shard key
  field (``MissingShardKey``); arrays are refused, as MongoDB refuses them
  in a shard key (manual, "Shard Keys": "cannot be an array").
- A document's shard key values are fixed for the life of its ``_id``:
  ``patch``/``modify`` may not change or drop them (``ShardKeyChanged``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

from writebehind.core.codec import META_FIELD, encoding_options, same_id
from writebehind.core.errors import (
    ConfigurationError,
    InvalidDocument,
    InvalidInput,
    MalformedRecord,
    MissingShardKey,
    NotEncodable,
    ShardKeyChanged,
)

ShardValues = dict[str, Any]
"""``{field: value}`` of a document's shard key, in the key's order, without ``_id``."""


def _field_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return f"a shard key field must be a non-empty str, not {name!r}"
    if name.startswith("$") or "\x00" in name:
        return f"{name!r} is not a field name"
    if "." in name:
        return f"{name!r}: nested (dotted) shard key fields are not supported (top-level only)"
    if name == META_FIELD:
        return f"{META_FIELD!r} is writebehind's metadata, not a shard key field"
    return None


@dataclass(frozen=True, slots=True)
class ShardKey:
    """A collection's shard key: the top-level fields every write's filter names."""

    fields: tuple[str, ...]

    @classmethod
    def parse(cls, spec: Any) -> ShardKey:
        """A shard key from ``"tenant"``, ``("tenant", "region")`` or ``{"tenant": 1, ...}``.

        The mapping form is ``sh.shardCollection``'s key document (values ``1``
        or ``"hashed"`` are ignored: a hashed key is filtered by value all the same).

        Raises ``ConfigurationError`` for an empty key, a repeated, dotted or
        reserved field, or anything else.
        """
        names: list[Any]
        if isinstance(spec, str):
            names = [spec]
        elif isinstance(spec, Mapping | list | tuple):
            names = list(spec)
        else:
            raise ConfigurationError(
                f"a shard key is a field name, a tuple of them or a key document: {spec!r}"
            )
        if not names:
            raise ConfigurationError("a shard key needs at least one field")
        for name in names:
            problem = _field_problem(name)
            if problem is not None:
                raise ConfigurationError(problem)
        if len(set(names)) != len(names):
            raise ConfigurationError(f"a shard key field is repeated: {names!r}")
        return cls(tuple(n for n in names if n != "_id"))

    def values(self, doc: Mapping[str, Any]) -> ShardValues:
        """The shard key values of a document about to be written.

        Raises:
            MissingShardKey: a field is absent (``path`` names it).
            InvalidDocument: a value is an array.
        """
        out: ShardValues = {}
        for name in self.fields:
            if name not in doc:
                raise MissingShardKey(
                    f"the document lacks shard key field {name!r}; a write to a sharded "
                    "collection must carry its whole shard key",
                    name,
                )
            out[name] = _value(doc[name], name)
        return out

    def given(self, values: Any) -> ShardValues:
        """``delete(doc_id, shard_key=...)``'s values: a mapping of exactly the key's fields.

        Raises ``InvalidInput`` for anything else (``MissingShardKey`` for an absent field).
        """
        if not isinstance(values, Mapping):
            raise InvalidInput(f"shard_key must be a mapping of field to value, not {values!r}")
        extra = sorted(str(k) for k in values if k not in self.fields and k != "_id")
        if extra:
            raise InvalidInput(f"shard_key names fields outside the key {self.fields}: {extra}")
        return self.values(values)

    def for_write(
        self, stored: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> ShardValues:
        """The values of a read-modify-write (``patch``/``modify``) from ``stored`` to ``new``.

        ``new`` ``None`` deletes: the stored document's values are used.

        Raises:
            MissingShardKey: ``new`` lacks a field, or a delete has no stored document
                to take the values from.
            ShardKeyChanged: ``new`` changes or drops a stored document's value.
        """
        if new is None:
            if stored is None:
                raise MissingShardKey(
                    "deleting a document that is not stored needs its shard key values: "
                    "use delete(doc_id, shard_key={...})"
                )
            return self.values(stored)
        if stored is not None:
            for name in self.fields:
                if name not in new and name in stored:
                    raise ShardKeyChanged(f"the write drops shard key field {name!r}")
                if name in new and (name not in stored or not same_id(stored[name], new[name])):
                    raise ShardKeyChanged(
                        f"the write changes shard key field {name!r} from "
                        f"{stored.get(name, '<absent>')!r} to {new[name]!r}; a document's shard "
                        "key is fixed: delete it and write a new one under another _id"
                    )
        return self.values(new)


def _value(value: Any, name: str) -> Any:
    if isinstance(value, list | tuple):
        raise InvalidDocument("a shard key value cannot be an array", name)
    return value


def encode_values(values: ShardValues, options: CodecOptions[Any] | None = None) -> bytes:
    """The record field ``sk``: BSON of the values; ``b""`` for none (an unsharded collection).

    Raises ``NotEncodable`` when a value has no BSON encoding.
    """
    if not values:
        return b""
    try:
        return bson.encode(values, codec_options=encoding_options(options))
    except Exception as exc:
        raise NotEncodable(f"shard key values are not BSON-encodable: {exc}") from exc


def decode_values(raw: bytes, options: CodecOptions[Any] | None = None) -> ShardValues:
    """A record's ``sk`` field back to values; ``{}`` for ``b""`` (records written before it).

    Checked, since the values go into MongoDB filters: a field that is not a
    plain top-level name (``$where``, ``a.b``) or an array would change what the
    filter means. Raises ``MalformedRecord``.
    """
    if not raw:
        return {}
    try:
        values: ShardValues = bson.decode(raw, codec_options=encoding_options(options))
    except Exception as exc:
        raise MalformedRecord(f"record field 'sk' is not BSON: {exc}") from None
    for name, value in values.items():
        problem = _field_problem(name) or ("'_id' is not a shard value" if name == "_id" else None)
        if problem is not None:
            raise MalformedRecord(f"record field 'sk': {problem}")
        if isinstance(value, list):
            raise MalformedRecord(f"record field 'sk': {name!r} is an array")
    return values


def shard_filter(doc_id: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"_id": doc_id, <shard key field>: value, ...}``: a filter that targets one shard."""
    return {"_id": doc_id, **values}


def parse_shard_keys(spec: Mapping[str, Any] | None) -> dict[str, ShardKey]:
    """``WriteBehind(shard_keys=...)``: ``{collection: shard key spec}`` parsed.

    Raises ``ConfigurationError`` for a non-mapping or a bad key (``ShardKey.parse``).
    """
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"shard_keys must map collection names to shard keys: {spec!r}")
    return {str(name): ShardKey.parse(key) for name, key in spec.items()}


def collection_shard_key(
    configured: Mapping[str, ShardKey], name: str, spec: Any
) -> ShardKey | None:
    """The shard key of collection ``name``: ``spec`` if given, else the configured one.

    Raises ``ConfigurationError`` when both are given and differ: two handles of
    one collection writing with different keys would target different shards.
    """
    known = configured.get(name)
    if spec is None:
        return known
    key = ShardKey.parse(spec)
    if known is not None and known != key:
        raise ConfigurationError(
            f"collection {name!r}: shard_key {key.fields} differs from shard_keys' {known.fields}"
        )
    return key


def stored_conflict(values: Mapping[str, Any], stored: Mapping[str, Any]) -> str | None:
    """Why a record with shard key ``values`` can never replace ``stored`` (same ``_id``), or None.

    A guarded upsert whose filter (``_id`` and these values) matches nothing
    inserts, and the insert collides with ``stored`` on ``_id``: a duplicate key
    error that retrying cannot cure, unlike two upserts racing to insert.
    """
    for name, value in values.items():
        if name not in stored or not same_id(stored[name], value):
            return (
                f"document {stored.get('_id')!r} is stored with shard key value "
                f"{name}={stored.get(name, '<absent>')!r}, the record has {value!r}: a shard "
                "key value cannot change (docs/scaling.md, 'Sharded collections')"
            )
    return None
