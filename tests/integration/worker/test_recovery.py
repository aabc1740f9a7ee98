"""Crash recovery: entries left by vanished consumers are claimed, and a lost group comes back."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.streams import (
    GROUP,
    cache_key,
    create_groups,
    dead_letters,
    drained,
    ghost_read,
    pending_total,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.errors import DeadLettered
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

CLAIM = {"claim_idle": 0.3, "claim_interval": 0.1}


async def test_entries_of_a_crashed_consumer_are_claimed_and_persisted(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    versions = {f"u{i}": await users.set(f"u{i}", {"n": i}) for i in range(20)}
    taken = [eid for stream in wb.keys.streams() for eid in await ghost_read(redis, stream)]
    assert len(taken) == 20
    assert await pending_total(redis, wb.keys) == 20

    worker: Worker = await start_worker(**CLAIM)
    for version in versions.values():
        await users.wait_persisted(version, timeout=20)
    await wait_until(lambda: drained(redis, wb.keys), message="ghost's entries acknowledged")
    assert worker.stats.claimed == 20
    assert worker.stats.dead_lettered == 0
    for stream in wb.keys.streams():
        ghost = [c for c in await redis.xinfo_consumers(stream, GROUP) if c["name"] == b"ghost"]
        assert all(c["pending"] == 0 for c in ghost)


async def test_entries_delivered_too_often_are_dead_lettered(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    versions = {f"u{i}": await users.set(f"u{i}", {"n": i}) for i in range(8)}
    stream = wb.keys.stream(wb.keys.partition_of("users", "u0"))
    for s in wb.keys.streams():
        await ghost_read(redis, s)
    # u0 keeps crashing its consumers: every XCLAIM (without JUSTID) is one
    # more delivery. 1 read + 3 claims = 4, over max_deliveries=3.
    poison = str(versions["u0"])
    for n in range(3):
        await redis.xclaim(stream, GROUP, f"crashed-{n}", 0, [poison])
    [row] = await redis.xpending_range(stream, GROUP, min=poison, max=poison, count=1)
    assert row["times_delivered"] == 4

    worker: Worker = await start_worker(max_deliveries=3, **CLAIM)
    for doc_id, version in versions.items():
        if doc_id != "u0":
            await users.wait_persisted(version, timeout=20)
    [letter] = await wait_until(lambda: dead_letters(redis, wb.keys), message="dead letter")
    await wait_until(lambda: drained(redis, wb.keys), message="all acknowledged")

    assert letter["source_id"] == poison.encode()
    assert b"deliver" in letter["error"]
    assert b"max_deliveries=3" in letter["error"]
    assert int(letter["deliveries"]) > 3
    assert letter["error_kind"] == b"permanent"
    assert await mongo_db["users"].find_one({"_id": "u0"}) is None
    assert await redis.exists(cache_key(wb.keys, "users", "u0")) == 0
    assert await users.get("u0") is None
    with anyio.fail_after(15), pytest.raises(DeadLettered) as info:
        await users.wait_persisted(versions["u0"], timeout=60)  # said at once, not waited out
    assert "max_deliveries=3" in info.value.reason
    assert worker.stats.dead_lettered == 1
    assert worker.stats.claimed == 8


async def test_pending_entry_deleted_from_the_stream_is_counted(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    lost = await users.set("lost", {"n": 0})
    kept = await users.set("kept", {"n": 1})
    for stream in wb.keys.streams():
        await ghost_read(redis, stream)
    stream = wb.keys.stream(wb.keys.partition_of("users", "lost"))
    assert await redis.xdel(stream, str(lost)) == 1

    worker: Worker = await start_worker(**CLAIM)
    await users.wait_persisted(kept, timeout=20)
    await wait_until(
        lambda: _stat(worker, "deleted_while_pending"), message="deleted_while_pending counted"
    )
    await wait_until(lambda: drained(redis, wb.keys), message="pending list emptied")
    assert worker.stats.deleted_while_pending == 1
    assert worker.stats.dead_lettered == 0
    assert await mongo_db["users"].find_one({"_id": "lost"}) is None


async def test_group_destroyed_under_a_running_worker_is_recreated(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    worker: Worker = await start_worker()
    users = wb.collection("users")
    before = await users.set("a", {"n": 1})
    await users.wait_persisted(before, timeout=20)
    stream = wb.keys.stream(wb.keys.partition_of("users", "a"))

    assert await redis.xgroup_destroy(stream, GROUP) == 1
    await wait_until(lambda: _stat(worker, "group_recreated"), message="group recreated")
    assert [g["name"] for g in await redis.xinfo_groups(stream)] == [GROUP.encode()]

    after = await users.set("a", {"n": 2})
    other = await users.set("b", {"n": 3})
    await users.wait_persisted(after, timeout=20)
    await users.wait_persisted(other, timeout=20)
    await wait_until(lambda: drained(redis, wb.keys), message="all acknowledged")
    assert await users.get("a") == {"_id": "a", "n": 2}
    assert worker.stats.group_recreated == 1
    assert worker.stats.dead_lettered == 0


async def _stat(worker: Worker, name: str) -> int:
    value: int = getattr(worker.stats, name)
    return value
