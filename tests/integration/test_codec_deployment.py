"""One codec configuration per deployment: the SDK, worker, replay and dlq read records alike.

A producer whose database uses a legacy UUID representation used to have its
UUID ids dead-lettered by the worker as ``UnsupportedIdType ... not Binary``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import DatetimeMS
from bson.binary import Binary, UuidRepresentation
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.invalidator import changes, running_invalidator
from tests.support.redis_state import snapshot
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind import errors as e
from writebehind.core.keys import KeySpace
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import Redriver, get_letters, iter_letters
from writebehind.tools.diagnose import diagnose
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
LEGACY = ["pythonLegacy", "javaLegacy"]


@pytest.fixture(params=LEGACY)
async def legacy_db(
    request: pytest.FixtureRequest, mongo_url: str, database_name: str
) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, uuidRepresentation=request.param)
    try:
        yield client[database_name]
    finally:
        await client.drop_database(database_name)
        await client.close()


async def test_legacy_uuids_reach_mongodb_and_read_back(
    redis: Redis, legacy_db: Any, mongo_db: Any, start_worker: Any
) -> None:
    # The worker's own handle uses the default (standard) options: it must follow the record.
    await start_worker()
    doc_id, ref = uuid.uuid4(), uuid.uuid4()
    async with WriteBehind(
        redis=redis, mongo=legacy_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as wb:
        users = wb.collection("users")
        v = await users.set(doc_id, {"ref": ref})
        await users.wait_persisted(v, timeout=20)
        raw = (
            await mongo_db.client[legacy_db.name]
            .get_collection(
                "users",
                codec_options=mongo_db.codec_options.with_options(
                    uuid_representation=UuidRepresentation.UNSPECIFIED
                ),
            )
            .find_one({})
        )
        # Stored as the application's own handle would have stored it.
        assert isinstance(raw["_id"], Binary) and raw["_id"].subtype == 3
        await redis.delete(KEYS.cache(KEYS.partition_of("users", doc_id), "users", doc_id))
        assert await users.get(doc_id) == {"_id": doc_id, "ref": ref}
    assert not [k async for k in redis.scan_iter("*dlq*")]


async def test_a_producer_with_other_options_is_refused_naming_both(
    redis: Redis, legacy_db: Any, mongo_db: Any
) -> None:
    async with WriteBehind(redis=redis, mongo=legacy_db, prefix=TEST_PREFIX):
        pass
    other = WriteBehind(redis=redis, mongo=mongo_db, prefix=TEST_PREFIX)
    with pytest.raises(e.CodecMismatch) as info:
        await other.collection("users").set("x", {})
    assert "uuid=standard" in str(info.value) and "legacy" in str(info.value)
    assert info.value.configured != info.value.stored
    assert await redis.xlen(KEYS.stream(0)) == 0


async def test_replay_and_dlq_read_with_the_recorded_options(
    redis: Redis, legacy_db: Any, mongo_db: Any
) -> None:
    doc_id = uuid.uuid4()
    async with WriteBehind(
        redis=redis, mongo=legacy_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as wb:
        await wb.collection("users").set(doc_id, {"n": 1})
    # Replay through a sink built on a default-options handle.
    result = await replay(
        redis,
        MongoSink(mongo_db, prefix=KEYS.prefix),
        KEYS,
        ReplayOptions(ReplayRange.parse("0", None)),
    )
    assert result.malformed == 0 and result.dead_lettered == 0
    assert await legacy_db["users"].find_one({"_id": doc_id}, {"_wb": 0}) == {"_id": doc_id, "n": 1}
    # A dead letter of such a record decodes, and re-drives, too.
    stream = KEYS.stream(KEYS.partition_of("users", doc_id))
    ((entry_id, fields),) = await redis.xrange(stream)
    await redis.xadd(
        KEYS.dead_letters(KEYS.partition_of("users", doc_id)),
        {**fields, "source_id": entry_id, "ov": entry_id, "error": "test", "error_kind": "x"},
    )
    (letter,) = [letter async for letter in iter_letters(redis, KEYS)]
    assert letter.problem is None and letter.doc_id == doc_id
    (again,) = await get_letters(redis, KEYS, [letter.id])
    assert again.document() == {"_id": doc_id, "n": 1}
    await legacy_db["users"].delete_many({})
    results = await Redriver(redis, mongo_db, KEYS).redrive([again])
    assert len(results) == 1
    assert await legacy_db["users"].find_one({"_id": doc_id}, {"_wb": 0}) == {"_id": doc_id, "n": 1}


async def test_a_value_the_readers_cannot_decode_is_refused(wb: WriteBehind, redis: Redis) -> None:
    users = wb.collection("users")
    before = await snapshot(redis)
    with pytest.raises(e.NotDecodable) as info:
        await users.set("u1", {"when": DatetimeMS(2**62)})
    assert isinstance(info.value, e.InvalidInput)
    with pytest.raises(e.NotDecodable):
        await users.patch("u1", {"when": DatetimeMS(2**62)})
    assert await snapshot(redis) == before


async def test_check_reports_the_recorded_options(redis: Redis, legacy_db: Any) -> None:
    async with WriteBehind(redis=redis, mongo=legacy_db, prefix=TEST_PREFIX):
        pass
    found = await diagnose(redis, legacy_db, KEYS, "writebehind", WriteConcern(w=1))
    (codec,) = [f for f in found.findings if f.check == "codec options"]
    assert codec.detail.startswith("uuid=") and "legacy" in codec.detail


async def test_shard_key_values_of_a_delete_are_checked_as_a_document(
    wb: WriteBehind, redis: Redis
) -> None:
    # A delete on a sharded collection carries the given values in its record: the
    # worker decodes them and puts them in its MongoDB filter.
    orders = wb.collection("orders", shard_key="tenant")
    before = await snapshot(redis)
    with pytest.raises(e.NotDecodable):
        await orders.delete("o1", shard_key={"tenant": DatetimeMS(2**62)})
    with pytest.raises(e.InvalidFieldName):  # an operator would change what the filter matches
        await orders.delete("o1", shard_key={"tenant": {"$gt": ""}})
    with pytest.raises(e.IntegerOutOfRange):
        await orders.delete("o1", shard_key={"tenant": 2**70})
    assert await snapshot(redis) == before


async def test_the_invalidator_reads_changes_with_the_recorded_options(
    redis: Redis, legacy_db: Any, mongo_db: Any
) -> None:
    # Its own handle has the default (standard) options, and it starts before any
    # producer recorded the deployment's: it must still find a UUID id's cache entry.
    doc_id = uuid.uuid4()
    await legacy_db.users.insert_one({"_id": doc_id, "n": 1, "_wb": {"v": [1, 0]}})
    async with (
        running_invalidator(redis, mongo_db, "users") as invalidator,
        WriteBehind(redis=redis, mongo=legacy_db, prefix="t", partitions=4) as wb,
    ):
        users = wb.collection("users")
        assert await users.get(doc_id) == {"_id": doc_id, "n": 1}  # cached now
        await legacy_db.users.update_one({"_id": doc_id}, {"$set": {"n": 2}})

        async def seen() -> bool:
            return await users.get(doc_id) == {"_id": doc_id, "n": 2}

        await wait_until(seen, timeout=10, message="the direct update reached get()")
        assert changes(invalidator, "users", "evicted") >= 1
