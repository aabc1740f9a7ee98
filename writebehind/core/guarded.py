"""Version-guarded MongoDB write models, shared by the worker's sink and write-through (no IO).

A guarded write replaces the whole document only if the stored version is
older than the incoming one, and otherwise leaves it as it is, so a retried,
redelivered, replayed or written-through record can never roll a document
back. ``sink/guards.py`` builds the worker's models from these.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import UpdateOne

from writebehind.core.codec import META_FIELD
from writebehind.core.version import Version

STORED_VERSION = f"${META_FIELD}.v"
PURGE_FIELD = f"{META_FIELD}.purge_at"
"""Tombstones carry ``_wb.purge_at``; a TTL index on it removes them after the grace period."""

DEFAULT_TOMBSTONE_GRACE = dt.timedelta(days=7)
"""The worker's default ``--tombstone-grace`` (604800 s)."""


def newer_than_stored(version: Version) -> dict[str, Any]:
    """``stored _wb.v < version``, as integer pairs; documents without one are oldest."""
    return {"$lt": [{"$ifNull": [STORED_VERSION, [-1, -1]]}, version.as_pair()]}


def tombstone(doc_id: Any, version: Version, purge_at: dt.datetime) -> dict[str, Any]:
    return {
        "_id": doc_id,
        META_FIELD: {"v": version.as_pair(), "deleted": True, "purge_at": purge_at},
    }


def snapshot(document: dict[str, Any], version: Version) -> dict[str, Any]:
    return {**document, META_FIELD: {"v": version.as_pair()}}


def guarded_replace(doc_id: Any, version: Version, new: dict[str, Any]) -> UpdateOne:
    """Upsert ``new`` (a snapshot or tombstone) unless MongoDB holds ``version`` or newer."""
    # $literal: a user's string "$x" must stay a string, not become a field path.
    pipeline = [
        {"$replaceWith": {"$cond": [newer_than_stored(version), {"$literal": new}, "$$ROOT"]}}
    ]
    return UpdateOne({"_id": doc_id}, pipeline, upsert=True)
