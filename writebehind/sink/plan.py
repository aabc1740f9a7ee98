"""Batch planning: decode, coalesce per document, fall back past poison (no IO)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson.codec_options import CodecOptions

from writebehind.core.codec import ChangeRecord, decode_record
from writebehind.core.errors import MalformedRecord
from writebehind.core.keys import encode_id
from writebehind.core.shard_key import decode_values
from writebehind.sink.guards import Pending


@dataclass(slots=True)
class DocumentWrites:
    """All records of one document in a batch, oldest first; the newest is the one to write.

    The older ones are coalesced away: the newest is a full snapshot, so writing
    it is exactly what writing them all in order would leave behind. If MongoDB
    refuses the newest for good, it is dead-lettered and the next newest is
    written instead, so the outcome does not depend on how records were batched.
    """

    collection: str
    key: str
    records: list[Pending] = field(default_factory=list)

    @property
    def newest(self) -> Pending:
        return self.records[-1]

    def entry_ids(self) -> list[str]:
        return [p.entry_id for p in self.records]

    def drop_newest(self) -> Pending:
        return self.records.pop()


@dataclass(frozen=True, slots=True)
class Malformed:
    entry_id: str
    fields: dict[bytes, bytes]
    reason: str


def decode_entries(
    entries: Iterable[tuple[bytes, dict[bytes, bytes]]], options: CodecOptions[Any]
) -> tuple[list[Pending], list[Malformed]]:
    pendings: list[Pending] = []
    malformed: list[Malformed] = []
    for entry_id, fields in entries:
        eid = entry_id.decode("ascii")
        try:
            record: ChangeRecord = decode_record(eid, fields)
            document = record.document(options)
            if "_id" not in document:
                raise MalformedRecord("record body has no _id")
            encode_id(document["_id"])
            shard = decode_values(record.shard_key, options)
        except Exception as exc:
            malformed.append(Malformed(eid, fields, f"{type(exc).__name__}: {exc}"))
            continue
        pendings.append(Pending(record, document, shard))
    return pendings, malformed


def coalesce(pendings: Sequence[Pending]) -> list[DocumentWrites]:
    """Group by document, each group's records in version order; first-seen order of groups."""
    groups: dict[tuple[str, str], DocumentWrites] = {}
    for pending in pendings:
        collection = pending.record.collection
        key = encode_id(pending.doc_id)
        group = groups.get((collection, key))
        if group is None:
            group = groups[(collection, key)] = DocumentWrites(collection, key)
        group.records.append(pending)
    for group in groups.values():
        group.records.sort(key=lambda p: p.version)
    return list(groups.values())
