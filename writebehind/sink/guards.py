"""Version-guarded MongoDB write models (no IO).

Every write replaces the whole document, but only if the stored version is
older than the incoming one; otherwise it leaves the stored document as it is.
So retries, redeliveries, zombie workers and replays can never roll a document
back, and applying the same record twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pymongo import DeleteOne, UpdateOne

from writebehind.core.codec import ChangeRecord
from writebehind.core.guarded import (
    PURGE_FIELD,
    STORED_VERSION,
    guarded_replace,
    newer_than_stored,
    snapshot,
    tombstone,
)
from writebehind.core.shard_key import ShardValues, shard_filter
from writebehind.core.version import Version

__all__ = [
    "PURGE_FIELD",
    "STORED_VERSION",
    "Pending",
    "guarded_write",
    "newer_than_stored",
    "snapshot",
    "tombstone",
]


@dataclass(slots=True)
class Pending:
    """A decoded change record on its way to MongoDB."""

    record: ChangeRecord
    document: dict[str, Any]
    shard: ShardValues = field(default_factory=dict)
    """The record's shard key values (``core.shard_key``); empty when it has none."""

    @property
    def doc_id(self) -> Any:
        return self.document["_id"]

    @property
    def version(self) -> Version:
        return self.record.version

    @property
    def entry_id(self) -> str:
        return self.record.entry_id


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
        return DeleteOne(
            {**shard_filter(pending.doc_id, pending.shard), "$expr": newer_than_stored(version)}
        )
    if pending.record.op == "del":
        new = tombstone(pending.doc_id, version, now + tombstone_grace, pending.shard)
    else:
        new = snapshot(pending.document, version)
    return guarded_replace(pending.doc_id, version, new, pending.shard)
