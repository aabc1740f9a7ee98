"""Start-up checks: a Redis that could lose writes is refused or warned about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, fast_settings
from tests.support.servers import RedisServer
from writebehind import WriteBehind
from writebehind.core.errors import PartitionCountMismatch
from writebehind.core.redis_checks import UnsafeEvictionPolicy, inspect_redis
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

RedisFactory = Callable[..., RedisServer]


async def test_allkeys_eviction_is_refused_before_anything_is_written(
    redis_factory: RedisFactory, mongo_db: Any
) -> None:
    server = redis_factory("--maxmemory-policy", "allkeys-lru")
    async with Redis.from_url(server.url) as client:
        worker = Worker(client, mongo_db, fast_settings())
        with pytest.raises(UnsafeEvictionPolicy, match="allkeys-lru"):
            await worker.startup_checks()
        with pytest.raises(UnsafeEvictionPolicy):
            await worker.run()
        assert not worker.started.is_set()
        assert await client.dbsize() == 0


async def test_volatile_eviction_is_accepted(redis_factory: RedisFactory, mongo_db: Any) -> None:
    server = redis_factory("--maxmemory-policy", "volatile-lru")
    async with Redis.from_url(server.url) as client:
        report = await inspect_redis(client)
        assert report.eviction_policy == "volatile-lru"
        worker = Worker(client, mongo_db, fast_settings())
        await worker.startup_checks()
        for stream in worker.keys.streams():
            groups = await client.xinfo_groups(stream)
            assert [g["name"] for g in groups] == [b"writebehind"]


async def test_persistence_is_reported(redis_factory: RedisFactory) -> None:
    none = redis_factory()
    aof = redis_factory(appendonly=True)
    rdb = redis_factory("--save", "3600 1")
    async with (
        Redis.from_url(none.url) as no_persistence,
        Redis.from_url(aof.url) as with_aof,
        Redis.from_url(rdb.url) as with_rdb,
    ):
        report = await inspect_redis(no_persistence)
        assert report.persistence == "none"
        assert any("no persistence" in w for w in report.warnings), report.warnings

        report = await inspect_redis(with_aof)
        assert report.persistence == "aof"
        assert report.warnings == []

        report = await inspect_redis(with_rdb)
        assert report.persistence == "rdb"
        assert any("RDB" in w for w in report.warnings), report.warnings


async def test_partition_count_other_than_the_stored_one_is_refused(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    # The wb fixture recorded the deployment's count.
    assert int(await redis.hget(wb.keys.meta, "partitions")) == TEST_PARTITIONS
    worker = Worker(redis, mongo_db, fast_settings(partitions=TEST_PARTITIONS * 2))
    with pytest.raises(PartitionCountMismatch) as caught:
        await worker.startup_checks()
    assert (caught.value.configured, caught.value.stored) == (TEST_PARTITIONS * 2, TEST_PARTITIONS)
    with pytest.raises(PartitionCountMismatch):
        await worker.run()
    assert not worker.started.is_set()
    # No stream of the wrong layout was created.
    assert not await redis.exists(worker.keys.stream(TEST_PARTITIONS * 2 - 1))
    # Producers are refused the same way.
    with pytest.raises(PartitionCountMismatch):
        async with WriteBehind(
            redis=redis, mongo=mongo_db, prefix=wb.keys.prefix, partitions=TEST_PARTITIONS * 2
        ):
            pass
