"""What producers were told, and checks that Redis and MongoDB agree with it.

A ``Ledger`` keeps every version a write returned (those writes are
acknowledged, so none may be lost) and the newest version and contents of
each document. The checks read the consumer group and MongoDB and compare.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import anyio
from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind.core.keys import KeySpace
from writebehind.core.version import Version
from writebehind.sdk.collection import Collection

GROUP = "writebehind"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Ledger:
    """Acknowledged writes of one collection: all versions, and the newest per document."""

    keys: KeySpace
    collection: str = "docs"
    latest: dict[str, tuple[Version, dict[str, Any]]] = field(default_factory=dict)
    owner: dict[tuple[int, str], str] = field(default_factory=dict)
    """(partition, stream entry id) of every acknowledged write -> its document id.

    Entry ids are unique per stream only: two partitions can both have ``5-0``.
    """
    serial: int = 0

    def record(self, doc_id: str, doc: dict[str, Any], version: Version) -> None:
        self.owner[(self.partition_of(doc_id), str(version))] = doc_id
        current = self.latest.get(doc_id)
        if current is None or version > current[0]:
            self.latest[doc_id] = (version, doc)

    def next_doc(self, doc_index: int) -> tuple[str, dict[str, Any]]:
        self.serial += 1
        return f"doc-{doc_index:04d}", {"n": self.serial, "doc": doc_index, "pad": "x" * 40}

    async def write_many(self, coll: Collection, doc_indexes: list[int]) -> None:
        items = [self.next_doc(i) for i in doc_indexes]
        versions = await coll.set_many(items)
        for (doc_id, doc), version in zip(items, versions, strict=True):
            self.record(doc_id, doc, version)

    async def backlog(self, coll: Collection, *, writes: int, docs: int, chunk: int = 100) -> None:
        """``writes`` acknowledged writes spread round-robin over ``docs`` documents."""
        for start in range(0, writes, chunk):
            end = min(writes, start + chunk)
            await self.write_many(coll, [i % docs for i in range(start, end)])

    async def produce(
        self,
        coll: Collection,
        stop: anyio.Event,
        *,
        docs: int,
        chunk: int = 10,
        pause: float = 0.02,
        seed: int = 7,
    ) -> None:
        """Keep writing random documents until ``stop`` is set (load, not synchronisation)."""
        rng = random.Random(seed)
        while not stop.is_set():
            await self.write_many(coll, [rng.randrange(docs) for _ in range(chunk)])
            await anyio.sleep(pause)

    def partition_of(self, doc_id: str) -> int:
        return self.keys.partition_of(self.collection, doc_id)


# -- the consumer group ----------------------------------------------------------


@dataclass
class GroupView:
    """One partition's group state, read from Redis."""

    stream_ids: list[str]
    last_delivered: Version
    last_generated: Version | None
    pending: dict[str, str]
    """Pending entry id -> consumer holding it."""

    def is_acked(self, entry_id: str) -> bool:
        return Version.parse(entry_id) <= self.last_delivered and entry_id not in self.pending


async def group_view(redis: Redis, keys: KeySpace, partition: int) -> GroupView:
    stream = keys.stream(partition)
    ids = [_text(eid) for eid, _ in await redis.xrange(stream) or []]
    groups = await redis.xinfo_groups(stream)
    group = next(g for g in groups if _text(g["name"]) == GROUP)
    rows = await redis.xpending_range(stream, GROUP, "-", "+", 1_000_000)
    info = await redis.xinfo_stream(stream)
    return GroupView(
        stream_ids=ids,
        last_delivered=Version.parse(_text(group["last-delivered-id"])),
        last_generated=Version.parse(_text(info["last-generated-id"])),
        pending={_text(r["message_id"]): _text(r["consumer"]) for r in rows},
    )


async def group_views(redis: Redis, keys: KeySpace) -> list[GroupView]:
    return [await group_view(redis, keys, p) for p in range(keys.partitions)]


async def pending_counts(redis: Redis, keys: KeySpace) -> list[int]:
    """XPENDING summary count of each partition stream."""
    counts = []
    for stream in keys.streams():
        summary = await redis.xpending(stream, GROUP)
        counts.append(int(summary["pending"]))
    return counts


async def consumer_pending(redis: Redis, keys: KeySpace, consumer: str) -> int:
    total = 0
    for stream in keys.streams():
        summary = await redis.xpending(stream, GROUP)
        for row in summary.get("consumers") or []:
            if _text(row["name"]) == consumer:
                total += int(row["pending"])
    return total


async def acked_count(redis: Redis, keys: KeySpace) -> int:
    """Entries the group has acknowledged so far (read minus pending; nothing is trimmed)."""
    total = 0
    for stream in keys.streams():
        if not await redis.exists(stream):
            continue
        for g in await redis.xinfo_groups(stream):
            if _text(g["name"]) == GROUP:
                total += int(g.get("entries-read") or 0) - int(g["pending"])
    return total


async def dead_letter_counts(redis: Redis, keys: KeySpace) -> list[int]:
    return [int(await redis.xlen(keys.dead_letters(p))) for p in range(keys.partitions)]


async def group_settled(redis: Redis, keys: KeySpace) -> bool:
    """Everything delivered and nothing pending, on every partition."""
    for view in await group_views(redis, keys):
        if view.pending or view.last_delivered != view.last_generated:
            return False
    return True


# -- MongoDB ---------------------------------------------------------------------


async def stored_versions(db: Any, collection: str) -> dict[str, tuple[Version, dict[str, Any]]]:
    found: dict[str, tuple[Version, dict[str, Any]]] = {}
    async for doc in db[collection].find({}):
        found[doc["_id"]] = (Version.from_pair(doc["_wb"]["v"]), doc)
    return found


def _behind(ledger: Ledger, stored: dict[str, tuple[Version, dict[str, Any]]]) -> list[str]:
    return sorted(
        doc_id
        for doc_id, (version, _) in ledger.latest.items()
        if doc_id not in stored or stored[doc_id][0] != version
    )


async def wait_all_landed(db: Any, ledger: Ledger, *, within: float = 60.0) -> None:
    """Every document in MongoDB at exactly its newest acknowledged version, with its contents."""

    async def probe() -> bool:
        return not _behind(ledger, await stored_versions(db, ledger.collection))

    try:
        await wait_until(probe, timeout=within, interval=0.1, message="every newest version")
    except AssertionError:
        stored = await stored_versions(db, ledger.collection)
        behind = _behind(ledger, stored)
        sample = [(d, str(ledger.latest[d][0]), str(stored.get(d, ("absent",))[0])) for d in behind]
        raise AssertionError(
            f"{len(behind)} of {len(ledger.latest)} documents not at their newest version "
            f"after {within}s (doc, expected, stored): {sample[:5]}"
        ) from None
    stored = await stored_versions(db, ledger.collection)
    assert len(stored) == len(ledger.latest)
    for doc_id, (version, doc) in ledger.latest.items():
        assert stored[doc_id][1] == {**doc, "_id": doc_id, "_wb": {"v": version.as_pair()}}


async def wait_settled(redis: Redis, keys: KeySpace, *, within: float = 30.0) -> None:
    await wait_until(
        lambda: group_settled(redis, keys), timeout=within, message="nothing pending or unread"
    )
    assert await pending_counts(redis, keys) == [0] * keys.partitions


async def check_acked_are_persisted(redis: Redis, db: Any, ledger: Ledger) -> dict[str, int]:
    """Invariant 9: nothing is acknowledged that MongoDB does not hold; and nothing is gone.

    Redis is read before MongoDB: an entry acknowledged when Redis was read was
    in MongoDB before that, and stored versions only grow, so a worker still
    running cannot make this check fail spuriously. Returns how many of the
    ledger's entries are acked, pending and undelivered.
    """
    views = await group_views(redis, ledger.keys)
    stored = await stored_versions(db, ledger.collection)
    counts = {"acked": 0, "pending": 0, "undelivered": 0}
    in_stream = [set(view.stream_ids) for view in views]
    for (partition, entry_id), doc_id in ledger.owner.items():
        view = views[partition]
        # Nothing trimmed or deleted: an unacked record is still there to deliver.
        assert entry_id in in_stream[partition], f"entry {entry_id} of {doc_id} left the stream"
        version = Version.parse(entry_id)
        if view.is_acked(entry_id):
            counts["acked"] += 1
            assert doc_id in stored, f"{doc_id}: entry {entry_id} acked, but not in MongoDB"
            assert stored[doc_id][0] >= version, (
                f"{doc_id}: entry {entry_id} acked, MongoDB holds only {stored[doc_id][0]}"
            )
        elif entry_id in view.pending:
            counts["pending"] += 1
        else:
            assert version > view.last_delivered
            counts["undelivered"] += 1
    return counts


Entry = tuple[int, str]
"""(partition, stream entry id)."""


def entries_since(ledger: Ledger, mark: int) -> list[Entry]:
    """Entries recorded after the ledger held ``mark`` of them (dicts keep insertion order)."""
    return list(ledger.owner)[mark:]


async def acked_among(redis: Redis, ledger: Ledger, entries: list[Entry]) -> list[Entry]:
    """Those of ``entries`` that the group has acknowledged."""
    views = await group_views(redis, ledger.keys)
    return [(p, e) for p, e in entries if views[p].is_acked(e)]
