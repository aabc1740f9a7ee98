"""Cached computations whose function reads its dependencies through a near cache."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.sdk.near import NearCache
from writebehind.sdk.near.records import Eviction

pytestmark = pytest.mark.anyio

NEAR = NearCache(max_entries=100, ttl=60.0, max_stale=5.0)


async def test_a_near_copy_older_than_the_captured_version_is_not_computed_from(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    """Another process writes v2; this process's near-cache feed has not applied it yet
    (within ``max_stale``, so a plain read may still see v1). A computation captures v2
    and then reads the user through the near cache: it must not get v1, or the value made
    from v1 is stored under v2's stamp and served until its TTL (before: it was)."""
    held: list[Eviction] = []
    holding = False
    real_apply = wb.near.apply

    def apply(eviction: Eviction) -> None:  # the feed, slowed: records arrive late
        if holding:
            held.append(eviction)
        else:
            real_apply(eviction)

    wb.near.apply = apply  # type: ignore[method-assign]
    users = wb.collection("users", reads=ReadPolicy(near=NEAR))

    @wb.cached(ttl=300, key="p:{user_id}", depends_on=lambda user_id: [("users", user_id)])
    async def profile(user_id: str) -> Any:
        doc = await users.get(user_id)
        return None if doc is None else doc["n"]

    await users.set("x", {"n": 1})
    assert await profile("x") == 1

    async def ready() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(ready, timeout=10, message="the near-cache feed caught up")
    assert await users.get("x") == {"_id": "x", "n": 1}  # held near
    holding = True
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
        await other.collection("users").set("x", {"n": 2})

    async def read_by_the_feed() -> bool:
        return bool(held)

    await wait_until(read_by_the_feed, timeout=10, message="the feed read the other write")
    computed = await profile.validated("x")
    holding = False
    for eviction in held:
        real_apply(eviction)
    assert await users.get("x") == {"_id": "x", "n": 2}
    assert computed.value == 2
    assert await profile("x") == 2
