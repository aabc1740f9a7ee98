"""``partitions seed``: after a failover to a Redis whose ids are behind, new writes still win."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.servers import RedisServer
from tests.support.streams import running_worker
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.version import Version

pytestmark = pytest.mark.anyio

AHEAD_MS = 3_600_000
"""How far the lost primary's clock ran ahead of the promoted replica's."""


async def drained(redis: Redis, keys: Any) -> bool:
    for p in range(keys.partitions):
        for group in await redis.xinfo_groups(keys.stream(p)):
            if group["pending"] or group["lag"]:
                return False
    return True


async def lost_primary_persisted(mongo_db: Any, doc_id: str, now_ms: int) -> None:
    """MongoDB holds a version the lost primary issued, an hour ahead of this Redis's clock."""
    await mongo_db["users"].replace_one(
        {"_id": doc_id},
        {"_id": doc_id, "n": "from the lost primary", "_wb": {"v": [now_ms + AHEAD_MS, 0]}},
        upsert=True,
    )


async def test_seeded_streams_issue_versions_above_those_persisted(
    redis: Redis, redis_server: RedisServer, mongo_db: Any, cli: Cli
) -> None:
    seconds, _ = await redis.time()
    now_ms = int(seconds) * 1000
    await lost_primary_persisted(mongo_db, "a", now_ms)
    await lost_primary_persisted(mongo_db, "b", now_ms)
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
    ) as wb:
        users = wb.collection("users")
        # Unseeded, the promoted replica's clock issues a lower version: the guard keeps the
        # older write (this is the hazard the command removes).
        behind = await users.set("a", {"n": "newest, unseeded"})
        assert behind < Version(now_ms + AHEAD_MS, 0)
        async with running_worker(redis_server.url, mongo_db):
            await wait_until(lambda: drained(redis, wb.keys), message="the worker to drain")
        assert (await mongo_db["users"].find_one({"_id": "a"}))["n"] == "from the lost primary"

        seeded = await cli("partitions", "seed", "--json")
        assert seeded.code == 0, seeded.stderr
        report = seeded.json()
        assert report["floor"] == f"{now_ms + AHEAD_MS + 1}-0"
        assert report["raised"] == list(range(TEST_PARTITIONS))  # empty streams too
        floor = await mongo_db["_writebehind"].find_one({"_id": f"{TEST_PREFIX}:floor"})
        assert floor["ms"] == now_ms + AHEAD_MS  # the floor covers what the scan found
        again = await cli("partitions", "seed", "--json")
        assert again.json()["raised"] == []

        versions = [await users.set(i, {"n": f"newest {i}"}) for i in ("a", "b")]
        assert all(v > Version(now_ms + AHEAD_MS, 0) for v in versions)
        async with running_worker(redis_server.url, mongo_db):
            for version in versions:
                await users.wait_persisted(version, timeout=20)
    assert (await mongo_db["users"].find_one({"_id": "a"}))["n"] == "newest a"
    assert (await mongo_db["users"].find_one({"_id": "b"}))["n"] == "newest b"
