"""Collection.version and get_versioned: a document's version alone, or with the document."""

from __future__ import annotations

from typing import Any

import pytest
from bson.errors import InvalidBSON
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, Version, Versioned, WriteBehind
from writebehind.core.version import ZERO
from writebehind.sdk.near import NearCache

pytestmark = pytest.mark.anyio


def _reads(level: str, outcome: str) -> float:
    labels = {"collection": "users", "level": level, "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


def _entry(wb: WriteBehind, doc_id: Any) -> str:
    return wb.keys.cache(wb.keys.partition_of("users", doc_id), "users", doc_id)


async def _command_calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


async def test_a_written_document_reads_with_the_version_written(wb: WriteBehind) -> None:
    users = wb.collection("users")
    v1 = await users.set("u1", {"name": "Ada"})
    assert await users.version("u1") == v1
    assert await users.get_versioned("u1") == Versioned({"_id": "u1", "name": "Ada"}, v1)
    v2 = await users.patch("u1", {"age": 37})
    assert v2 > v1
    assert await users.version("u1") == v2
    read = await users.get_versioned("u1")
    assert read.version == v2 and read.document == {"_id": "u1", "name": "Ada", "age": 37}
    assert read.version is not None and read.version.collection == "users"
    assert read.version.doc_id == "u1"


async def test_the_version_alone_reads_no_body(wb: WriteBehind, redis: Redis) -> None:
    users = wb.collection("users")
    v = await users.set("u1", {"name": "Ada"})
    await redis.hset(_entry(wb, "u1"), "d", b"not bson")  # a body get() could not decode
    hits = _reads("redis", "hit")
    assert await users.version("u1") == v
    assert _reads("redis", "hit") == hits + 1
    with pytest.raises(InvalidBSON):
        await users.get("u1")


async def test_absent_deleted_and_negative_documents_have_no_version(wb: WriteBehind) -> None:
    users = wb.collection("users")
    assert await users.version("nobody") is None  # a miss: MongoDB read, negative entry filled
    assert await users.get_versioned("nobody") == Versioned(None, None)
    negative = _reads("redis", "negative_hit")
    assert await users.version("nobody") is None  # now from the negative entry
    assert _reads("redis", "negative_hit") == negative + 1
    await users.set("gone", {"n": 1})
    await users.delete("gone")
    deleted = _reads("redis", "deleted")
    assert await users.version("gone") is None
    assert _reads("redis", "deleted") == deleted + 1
    assert await users.get_versioned("gone") == Versioned(None, None)


async def test_a_miss_reads_mongodb_and_fills_the_entry(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    users = wb.collection("users")
    await mongo_db["users"].insert_one({"_id": "m1", "name": "Bo", "_wb": {"v": [1700, 2]}})
    assert not await redis.exists(_entry(wb, "m1"))
    assert await users.version("m1") == Version(1700, 2)
    assert await redis.hget(_entry(wb, "m1"), "v") == b"1700-2"  # filled by the fenced path
    assert await users.version("m1") == Version(1700, 2)  # now from the entry
    await redis.delete(_entry(wb, "m1"))
    assert await users.get_versioned("m1") == Versioned(
        {"_id": "m1", "name": "Bo"}, Version(1700, 2)
    )


async def test_a_document_written_to_mongodb_directly_has_version_zero(
    wb: WriteBehind, mongo_db: Any
) -> None:
    users = wb.collection("users")
    await mongo_db["users"].insert_one({"_id": "raw", "name": "Cy"})
    assert await users.version("raw") == ZERO
    assert (await users.get_versioned("raw")).version == ZERO


async def test_bad_ids_are_refused(wb: WriteBehind) -> None:
    users = wb.collection("users")
    with pytest.raises(TypeError):
        await users.version(1.5)
    with pytest.raises(TypeError):
        await users.get_versioned(True)


async def test_a_near_cache_answers_the_version_without_redis(
    wb: WriteBehind, redis: Redis
) -> None:
    near = NearCache(max_entries=100, ttl=60.0, max_stale=0.5)
    users = wb.collection("users", reads=ReadPolicy(near=near))
    v1 = await users.set("n1", {"n": 1})
    assert await users.version("n1") == v1

    async def ready() -> bool:
        return wb.near.servable(near)

    await wait_until(ready, timeout=10, message="the near-cache feed caught up")
    assert await users.get_versioned("n1") == Versioned({"_id": "n1", "n": 1}, v1)  # kept
    before = await _command_calls(redis)
    assert await users.version("n1") == v1
    after = await _command_calls(redis)
    assert after.get("cmdstat_hmget") == before.get("cmdstat_hmget")
    v2 = await users.set("n1", {"n": 2})  # an own write evicts the near copy
    assert await users.version("n1") == v2
    assert await users.get_versioned("n1") == Versioned({"_id": "n1", "n": 2}, v2)


async def test_redis_unreachable_reads_the_version_from_mongodb(mongo_db: Any) -> None:
    await mongo_db["users"].insert_one({"_id": "d1", "n": 1, "_wb": {"v": [9, 9]}})
    reads = ReadPolicy(redis_timeout=0.2, breaker_failures=100)
    wb = WriteBehind(  # not entered: entering checks Redis
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=TEST_PARTITIONS,
        reads=reads,
    )
    try:
        users = wb.collection("users")
        degraded = _reads("degraded", "hit")
        assert await users.version("d1") == Version(9, 9)
        assert _reads("degraded", "hit") == degraded + 1
        assert await users.get_versioned("d1") == Versioned({"_id": "d1", "n": 1}, Version(9, 9))
    finally:
        await wb.aclose()
