"""Version-guarded MongoDB write models, shared by the worker's sink and write-through (no IO).

A guarded write replaces the whole document only if the stored version is
older than the incoming one, and otherwise leaves it as it is, so a retried,
redelivered, replayed or written-through record can never roll a document
back. ``sink/guards.py`` builds the worker's models from these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne

from writebehind.core.codec import META_FIELD
from writebehind.core.shard_key import shard_filter
from writebehind.core.version import Version

STORED_VERSION = f"${META_FIELD}.v"
PURGE_FIELD = f"{META_FIELD}.purge_at"
"""Tombstones carry ``_wb.purge_at``; a TTL index on it removes them after the grace period."""

DEFAULT_TOMBSTONE_GRACE = dt.timedelta(days=7)
"""The worker's default ``--tombstone-grace`` (604800 s)."""


def newer_than_stored(version: Version) -> dict[str, Any]:
    """``stored _wb.v < version``, as integer pairs; documents without one are oldest."""
    return {"$lt": [{"$ifNull": [STORED_VERSION, [-1, -1]]}, version.as_pair()]}


_UNSHARDED: Mapping[str, Any] = {}


def tombstone(
    doc_id: Any, version: Version, purge_at: dt.datetime, shard: Mapping[str, Any] = _UNSHARDED
) -> dict[str, Any]:
    """A deleted document's stand-in; it keeps the shard key values (``core.shard_key``),
    since dropping them would change the document's shard key."""
    return {
        "_id": doc_id,
        **shard,
        META_FIELD: {"v": version.as_pair(), "deleted": True, "purge_at": purge_at},
    }


def snapshot(document: dict[str, Any], version: Version) -> dict[str, Any]:
    return {**document, META_FIELD: {"v": version.as_pair()}}


def guarded_replace(
    doc_id: Any, version: Version, new: dict[str, Any], shard: Mapping[str, Any] = _UNSHARDED
) -> UpdateOne:
    """Upsert ``new`` (a snapshot or tombstone) unless MongoDB holds ``version`` or newer.

    ``shard``: the shard key values of a sharded collection, added to the filter
    so the upsert targets one shard (``core.shard_key``).
    """
    # $literal: a user's string "$x" must stay a string, not become a field path.
    pipeline = [
        {"$replaceWith": {"$cond": [newer_than_stored(version), {"$literal": new}, "$$ROOT"]}}
    ]
    return UpdateOne(shard_filter(doc_id, shard), pipeline, upsert=True)
