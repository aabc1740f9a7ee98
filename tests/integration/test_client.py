"""Client construction, the partition-count guard, and foreign database handles."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind.core.errors import ConfigurationError, PartitionCountMismatch
from writebehind.core.redis_client import socket_timeout

pytestmark = pytest.mark.anyio


async def test_urls_create_and_close_their_own_clients(
    redis_server: RedisServer, mongo_url: str, database_name: str, mongo_client: Any
) -> None:
    async with WriteBehind(redis_server.url, mongo_url, database_name) as wb:
        users = wb.collection("users")
        await users.set("u", {"n": 1})
        assert await users.get("u") == {"_id": "u", "n": 1}
    await mongo_client.drop_database(database_name)


async def test_partition_count_is_recorded_and_enforced(redis: Redis, mongo_db: Any) -> None:
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="pc", partitions=8):
        pass
    assert await redis.hget("{pc}:meta", "partitions") == b"8"
    other = WriteBehind(redis=redis, mongo=mongo_db, prefix="pc", partitions=4)
    with pytest.raises(PartitionCountMismatch) as info:
        await other.__aenter__()
    assert (info.value.configured, info.value.stored) == (4, 8)
    # Writing without entering checks too (a failed ``async with`` closed ``other``).
    unentered = WriteBehind(redis=redis, mongo=mongo_db, prefix="pc", partitions=4)
    with pytest.raises(PartitionCountMismatch):
        await unentered.collection("users").set("x", {})
    assert await redis.xlen(other.keys.stream(0)) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prefix": "has{brace}"},
        {"prefix": "has:colon"},
        {"prefix": ""},
        {"partitions": 0},
        {"partitions": 5000},
        {"max_backlog": -1},
        {"backlog_wait": -1},
        {"wait_replicas": -1},
        {"wait_replicas": 1.5},
        {"wait_replicas": 1, "wait_timeout": 0},
        # The fixture's client times out after redis-py's default (5 s in redis-py 8).
        {"wait_replicas": 1, "wait_timeout": 3600},
    ],
)
async def test_bad_configuration_is_refused(redis: Redis, mongo_db: Any, kwargs: Any) -> None:
    if kwargs.get("wait_timeout") == 3600 and socket_timeout(redis) is None:
        pytest.skip("redis-py before 8 gives the fixture's client no socket timeout to exceed")
    with pytest.raises(ConfigurationError):
        WriteBehind(redis=redis, mongo=mongo_db, **kwargs)


async def test_connection_arguments_are_checked(redis_server: RedisServer, mongo_db: Any) -> None:
    with pytest.raises(ConfigurationError):
        WriteBehind(mongo=mongo_db)
    decoding = Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        WriteBehind(redis=decoding, mongo=mongo_db)
    await decoding.aclose()
    with pytest.raises(ConfigurationError, match="database"):
        WriteBehind(redis_url=redis_server.url, mongo_url="mongodb://127.0.0.1:1")


async def test_a_motor_database_works(redis: Redis, mongo_url: str, database_name: str) -> None:
    motor = pytest.importorskip("motor.motor_asyncio", reason="motor is in the test extra")
    client = motor.AsyncIOMotorClient(mongo_url)
    try:
        db = client[database_name]
        await db["users"].insert_one({"_id": "m", "from": "mongo", "_wb": {"v": [1, 0]}})
        async with WriteBehind(redis=redis, mongo=db, prefix="motor") as wb:
            users = wb.collection("users")
            assert await users.get("m") == {"_id": "m", "from": "mongo"}
            await users.patch("m", {"patched": 1})
            assert await users.get("m") == {"_id": "m", "from": "mongo", "patched": 1}
            import uuid

            uid = uuid.uuid4()
            await users.set(uid, {"u": True})
            assert await users.get(uid) == {"_id": uid, "u": True}
    finally:
        await client.drop_database(database_name)
        client.close()


async def test_a_database_with_default_uuid_representation_still_takes_uuid_ids(
    redis: Redis, mongo_url: str, database_name: str
) -> None:
    import uuid

    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)  # uuidRepresentation unspecified
    try:
        async with WriteBehind(redis=redis, mongo=client[database_name], prefix="uu") as wb:
            uid = uuid.uuid4()
            await wb.collection("users").set(uid, {"x": 1})
            assert await wb.collection("users").get(uid) == {"_id": uid, "x": 1}
    finally:
        await client.drop_database(database_name)
        await client.close()
