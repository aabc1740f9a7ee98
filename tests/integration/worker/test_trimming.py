"""Trimming removes acknowledged history only: never anything pending or undelivered."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from redis.asyncio import Redis

from tests.support.config import fast_settings
from tests.support.streams import (
    GROUP,
    create_groups,
    ghost_read,
    ids_in_partition,
    stream_ids,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.worker.runner import Worker
from writebehind.worker.stream import Trimmed

pytestmark = pytest.mark.anyio


async def _lengths(redis: Redis, streams: list[str]) -> list[int]:
    return [await redis.xlen(s) for s in streams]


async def test_acknowledged_entries_are_trimmed_when_retention_is_zero(
    wb: WriteBehind, start_worker: Any, redis: Redis
) -> None:
    worker: Worker = await start_worker(retention=0, trim_interval=0.1)
    users = wb.collection("users")
    versions = [await users.set(f"u{i % 10}", {"n": i}) for i in range(60)]
    for version in versions[-10:]:
        await users.wait_persisted(version, timeout=20)

    async def short_streams() -> bool:
        # XTRIM MINID keeps the last delivered entry itself.
        return max(await _lengths(redis, wb.keys.streams())) <= 1

    await wait_until(short_streams, message="acknowledged history trimmed", timeout=10)

    async def counted() -> bool:
        # The worker counts a trim once XTRIM's reply is back: just after Redis shows it.
        return worker.stats.trimmed >= 60 - wb.keys.partitions

    await wait_until(counted, message="the trims counted", timeout=5)
    # The newest data is untouched: every cache entry and MongoDB document is current.
    for i, version in enumerate(versions[-10:]):
        assert await users.get(f"u{i}") == {"_id": f"u{i}", "n": 50 + i}
        await users.wait_persisted(version, timeout=1)


async def test_trim_stops_at_the_oldest_pending_and_the_first_undelivered_entry(
    wb: WriteBehind, mongo_db: Any, redis: Redis
) -> None:
    worker = Worker(redis, mongo_db, fast_settings(retention=0))
    users = wb.collection("users")
    partition = 2
    stream = wb.keys.stream(partition)
    await worker.streams.ensure_group(partition)
    for i, doc_id in enumerate(ids_in_partition(wb.keys, "users", partition, 6)):
        await users.set(doc_id, {"n": i})
    e = await stream_ids(redis, stream)
    assert len(e) == 6

    # A consumer read e0..e3 and acknowledged all but e1; e4, e5 are undelivered.
    assert await ghost_read(redis, stream, count=4) == e[:4]
    await redis.xack(stream, GROUP, e[0], e[2], e[3])
    assert await worker.streams.trim(partition) == Trimmed(1, None)
    assert await stream_ids(redis, stream) == e[1:]
    assert await worker.streams.trim(partition) == Trimmed(0, None)

    # Every group counts: one that has read nothing holds everything, and is named.
    await redis.xgroup_create(stream, "replayer", id="0")
    await redis.xack(stream, GROUP, e[1])
    assert await worker.streams.trim(partition) == Trimmed(0, "replayer")
    assert await stream_ids(redis, stream) == e[1:]
    await redis.xgroup_destroy(stream, "replayer")

    # Nothing pending: the bound is the last delivered entry (e3); e4, e5 stay.
    assert await worker.streams.trim(partition) == Trimmed(2, None)
    assert await stream_ids(redis, stream) == e[3:]

    # Within the retention period nothing goes, acknowledged or not.
    assert await ghost_read(redis, stream) == e[4:]
    await redis.xack(stream, GROUP, *e[4:])
    keeping = Worker(redis, mongo_db, fast_settings(retention=3600))
    assert await keeping.streams.trim(partition) == Trimmed(0, None)
    assert await stream_ids(redis, stream) == e[3:]
    assert await worker.streams.trim(partition) == Trimmed(2, None)
    assert await stream_ids(redis, stream) == e[5:]


async def test_running_worker_never_trims_entries_pending_on_a_crashed_consumer(
    wb: WriteBehind, start_worker: Any, mongo_db: Any, redis: Redis
) -> None:
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    crashed = {p: ids_in_partition(wb.keys, "users", p, 3, "held") for p in (0, 1)}
    for ids in crashed.values():
        for doc_id in ids:
            await users.set(doc_id, {"held": True})
    held = {p: await ghost_read(redis, wb.keys.stream(p), "crashed") for p in (0, 1)}

    # Claiming is far off; trimming runs every 0.1 s with no retention.
    worker: Worker = await start_worker(retention=0, trim_interval=0.1, claim_idle=60.0)
    later = [await users.set(f"u{i}", {"n": i}) for i in range(40)]
    for version in later:
        await users.wait_persisted(version, timeout=20)

    async def trimmed_elsewhere() -> bool:
        return max(await _lengths(redis, [wb.keys.stream(p) for p in (2, 3)])) <= 1

    await wait_until(trimmed_elsewhere, message="partitions 2 and 3 trimmed", timeout=10)
    for p in (0, 1):
        stream = wb.keys.stream(p)
        await worker.streams.trim(p)
        remaining = await stream_ids(redis, stream)
        assert remaining[: len(held[p])] == held[p]
        assert (await redis.xpending(stream, GROUP))["pending"] == len(held[p])


async def test_a_worker_warns_when_another_group_holds_trimming_back(
    wb: WriteBehind, start_worker: Any, redis: Redis
) -> None:
    users = wb.collection("users")
    [doc_id] = ids_in_partition(wb.keys, "users", 1, 1)
    await users.set(doc_id, {"n": 1})
    await redis.xgroup_create(wb.keys.stream(1), "abandoned", id="0")
    with structlog.testing.capture_logs() as logs:
        await start_worker(retention=0, trim_interval=0.1)
        await users.wait_persisted(await users.set(doc_id, {"n": 2}), timeout=20)

        async def warned() -> list[dict[str, Any]]:
            return [e for e in logs if e["event"] == "trim_held_back"]

        [first, *_] = await wait_until(warned, message="a trim_held_back warning")
    assert (first["partition"], first["group"], first["log_level"]) == (1, "abandoned", "warning")
    assert await redis.xlen(wb.keys.stream(1)) == 2  # nothing the other group has not read
