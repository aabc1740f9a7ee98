"""Loading documents from MongoDB for a fill: the user's view, the stored version, the body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import bson
from bson.codec_options import CodecOptions

from writebehind.core.codec import META_FIELD, user_view
from writebehind.core.errors import DatabaseUnavailable
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


T = TypeVar("T")


async def within(call: Awaitable[T], seconds: float, what: str) -> T:
    """``await call``, or ``DatabaseUnavailable`` after ``seconds``.

    ``asyncio.wait_for`` cancels the PyMongo call exactly once (a cancel
    repeated every loop turn breaks PyMongo's server selection: sink/bulk.py).
    """
    try:
        return await asyncio.wait_for(call, seconds)
    except TimeoutError as exc:
        raise DatabaseUnavailable(f"MongoDB did not answer {what} within {seconds:g} s") from exc


async def load_documents(
    collection: Any, ids: list[Any], options: CodecOptions[Any], seconds: float
) -> dict[Any, Loaded]:
    """One ``find`` with ``$in`` for all ``ids``; every id gets a ``Loaded``, keyed as given.

    Raises ``DatabaseUnavailable`` when MongoDB has not answered in ``seconds``.
    """
    what = f"a read of {len(ids)} document{'s' if len(ids) != 1 else ''}"
    return await within(_load(collection, ids, options), seconds, what)


async def _load(collection: Any, ids: list[Any], options: CodecOptions[Any]) -> dict[Any, Loaded]:
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
