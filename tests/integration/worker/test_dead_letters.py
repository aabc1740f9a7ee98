"""Records MongoDB refuses for good go to the dead-letter stream; everything else flows on."""

from __future__ import annotations

from typing import Any

import bson
import pytest
from redis.asyncio import Redis

from tests.support.config import fast_settings
from tests.support.streams import (
    cache_key,
    dead_letters,
    drained,
    ids_in_partition,
    stored_version,
    wait_dead_letters,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.worker.counters import WorkerCounters
from writebehind.worker.stream import LetterToMove, PartitionStreams

pytestmark = pytest.mark.anyio

REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}


async def test_validator_failure_is_dead_lettered_and_its_batch_lands(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    partition = 1
    ids = ids_in_partition(wb.keys, "people", partition, 7)
    bad_id = ids[3]
    # All written before the worker starts: one partition, so one batch.
    good = {}
    for doc_id in ids:
        if doc_id == bad_id:
            bad_version = await people.set(doc_id, {"nickname": "no name"})
        else:
            good[doc_id] = await people.set(doc_id, {"name": doc_id.upper()})

    worker = await start_worker()
    for version in good.values():
        await people.wait_persisted(version, timeout=20)
    [letter] = await wait_dead_letters(redis, wb.keys, 1)

    assert letter["error_code"] == b"121"
    assert letter["error_kind"] == b"permanent"
    assert letter["op"] == b"set"
    assert letter["c"] == b"people"
    assert letter["source_id"] == letter["ov"] == str(bad_version).encode()
    assert letter["partition"] == str(partition).encode()
    assert letter["consumer"] == worker.settings.consumer.encode()
    assert letter["error"]
    assert int(letter["failed_at_ms"]) > 0
    assert bson.decode(letter["d"]) == {"_id": bad_id, "nickname": "no name"}
    assert worker.stats.batches == 1
    assert worker.stats.dead_lettered == 1

    # The refused version's cache entry is gone: reads show what MongoDB holds.
    assert await mongo_db["people"].find_one({"_id": bad_id}) is None
    assert await redis.exists(cache_key(wb.keys, "people", bad_id)) == 0
    assert await people.get(bad_id) is None
    await wait_until(lambda: drained(redis, wb.keys), message="nothing pending")

    # The worker is still running and persisting.
    fixed = await people.set(bad_id, {"name": "Fixed"})
    later = await people.set(ids[0], {"name": "Later"})
    await people.wait_persisted(fixed, timeout=20)
    await people.wait_persisted(later, timeout=20)
    assert await people.get(bad_id) == {"_id": bad_id, "name": "Fixed"}
    assert len(await dead_letters(redis, wb.keys)) == 1


async def test_secondary_unique_index_duplicate_is_dead_lettered(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    accounts = mongo_db["accounts"]
    await accounts.create_index("email", unique=True)
    # Data that was in MongoDB before writebehind touched it.
    await accounts.insert_one({"_id": "alice", "email": "alice@example.com"})
    await accounts.insert_one({"_id": "bob", "email": "bob@example.com"})
    coll = wb.collection("accounts")
    partition = wb.keys.partition_of("accounts", "bob")
    others = ids_in_partition(wb.keys, "accounts", partition, 5)
    good = [await coll.set(doc_id, {"email": f"{doc_id}@example.com"}) for doc_id in others[:2]]
    stolen = await coll.set("bob", {"email": "alice@example.com"})
    good += [await coll.set(doc_id, {"email": f"{doc_id}@example.com"}) for doc_id in others[2:]]

    worker = await start_worker()
    for version in good:
        await coll.wait_persisted(version, timeout=20)
    [letter] = await wait_dead_letters(redis, wb.keys, 1)

    assert letter["error_code"] == b"11000"
    assert letter["error_kind"] == b"permanent"
    assert letter["source_id"] == str(stolen).encode()
    assert b"email" in letter["error"]
    # MongoDB still holds bob's old document, and reads show it again.
    assert await accounts.find_one({"_id": "bob"}) == {"_id": "bob", "email": "bob@example.com"}
    assert await redis.exists(cache_key(wb.keys, "accounts", "bob")) == 0
    assert await coll.get("bob") == {"_id": "bob", "email": "bob@example.com"}
    await wait_until(lambda: drained(redis, wb.keys), message="nothing pending")

    later = await coll.set("bob", {"email": "robert@example.com"})
    await coll.wait_persisted(later, timeout=20)
    assert worker.stats.dead_lettered == 1


async def test_poison_newest_record_falls_back_to_the_older_one_in_its_batch(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    neighbour = ids_in_partition(wb.keys, "people", wb.keys.partition_of("people", "d"), 2)[1]
    older = await people.set("d", {"name": "good"})
    newer = await people.set("d", {"nickname": "no name"})
    other = await people.set(neighbour, {"name": "n"})

    worker = await start_worker()
    await people.wait_persisted(older, timeout=20)
    await people.wait_persisted(other, timeout=20)
    [letter] = await wait_dead_letters(redis, wb.keys, 1)
    await wait_until(lambda: drained(redis, wb.keys), message="nothing pending")

    assert letter["source_id"] == str(newer).encode()
    assert letter["error_code"] == b"121"
    assert await mongo_db["people"].find_one({"_id": "d"}) == {
        "_id": "d",
        "name": "good",
        "_wb": {"v": older.as_pair()},
    }
    assert await stored_version(mongo_db["people"], "d") == older
    assert await people.get("d") == {"_id": "d", "name": "good"}
    assert worker.stats.batches == 1
    assert worker.stats.dead_lettered == 1
    assert worker.stats.persisted == 2


async def test_a_dead_letter_move_made_twice_leaves_one_letter(
    wb: WriteBehind, redis: Redis
) -> None:
    # Twice: the reply to the first move was lost and it was sent again, or a
    # frozen worker moves an entry another worker already claimed and moved.
    users = wb.collection("users")
    version = await users.set("ada", {"name": 1})
    partition = wb.keys.partition_of("users", "ada")
    frozen, claimer = (
        PartitionStreams(redis, fast_settings(consumer=name), WorkerCounters(), wb.keys)
        for name in ("frozen", "claimer")
    )
    await frozen.ensure_group(partition)
    [(entry_id, fields)] = await frozen.read(partition, count=10, block_ms=100)
    letter = LetterToMove(
        entry_id=entry_id.decode(),
        collection="users",
        op="set",
        body=fields[b"d"],
        version=str(version),
        error=ErrorInfo(Failure.PERMANENT, 121, "Document failed validation"),
        deliveries=1,
        cache_key=cache_key(wb.keys, "users", "ada"),
    )
    await frozen.finish(partition, [], [letter])
    await frozen.finish(partition, [], [letter])
    await claimer.finish(partition, [], [letter])

    letters = await dead_letters(redis, wb.keys)
    assert [(x["source_id"], x["consumer"]) for x in letters] == [(entry_id, b"frozen")]
    assert (frozen.stats.dead_lettered, claimer.stats.dead_lettered) == (1, 0)
    assert (await redis.xpending(wb.keys.stream(partition), "writebehind"))["pending"] == 0
