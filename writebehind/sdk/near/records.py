"""What a stream record means to a near cache (no IO).

Two kinds of stream are followed, both per partition and in the partition's
hash slot:

- the change stream (``{p:pN}:stream``): every SDK write, ``op``/``c``/``d``
  fields (core/scripts.py, WRITE); its entry id is the write's version;
- the invalidation stream (``{p:pN}:inval``): evictions made for changes
  written to MongoDB directly (the invalidator) and for dead letters (the
  scripts that write a letter: the refused write may be held here), fields
  ``c`` (collection) and ``i`` (the encoded id, or ``*``: the whole collection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from writebehind.core.keys import encode_id
from writebehind.core.replies import as_text
from writebehind.core.version import Version

WHOLE_COLLECTION = "*"

_RAW = CodecOptions(document_class=RawBSONDocument, uuid_representation=UuidRepresentation.STANDARD)
"""Records store UUIDs in the standard form (core/codec.py, ``encoding_options``)."""


@dataclass(frozen=True, slots=True)
class Eviction:
    """One record's effect: evict ``key`` of ``collection`` (older than ``version``, if any).

    ``key`` is ``WHOLE_COLLECTION`` for a flush; ``version`` is ``None`` for an
    invalidation (which evicts whatever version is held).
    """

    collection: str
    key: str
    version: Version | None


def collection_of(fields: Mapping[Any, Any]) -> str | None:
    value = fields.get(b"c", fields.get("c"))
    return None if value is None else as_text(value, errors="replace")


def from_change(entry_id: Any, fields: Mapping[Any, Any]) -> Eviction | None:
    """A change-stream record (an SDK write); ``None`` if it is not one we can read."""
    collection = collection_of(fields)
    body = fields.get(b"d", fields.get("d"))
    if collection is None or body is None:
        return None
    try:
        key = encode_id(RawBSONDocument(bytes(body), codec_options=_RAW)["_id"])
    except Exception:  # not BSON, no _id, or an id type we never write: not ours to read
        return None
    return Eviction(collection, key, Version.parse(entry_id))


def from_invalidation(fields: Mapping[Any, Any]) -> Eviction | None:
    """An invalidation-stream record (a direct MongoDB write, or a flush)."""
    collection = collection_of(fields)
    key = fields.get(b"i", fields.get("i"))
    if collection is None or key is None:
        return None
    return Eviction(collection, as_text(key, errors="replace"), None)
