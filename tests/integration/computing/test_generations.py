"""Generations: they never move backwards, outlive their entries, and do not grow with them."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.computing import Gate, computed_count
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.sdk.computing.keys import (
    global_generation,
    namespace_generation,
    tag_generation,
)

pytestmark = pytest.mark.anyio


async def test_a_generation_never_moves_backwards(wb: WriteBehind, redis: Redis) -> None:
    gate = Gate()

    @wb.cached(ttl=300, key="k:{x}", tags=["t:{x}"], namespace="gens")
    async def f(x: str) -> Any:
        return await gate.run()

    assert await f("a") == "S1"
    key = tag_generation("t", "t:a")
    first = int(await redis.get(key) or 0)
    assert first > 0
    assert await redis.pttl(key) > 300_000  # outlives every entry that captured it

    # Concurrent invalidations: each moves it up by at least one (no read-then-write race).
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(wb.invalidate_tags, "t:a")
    after = int(await redis.get(key) or 0)
    assert after >= first + 50

    # Ahead of Redis's clock (a failover to a server whose clock is behind): still up by one.
    ahead = after + 10**12
    await redis.set(key, str(ahead), keepttl=True)
    await wb.invalidate_tags("t:a")
    assert int(await redis.get(key) or 0) == ahead + 1
    assert await redis.pttl(key) > 0  # the TTL is kept

    # Evicted: an absent generation is stale (recomputed), and the capture creates it anew.
    assert await f("a") == "S1"
    runs = gate.runs
    await redis.delete(key)
    gate.state = "S2"
    assert await f("a") == "S2"
    assert gate.runs == runs + 1
    assert await redis.exists(key) == 1
    assert await f("a") == "S2"
    assert gate.runs == runs + 1


async def test_ten_thousand_entries_under_one_tag_leave_nothing_that_grows(
    wb: WriteBehind, redis: Redis
) -> None:
    @wb.cached(ttl=1, key="k:{i}", tags=["big"], namespace="many")
    async def f(i: int) -> int:
        return i

    baseline = await redis.dbsize()
    tag = tag_generation("t", "big")
    for start in range(0, 10_000, 50):
        async with anyio.create_task_group() as tg:
            for i in range(start, start + 50):
                tg.start_soon(f, i)
        if start == 0:
            tag_bytes = await redis.memory_usage(tag)
    assert await redis.strlen(tag) == len(str(int(await redis.get(tag) or 0)))
    assert await redis.memory_usage(tag) == tag_bytes
    generations = [tag, namespace_generation("t", "many"), global_generation("t")]

    async def expired() -> bool:
        return bool(await redis.dbsize() == baseline + len(generations))

    await wait_until(expired, timeout=30, message="every entry expired")
    for key in generations:
        assert await redis.exists(key) == 1
    leftovers = [k async for k in redis.scan_iter(match="{t}:cv*")]
    assert leftovers == []  # no entry, lease or per-entry bookkeeping left


async def _damage(redis: Redis, key: str, how: str) -> None:
    """Make ``key`` something that is no generation counter."""
    await redis.delete(key)
    if how == "text":
        await redis.set(key, "not a number")
    elif how == "huge":  # 2^53: as a double, old + 1 == old, so a bump would not move it
        await redis.set(key, str(2**53))
    elif how == "hash":
        await redis.hset(key, "x", "1")
    else:
        await redis.rpush(key, "1")


@pytest.mark.parametrize("how", ["text", "huge", "hash", "list"])
@pytest.mark.parametrize("which", ["tag", "namespace", "global"])
async def test_a_generation_of_another_type_is_stale_and_reset(
    wb: WriteBehind, redis: Redis, how: str, which: str
) -> None:
    """Someone ``SET`` a generation key to text, or made it a hash: every call carrying it
    goes on working, nothing stamped under it is served, and it becomes a counter again."""
    gate = Gate()
    namespace = f"damaged-{which}-{how}"

    @wb.cached(ttl=300, key="k:{x}", tags=["dt:{x}"], namespace=namespace)
    async def f(x: str) -> Any:
        return await gate.run()

    key = {
        "tag": tag_generation("t", "dt:a"),
        "namespace": namespace_generation("t", namespace),
        "global": global_generation("t"),
    }[which]
    resets = computed_count("", "generation_reset")
    assert await f("a") == "S1"
    await _damage(redis, key, how)
    gate.state = "S2"
    assert await f("a") == "S2"  # stale: recomputed, not an error, not S1
    assert int(await redis.get(key) or 0) > 0  # a counter again (a fresh µs value)
    assert await f("a") == "S2"
    assert gate.runs == 2  # and values are stored under it again
    assert computed_count("", "generation_reset") - resets == 1

    # An invalidation of a damaged generation resets it too: what carried it is stale.
    await _damage(redis, key, how)
    if which == "namespace":
        await wb.bump_namespace(namespace)
    else:  # the global generation is bumped by the journal only: stale at the check
        await wb.invalidate_tags("dt:a")
    gate.state = "S3"
    assert await f("a") == "S3"
    assert gate.runs == 3
    assert computed_count("", "generation_reset") - resets == 2
