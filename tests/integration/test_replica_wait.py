"""``wait_replicas``: a write returns once that many Redis replicas have it, or says it
was made without them (``NotReplicated``), never silently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer, replica_of
from tests.support.streams import cache_key, stream_ids
from writebehind import WriteBehind
from writebehind.core.errors import NotReplicated

pytestmark = pytest.mark.anyio


def _wb(primary: RedisServer, mongo_db: Any, **options: Any) -> WriteBehind:
    return WriteBehind(
        redis_url=primary.url,
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=TEST_PARTITIONS,
        **options,
    )


async def test_a_write_returns_once_the_replica_has_it(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    primary = redis_factory()
    replica = await replica_of(redis_factory, primary)
    replica_client = Redis.from_url(replica.url)
    try:
        async with _wb(primary, mongo_db, wait_replicas=1, wait_timeout=5) as wb:
            users = wb.collection("users")
            version = await users.set("ada", {"n": 1})
            # No polling: WAIT returned, so the replica has applied it already.
            entry = cache_key(wb.keys, "users", "ada")
            assert await replica_client.hget(entry, "v") == str(version).encode()
            stream = wb.keys.stream(wb.keys.partition_of("users", "ada"))
            assert await stream_ids(replica_client, stream) == [str(version).encode()]

            patched = await users.patch("ada", {"m": 2})
            assert await replica_client.hget(entry, "v") == str(patched).encode()
            many = await users.set_many([("x", {"n": 1}), ("y", {"n": 2})])
            for doc_id, v in zip(["x", "y"], many, strict=True):
                key = cache_key(wb.keys, "users", doc_id)
                assert await replica_client.hget(key, "v") == str(v).encode()
    finally:
        await replica_client.aclose()


async def test_without_enough_replicas_the_write_is_made_and_says_so(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    primary = redis_factory()
    async with _wb(primary, mongo_db, wait_replicas=1, wait_timeout=0.05) as wb:
        users = wb.collection("users")
        with pytest.raises(NotReplicated) as info:
            await users.set("ada", {"n": 1})
        [version] = info.value.versions
        assert (info.value.acknowledged, info.value.wanted) == (0, 1)
        assert version.doc_id == "ada"
        # Made on the primary: readable, and its record is in the stream for the workers.
        assert await users.get("ada") == {"_id": "ada", "n": 1}
        stream = wb.keys.stream(wb.keys.partition_of("users", "ada"))
        assert await stream_ids(wb.redis, stream) == [str(version).encode()]

        with pytest.raises(NotReplicated) as many:
            await users.set_many([("x", {"n": 1}), ("y", {"n": 2})])
        assert [v.doc_id for v in many.value.versions] == ["x", "y"]
        assert "2 writes made, but 0 of the 1 replicas asked for" in str(many.value)


async def test_no_wait_by_default(redis_factory: Callable[..., RedisServer], mongo_db: Any) -> None:
    primary = redis_factory()
    async with _wb(primary, mongo_db) as wb:
        assert wb.wait_replicas == 0
        await wb.collection("users").set("ada", {"n": 1})  # no replica, no error
