"""A worker (re)started while Redis is at ``maxmemory`` starts and drains the backlog.

Found by the fault suite (tests/faults, ``memory_pressure``): start-up wrote
the partition count and created the groups unconditionally, and Redis refuses
writes at ``maxmemory`` even when the key or group already exists, so a
worker could not start exactly when it was needed most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer
from tests.support.streams import create_groups, running_worker
from writebehind import WriteBehind
from writebehind.core.errors import RedisOutOfMemory
from writebehind.core.keys import KeySpace

pytestmark = pytest.mark.anyio


async def test_worker_starts_and_drains_when_redis_is_full(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory("--maxmemory-policy", "volatile-lru")
    redis = Redis.from_url(server.url)
    try:
        keys = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
        async with WriteBehind(
            redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        ) as wb:
            users = wb.collection("users")
            await create_groups(redis, keys)
            versions = [await users.set(f"u{i}", {"n": i}) for i in range(20)]
            await redis.config_set("maxmemory", 1)  # far below what is in use
            with pytest.raises(RedisOutOfMemory):
                await users.set("late", {"n": -1})
            async with running_worker(server.url, mongo_db):
                for version in versions:
                    await users.wait_persisted(version, timeout=20)
    finally:
        await redis.config_set("maxmemory", 0)
        await redis.aclose()
