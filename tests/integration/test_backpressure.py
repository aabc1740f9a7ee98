"""Writes are refused (or wait) once a partition's unpersisted backlog reaches the limit."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.redis_state import snapshot
from writebehind import WriteBehind
from writebehind.core.errors import BacklogFull, WriteManyError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def limited(redis: Redis, mongo_db: Any) -> Any:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix="bp", partitions=1, max_backlog=5
    ) as wb:
        yield wb


async def consume_and_ack(redis: Redis, stream: str, count: int) -> None:
    reply = await redis.xreadgroup("writebehind", "tester", {stream: ">"}, count=count)
    ids = [entry_id for _, entries in reply for entry_id, _ in entries]
    await redis.xack(stream, "writebehind", *ids)


async def test_backlog_limit_refuses_and_changes_nothing(
    limited: WriteBehind, redis: Redis
) -> None:
    users = limited.collection("users")
    for i in range(5):
        await users.set(i, {"i": i})
    before = await snapshot(redis)
    with pytest.raises(BacklogFull) as info:
        await users.set(99, {"i": 99})
    assert info.value.backlog == 5 and info.value.limit == 5 and info.value.partition == 0
    with pytest.raises(BacklogFull):
        await users.patch(0, {"x": 1})
    assert await snapshot(redis) == before


async def test_acked_records_free_the_backlog(limited: WriteBehind, redis: Redis) -> None:
    users = limited.collection("users")
    stream = limited.keys.stream(0)
    await redis.xgroup_create(stream, "writebehind", id="0", mkstream=True)
    for i in range(5):
        await users.set(i, {"i": i})
    # Delivered but not acked still counts: the record is not in MongoDB yet.
    await redis.xreadgroup("writebehind", "tester", {stream: ">"}, count=2)
    with pytest.raises(BacklogFull):
        await users.set(5, {})
    pending = await redis.xpending_range(stream, "writebehind", "-", "+", 10)
    await redis.xack(stream, "writebehind", *[p["message_id"] for p in pending])
    await users.set(5, {})
    await users.set(6, {})
    with pytest.raises(BacklogFull):
        await users.set(7, {})
    # Acknowledged entries stay in the stream for replay but are not backlog.
    assert await redis.xlen(stream) == 7


async def test_set_many_reports_which_writes_were_refused(
    limited: WriteBehind, redis: Redis
) -> None:
    users = limited.collection("users")
    with pytest.raises(WriteManyError) as info:
        await users.set_many([(i, {"i": i}) for i in range(7)])
    results = info.value.results
    assert [type(r).__name__ for r in results] == ["Version"] * 5 + ["BacklogFull"] * 2
    assert await redis.xlen(limited.keys.stream(0)) == 5


async def test_backlog_wait_resumes_when_workers_catch_up(redis: Redis, mongo_db: Any) -> None:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix="bw", partitions=1, max_backlog=3, backlog_wait=30
    ) as wb:
        users = wb.collection("users")
        stream = wb.keys.stream(0)
        await redis.xgroup_create(stream, "writebehind", id="0", mkstream=True)
        for i in range(3):
            await users.set(i, {})
        result: list[Any] = []

        async def blocked_write() -> None:
            result.append(await users.set("late", {"ok": True}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_write)
            await consume_and_ack(redis, stream, 3)
        assert len(result) == 1
        assert await users.get("late") == {"_id": "late", "ok": True}


async def test_backlog_wait_gives_up_with_backlog_full(redis: Redis, mongo_db: Any) -> None:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix="bg", partitions=1, max_backlog=1, backlog_wait=0.2
    ) as wb:
        users = wb.collection("users")
        await users.set(1, {})
        with pytest.raises(BacklogFull):
            await users.set(2, {})


async def test_zero_disables_the_limit(redis: Redis, mongo_db: Any) -> None:
    async with WriteBehind(
        redis=redis, mongo=mongo_db, prefix="bz", partitions=1, max_backlog=0
    ) as wb:
        await wb.collection("users").set_many([(i, {}) for i in range(50)])
        assert await redis.xlen(wb.keys.stream(0)) == 50
