"""``writebehind partitions set N``: refused until drained and stopped, then a new layout works."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.config import TEST_PREFIX
from tests.support.servers import RedisServer
from tests.support.streams import running_worker
from writebehind import WriteBehind
from writebehind.errors import PartitionCountMismatch

pytestmark = pytest.mark.anyio


async def test_refused_while_records_wait_or_a_worker_runs_then_the_new_count_works(
    wb: WriteBehind, redis: Redis, redis_server: RedisServer, mongo_db: Any, cli: Cli
) -> None:
    users = wb.collection("users")
    versions = [await users.set(f"u{i}", {"n": i}) for i in range(20)]

    waiting = await cli("partitions", "set", "8", "--quiet", "0s")
    assert waiting.code == 1, waiting.stderr
    assert "undelivered records: let the workers drain it" in waiting.stderr
    assert await redis.hget(wb.keys.meta, "partitions") == b"4"

    async with running_worker(redis_server.url, mongo_db) as worker:
        for version in versions:
            await users.wait_persisted(version, timeout=20)
        running = await cli("partitions", "set", "8", "--quiet", "0s")
        assert running.code == 1, running.stderr
        assert f"consumer {worker.settings.consumer!r} was active" in running.stderr
        assert "stop every worker" in running.stderr
    late = await users.set("late", {"n": -1})  # a producer still writing...
    writing = await cli("partitions", "set", "8", "--worker-idle", "0s")
    assert "stop every producer" in writing.stderr and writing.code == 1
    async with running_worker(redis_server.url, mongo_db):
        await users.wait_persisted(late, timeout=20)
    assert await redis.hget(wb.keys.meta, "partitions") == b"4"

    await anyio.sleep(0.3)
    dry = await cli("partitions", "set", "8", "--worker-idle", "0.2s", "--quiet", "0s", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "Would change the partition count from 4 to 8." in dry.stdout
    assert await redis.hget(wb.keys.meta, "partitions") == b"4"
    done = await cli("partitions", "set", "8", "--worker-idle", "0.2s", "--quiet", "0s", "--json")
    assert done.code == 0, done.stderr
    report = done.json()
    assert (report["old"], report["new"], report["dry_run"]) == (4, 8, False)
    assert report["cache_entries_deleted"] == 21
    assert await redis.hget(wb.keys.meta, "partitions") == b"8"
    assert [k async for k in redis.scan_iter(match="{t:p*}:doc:*")] == []
    shown = await cli("partitions", "show")
    assert shown.stdout.strip() == "8"

    # Producers and workers with the old count are refused; the new count works end to end.
    with pytest.raises(PartitionCountMismatch):
        async with WriteBehind(redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=4):
            pass
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=8) as new:
        moved = new.collection("users")
        assert await moved.get("u3") == {"_id": "u3", "n": 3}  # filled from MongoDB
        version = await moved.set("u3", {"n": 33})
        async with running_worker(redis_server.url, mongo_db, partitions=8):
            await moved.wait_persisted(version, timeout=20)
    assert (await mongo_db["users"].find_one({"_id": "u3"}))["n"] == 33


async def test_without_a_recorded_count_there_is_nothing_to_change(cli: Cli, redis: Redis) -> None:
    result = await cli("partitions", "set", "8")
    assert result.code == 2
    assert "no partition count is recorded for prefix 't'" in result.stderr
