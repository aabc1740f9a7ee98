"""Loading documents from MongoDB for a fill: the user's view, the stored version, the body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

from writebehind.core.codec import META_FIELD, user_view
from writebehind.core.keys import encode_id
from writebehind.core.version import Version
from writebehind.sdk.reading.entry import absent_version


@dataclass(frozen=True, slots=True)
class Loaded:
    """What MongoDB held for one id: the user's view (``None``: absent or a tombstone),
    its version (``_wb.v``; 0-0 when MongoDB has no document), and the entry's body."""

    doc: dict[str, Any] | None
    version: Version
    body: bytes | None


async def load_documents(
    collection: Any, ids: list[Any], options: CodecOptions[Any]
) -> dict[Any, Loaded]:
    """One ``find`` with ``$in`` for all ``ids``; every id gets a ``Loaded``, keyed as given."""
    found: dict[str, Any] = {}
    async for raw in collection.find({"_id": {"$in": ids}}):
        found[encode_id(raw["_id"])] = raw  # Int64 ids key like ints
    loaded: dict[Any, Loaded] = {}
    for doc_id in ids:
        raw = found.get(encode_id(doc_id))
        meta = raw.get(META_FIELD) if raw is not None else None
        stored = Version.from_pair(meta["v"]) if isinstance(meta, Mapping) and "v" in meta else None
        doc = user_view(raw)
        body = None if doc is None else bson.encode(doc, codec_options=options)
        loaded[doc_id] = Loaded(doc, absent_version(stored), body)
    return loaded
