"""Early refresh (XFetch) of clean entries: in the background, once per key, fenced by version."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.reads import reader, slow_finds
from tests.support.streams import cache_key, fail_point
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind

pytestmark = pytest.mark.anyio

# A beta so large that every read of a clean entry refreshes it (-ln(rand) > 0 for rand < 1).
ALWAYS = ReadPolicy(early_refresh=1e15, ttl=600)


def _count(collection: str, outcome: str) -> float:
    labels = {"collection": collection, "level": "early_refresh", "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


async def test_a_refresh_renews_the_entry_without_blocking_the_reader(
    redis: Redis, mongo_url: str, mongo_db: Any
) -> None:
    await mongo_db["hot"].insert_one({"_id": "h", "n": 1, "_wb": {"v": [4, 0]}})
    async with reader(redis, mongo_url, mongo_db.name, "refresher", reads=ALWAYS) as (wb, finds):
        hot = wb.collection("hot")
        assert await hot.get("h") == {"_id": "h", "n": 1}  # the miss fills it
        key = cache_key(wb.keys, "hot", "h")
        await redis.pexpire(key, 5000)
        done = _count("hot", "done")
        assert await hot.get("h") == {"_id": "h", "n": 1}  # served now, refreshed behind

        async def refreshed() -> bool:
            return _count("hot", "done") > done

        await wait_until(refreshed, message="the refresh")
        assert finds.count("hot") == 2
        assert await redis.ttl(key) > 5  # renewed to the policy's ttl


async def test_a_refresh_that_ends_after_a_newer_write_is_discarded(
    wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    await mongo_db["hot"].insert_one({"_id": "h", "n": 1, "_wb": {"v": [4, 0]}})
    async with reader(redis, mongo_url, mongo_db.name, "slow-refresh", reads=ALWAYS) as (a, finds):
        hot = a.collection("hot")
        assert await hot.get("h") == {"_id": "h", "n": 1}
        async with slow_finds(mongo_client, "slow-refresh", 1000):
            assert await hot.get("h") == {"_id": "h", "n": 1}  # starts a slowed refresh
            await wait_until(lambda: _finds(finds, 2), message="the refresh's find")
            version = await wb.collection("hot").set("h", {"n": 2})

            async def ended() -> bool:
                lease = cache_key(wb.keys, "hot", "h").replace(":doc:", ":lease:")
                return await redis.exists(lease) == 0

            await wait_until(ended, message="the refresh's end")
        key = cache_key(wb.keys, "hot", "h")
        assert await redis.hget(key, "v") == str(version).encode()
        assert await redis.ttl(key) == -1
        assert await hot.get("h") == {"_id": "h", "n": 2}


async def test_a_failed_refresh_keeps_serving_the_entry(
    redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    await mongo_db["hot"].insert_one({"_id": "h", "n": 1, "_wb": {"v": [4, 0]}})
    failing = {"failCommands": ["find"], "errorCode": 2, "appName": "refresh-fails"}
    async with reader(redis, mongo_url, mongo_db.name, "refresh-fails", reads=ALWAYS) as (wb, _):
        hot = wb.collection("hot")
        assert await hot.get("h") == {"_id": "h", "n": 1}
        failed = _count("hot", "failed")
        async with fail_point(mongo_client, "alwaysOn", failing):
            assert await hot.get("h") == {"_id": "h", "n": 1}

            async def gave_up() -> bool:
                return _count("hot", "failed") > failed

            await wait_until(gave_up, message="the failed refresh")
            assert await hot.get("h") == {"_id": "h", "n": 1}
        lease = cache_key(wb.keys, "hot", "h").replace(":doc:", ":lease:")

        async def released() -> bool:  # each failed refresh gives its lease back
            return await redis.exists(lease) == 0

        await wait_until(released, timeout=5, message="the lease released")


async def _finds(finds: Any, n: int) -> bool:
    return bool(finds.count("hot") >= n)
