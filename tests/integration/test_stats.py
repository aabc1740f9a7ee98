"""``writebehind stats`` on real servers: the counts match what the test put there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.ledger import wait_settled
from tests.support.streams import GROUP, ghost_read, ids_in_partition, redis_now_ms
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.tools.stream_stats import collect

pytestmark = pytest.mark.anyio


async def write(wb: WriteBehind, partition: int, count: int, stem: str) -> None:
    docs = wb.collection("docs")
    for doc_id in ids_in_partition(wb.keys, "docs", partition, count, stem=stem):
        await docs.set(doc_id, {"n": 1})


async def test_stats_count_what_is_there(wb: WriteBehind, redis: Redis, cli: Cli) -> None:
    keys = wb.keys
    # Partition 0: an entry written 90 s ago, then 5 more; 4 read by ghost-a, 1 by ghost-b.
    old_ms = await redis_now_ms(redis) - 90_000
    await redis.xadd(keys.stream(0), {"op": "set"}, id=f"{old_ms}-0")
    await write(wb, 0, 5, "a")
    await redis.xgroup_create(keys.stream(0), GROUP, id="0")
    assert len(await ghost_read(redis, keys.stream(0), "ghost-a", count=4)) == 4
    assert len(await ghost_read(redis, keys.stream(0), "ghost-b", count=1)) == 1
    # Partition 1: 3 written, none read; 2 dead letters.
    await write(wb, 1, 3, "b")
    await redis.xgroup_create(keys.stream(1), GROUP, id="0")
    for _ in range(2):
        await redis.xadd(keys.dead_letters(1), {"op": "set"})
    # Partition 2: 4 written, 1 read, then an undelivered one deleted: Redis can no
    # longer say the lag, so stats counts it.
    await write(wb, 2, 4, "c")
    await redis.xgroup_create(keys.stream(2), GROUP, id="0")
    assert len(await ghost_read(redis, keys.stream(2), "ghost-a", count=1)) == 1
    last = (await redis.xrevrange(keys.stream(2), count=1))[0][0]
    assert await redis.xdel(keys.stream(2), last) == 1
    [info] = await redis.xinfo_groups(keys.stream(2))
    assert info["lag"] is None
    # Partition 3: 2 written, no worker ever read it (no group); 1 dead letter.
    await write(wb, 3, 2, "d")
    await redis.xadd(keys.dead_letters(3), {"op": "set"})

    stats = await collect(redis, keys, GROUP)

    p0, p1, p2, p3 = stats.partitions
    assert (p0.stream_length, p0.pending, p0.lag, p0.dead_letters) == (6, 5, 1, 0)
    assert (p1.stream_length, p1.pending, p1.lag, p1.dead_letters) == (3, 0, 3, 2)
    assert (p2.stream_length, p2.pending, p2.lag, p2.dead_letters) == (3, 1, 2, 0)
    assert (p3.stream_length, p3.pending, p3.lag, p3.dead_letters) == (2, 0, 2, 1)
    assert p2.lag_exact and stats.lag_exact
    assert (p0.group_exists, p1.group_exists, p2.group_exists, p3.group_exists) == (
        True, True, True, False,
    )  # fmt: skip
    assert p0.oldest_pending_id == f"{old_ms}-0"
    assert p0.oldest_pending_age is not None and 90 <= p0.oldest_pending_age < 120
    assert p1.oldest_pending_age is None and p1.consumers == ()
    assert p2.oldest_pending_age is not None and p2.oldest_pending_age < 30
    assert {c.name: c.pending for c in p0.consumers} == {"ghost-a": 4, "ghost-b": 1}
    assert all(0 <= c.idle_ms < 30_000 for c in p0.consumers)
    assert (stats.pending, stats.lag, stats.dead_letters, stats.stream_length) == (6, 8, 3, 14)
    assert stats.oldest_pending_age == p0.oldest_pending_age
    assert [(c.name, c.pending, c.partitions) for c in stats.consumers] == [
        ("ghost-a", 5, (0, 2)),
        ("ghost-b", 1, (0,)),
    ]

    shown = await cli("stats", "--json")
    assert shown.code == 0, shown.stderr
    body = shown.json()
    assert (body["pending"], body["lag"], body["dead_letters"]) == (6, 8, 3)
    assert body["stream_length"] == 14
    assert [p["pending"] for p in body["partitions"]] == [5, 0, 1, 0]
    assert [p["lag"] for p in body["partitions"]] == [1, 3, 2, 2]
    assert [p["dead_letters"] for p in body["partitions"]] == [0, 2, 0, 1]
    assert {c["name"]: c["pending"] for c in body["consumers"]} == {"ghost-a": 5, "ghost-b": 1}
    assert body["partitions"][0]["oldest_pending_age_s"] >= 90

    table = await cli("stats")
    assert table.code == 0, table.stderr
    total = next(line for line in table.stdout.splitlines() if line.startswith("total"))
    assert total.split()[1:4] == ["14", "6", "8"]
    assert "ghost-a" in table.stdout and "no group" in table.stdout


async def test_lag_counting_stops_at_its_cap(wb: WriteBehind, redis: Redis) -> None:
    await write(wb, 0, 6, "a")
    stream = wb.keys.stream(0)
    await redis.xgroup_create(stream, GROUP, id="0")
    assert len(await ghost_read(redis, stream, count=1)) == 1
    await redis.xdel(stream, (await redis.xrevrange(stream, count=1))[0][0])

    capped = await collect(redis, wb.keys, GROUP, lag_count_cap=3)
    exact = await collect(redis, wb.keys, GROUP, lag_count_cap=4)

    assert (capped.partitions[0].lag, capped.partitions[0].lag_exact) == (3, False)
    assert not capped.lag_exact
    assert (exact.partitions[0].lag, exact.partitions[0].lag_exact) == (4, True)


async def test_nothing_there_yet_reads_as_zeros(redis: Redis, cli: Cli) -> None:
    stats = await collect(redis, KeySpace(TEST_PREFIX, TEST_PARTITIONS), GROUP)

    assert (stats.pending, stats.lag, stats.dead_letters, stats.stream_length) == (0, 0, 0, 0)
    assert stats.consumers == ()
    assert stats.oldest_pending_age is None
    assert all(not p.group_exists for p in stats.partitions)
    shown = await cli("stats", "--json")
    assert shown.code == 0, shown.stderr
    body = shown.json()
    assert (body["pending"], body["lag"], body["dead_letters"]) == (0, 0, 0)
    assert len(body["partitions"]) == TEST_PARTITIONS


async def test_a_running_worker_shows_as_a_consumer_with_nothing_behind(
    wb: WriteBehind, start_worker: Callable[..., Any], mongo_db: Any, redis: Redis, cli: Cli
) -> None:
    await mongo_db.create_collection("docs", validator={"$jsonSchema": {"required": ["n"]}})
    worker = await start_worker()
    for partition in range(wb.keys.partitions):
        await write(wb, partition, 3, "w")
    await wb.collection("docs").set("poison", {"m": 1})
    await wait_settled(redis, wb.keys)

    async def letters() -> int:
        return (await collect(redis, wb.keys, GROUP)).dead_letters

    await wait_until(letters, message="the dead letter")
    stats = await collect(redis, wb.keys, GROUP)

    assert (stats.pending, stats.lag, stats.dead_letters) == (0, 0, 1)
    assert stats.stream_length == 13
    [consumer] = stats.consumers
    assert consumer.name == worker.settings.consumer
    assert consumer.pending == 0
    assert consumer.partitions == (0, 1, 2, 3)

    mismatch = await Cli(cli.redis_url, cli.mongo_url, cli.database, partitions=8)("stats")
    assert mismatch.code == 1
    assert "Redis records 4" in mismatch.stderr
