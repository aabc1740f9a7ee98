"""The invalidator's flush (its resume token was lost) fences the fills already loading.

A direct MongoDB write made while the token was unusable is never seen: the
flush that follows deletes the collection's clean entries, but a fill whose
``find`` read the old body before that write, and whose entry did not exist
yet, lands afterwards unless the flush marker refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.invalidator import lose_token, running_invalidator
from tests.support.reads import read_held_after_load
from tests.support.streams import cache_key
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind

pytestmark = pytest.mark.anyio


def _fills(outcome: str) -> float:
    labels = {"collection": "users", "level": "fill", "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


async def test_a_fill_loaded_before_a_lost_token_flush_never_lands(
    wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any
) -> None:
    """A's ``find`` reads f's old body and its reply is held back (A holds f's lease; f has
    no entry). f is written to MongoDB directly while the invalidator is away; it comes
    back with an unusable token, so it never sees that write and flushes ``users``
    instead. Then A's reply arrives: its fill must not put the old body in Redis."""
    await mongo_db.users.insert_one({"_id": "f", "n": 1, "_wb": {"v": [1, 0]}})
    key = cache_key(wb.keys, "users", "f")
    slow = ReadPolicy(lock_timeout=60.0, mongo_timeout=60.0)  # neither late nor timed out
    flushed = _fills("skip_flushed")
    held = read_held_after_load(
        redis, mongo_url, mongo_db.name, "flushed-reader", "users", "f", reads=slow
    )
    async with held as a:
        assert await redis.exists(key) == 0  # nothing for the flush to delete
        await mongo_db.users.update_one({"_id": "f"}, {"$set": {"n": 2}})  # missed
        await lose_token(redis, mongo_db.name)
        async with running_invalidator(redis, mongo_db, "users") as invalidator:
            assert invalidator.metrics.resyncs.labels("empty")._value.get() == 1
    # A's read began before the write: the old document is a right answer for it ...
    assert a.result == {"_id": "f", "n": 1}
    # ... but it must not stay in the cache, where no invalidation will ever reach it.
    assert await redis.hget(key, "d") is None
    assert _fills("skip_flushed") == flushed + 1
    assert await wb.collection("users").get("f") == {"_id": "f", "n": 2}


async def test_a_fill_loaded_after_the_flush_fills(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    """The marker refuses only loads begun before it: the next read after a flush fills."""
    await mongo_db.users.insert_one({"_id": "g", "n": 1, "_wb": {"v": [1, 0]}})
    users = wb.collection("users")
    await lose_token(redis, mongo_db.name)
    async with running_invalidator(redis, mongo_db, "users"):
        pass
    marker = wb.keys.flush_marker(wb.keys.partition_of("users", "g"), "users")
    flushed = int(await redis.get(marker))
    assert await redis.pttl(marker) == -1  # no TTL: a volatile-* policy never evicts it

    async def past() -> bool:  # a load begun in the marker's own ms is refused too
        seconds, micros = await redis.time()
        return int(seconds) * 1000 + int(micros) // 1000 > flushed

    await wait_until(past, timeout=1, interval=0.001, message="Redis time past the marker")
    filled = _fills("filled")
    assert await users.get("g") == {"_id": "g", "n": 1}
    assert _fills("filled") == filled + 1
    assert await redis.exists(cache_key(wb.keys, "users", "g")) == 1
