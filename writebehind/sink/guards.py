"""Version-guarded MongoDB write models (no IO).

Every write replaces the whole document, but only if the stored version is
older than the incoming one; otherwise it leaves the stored document as it is.
So retries, redeliveries, zombie workers and replays can never roll a document
back, and applying the same record twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import DeleteOne, UpdateOne

from writebehind.core.codec import META_FIELD, ChangeRecord
from writebehind.core.version import Version

STORED_VERSION = f"${META_FIELD}.v"
PURGE_FIELD = f"{META_FIELD}.purge_at"
"""Tombstones carry ``_wb.purge_at``; a TTL index on it removes them after the grace period."""


@dataclass(slots=True)
class Pending:
    """A decoded change record on its way to MongoDB."""

    record: ChangeRecord
    document: dict[str, Any]

    @property
    def doc_id(self) -> Any:
        return self.document["_id"]

    @property
    def version(self) -> Version:
        return self.record.version

    @property
    def entry_id(self) -> str:
        return self.record.entry_id


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


def guarded_write(
    pending: Pending,
    *,
    now: dt.datetime,
    tombstone_grace: dt.timedelta,
    hard_deletes: bool = False,
) -> UpdateOne | DeleteOne:
    version = pending.version
    if pending.record.op == "del" and hard_deletes:
        # No tombstone: an older record replayed later would recreate the
        # document. The trade-off is documented in docs/architecture.md.
        return DeleteOne({"_id": pending.doc_id, "$expr": newer_than_stored(version)})
    if pending.record.op == "del":
        new = tombstone(pending.doc_id, version, now + tombstone_grace)
    else:
        new = snapshot(pending.document, version)
    # $literal: a user's string "$x" must stay a string, not become a field path.
    pipeline = [
        {"$replaceWith": {"$cond": [newer_than_stored(version), {"$literal": new}, "$$ROOT"]}}
    ]
    return UpdateOne({"_id": pending.doc_id}, pipeline, upsert=True)
