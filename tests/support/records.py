"""Decoded change records for unit tests of the batch logic (no servers)."""

from __future__ import annotations

from typing import Any

import bson

from writebehind.core.codec import ChangeRecord, Op
from writebehind.core.version import Version
from writebehind.sink.guards import Pending


def decoded(
    entry_id: str, doc_id: Any = "a", *, op: Op = "set", collection: str = "users", **fields: Any
) -> Pending:
    """The record at stream id ``entry_id`` (also its version) for document ``doc_id``."""
    document = {"_id": doc_id, **fields}
    record = ChangeRecord(entry_id, Version.parse(entry_id), op, collection, bson.encode(document))
    return Pending(record, document)
