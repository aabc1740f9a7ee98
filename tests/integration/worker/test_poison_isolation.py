"""Records that cannot be written at all are isolated: the rest of their batch lands."""

from __future__ import annotations

from typing import Any

import bson
import pytest
from redis.asyncio import Redis

from tests.support.streams import drained, ids_in_partition, wait_dead_letters
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

# PyMongo leaves oversized documents to the server unless one cannot fit in a
# message at all (maxMessageSizeBytes, 48 MB): then it raises DocumentTooLarge
# before sending, naming no operation, and the worker must split the batch.
CLIENT_SIDE_TOO_LARGE = 48_000_000 + 100_000
# Over 16 MiB but small enough to send: the server refuses that one operation.
SERVER_SIDE_TOO_LARGE = 16 * 1024 * 1024 + 100_000


@pytest.mark.parametrize(
    ("size", "by_server"),
    [(CLIENT_SIDE_TOO_LARGE, False), (SERVER_SIDE_TOO_LARGE, True)],
    ids=["refused_by_driver", "refused_by_server"],
)
async def test_oversized_record_is_dead_lettered_and_the_rest_of_its_batch_lands(
    size: int, by_server: bool, wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    files = wb.collection("files")
    partition = wb.keys.partition_of("files", "huge")
    ids = ids_in_partition(wb.keys, "files", partition, 6)
    # The SDK refuses such a document, so put it straight into the stream, in
    # the middle of a batch of good records of the same partition.
    before = [await files.set(doc_id, {"n": i}) for i, doc_id in enumerate(ids[:3])]
    body = bson.encode({"_id": "huge", "blob": "x" * size})
    huge_id = await redis.xadd(wb.keys.stream(partition), {"op": "set", "c": "files", "d": body})
    after = [await files.set(doc_id, {"n": i}) for i, doc_id in enumerate(ids[3:], 3)]
    del body

    worker = await start_worker()
    for version in before + after:
        await files.wait_persisted(version, timeout=30)
    [letter] = await wait_dead_letters(redis, wb.keys, 1, timeout=30)
    await wait_until(lambda: drained(redis, wb.keys), message="nothing pending")

    assert letter["source_id"] == huge_id
    assert letter["error_kind"] == b"permanent"
    assert b"large" in letter["error"].lower()
    # A driver refusal has no server error code; a server one has.
    assert bool(letter["error_code"]) is by_server
    assert len(letter["d"]) > size
    assert await mongo_db["files"].find_one({"_id": "huge"}, {"_id": 1}) is None
    assert await mongo_db["files"].count_documents({}) == len(ids)
    assert worker.stats.dead_lettered == 1
    assert worker.stats.batches == 1

    # Nothing is stuck behind it.
    later = await files.set(ids[0], {"n": "later"})
    await files.wait_persisted(later, timeout=20)


async def test_malformed_records_are_dead_lettered_without_blocking(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    users = wb.collection("users")
    partition = wb.keys.partition_of("users", "u")
    stream = wb.keys.stream(partition)
    ids = ids_in_partition(wb.keys, "users", partition, 4)
    garbage = [
        {"hello": "world"},
        {"op": "set", "c": "users", "d": b"\x05\x00not bson at all"},
        {"op": "upsert", "c": "users", "d": bson.encode({"_id": "x"})},
        {"op": "set", "c": "users", "d": bson.encode({"no_id": True})},
        {"op": "set", "c": "users", "d": bson.encode({"_id": 1.5})},
        {"op": "set", "c": "users", "d": bson.encode({"_id": "x"}), "ov": "yesterday"},
        # Names the driver refuses before sending: once retried for ever, wedging the partition.
        {"op": "set", "c": "", "d": bson.encode({"_id": "x"})},
        {"op": "set", "c": "bad$name", "d": bson.encode({"_id": "x"})},
        {"op": "del", "c": "x\x00y", "d": bson.encode({"_id": "x"})},
    ]
    first = await users.set(ids[0], {"n": 0})
    bad_ids = [await redis.xadd(stream, fields) for fields in garbage]
    second = await users.set(ids[1], {"n": 1})

    worker = await start_worker()
    await users.wait_persisted(first, timeout=20)
    await users.wait_persisted(second, timeout=20)
    letters = await wait_dead_letters(redis, wb.keys, len(garbage), timeout=30)
    assert [letter["source_id"] for letter in letters] == bad_ids
    for letter in letters:
        assert letter["error"].startswith(b"malformed record"), letter["error"]
        assert letter["error_kind"] == b"permanent"

    # One more, while the worker runs: it is dead-lettered and later writes land.
    bad_ids.append(await redis.xadd(stream, {"op": "del"}))
    third = await users.set(ids[2], {"n": 2})
    await users.wait_persisted(third, timeout=20)
    letters = await wait_dead_letters(redis, wb.keys, len(bad_ids), timeout=30)
    assert [letter["source_id"] for letter in letters] == bad_ids
    await wait_until(lambda: drained(redis, wb.keys), message="nothing pending")
    assert worker.stats.dead_lettered == len(bad_ids)
    assert await mongo_db["users"].count_documents({}) == 3
