"""Life without Redis: reads answer from MongoDB, writes fail fast and typed, then recover."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.support.servers import RedisServer
from tests.support.streams import cache_key
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable

pytestmark = pytest.mark.anyio

POLICY = ReadPolicy(redis_timeout=0.3, breaker_failures=3, breaker_cooldown=0.5)
# Well under the 10 s socket timeout a write would otherwise wait out.
FAIL_FAST = 5.0


def _count(collection: str, level: str, outcome: str) -> float:
    labels = {"collection": collection, "level": level, "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


async def _outage(
    redis_factory: Callable[..., RedisServer],
    mongo_db: Any,
    collection: str,
    stop: Callable[[RedisServer], None],
    restore: Callable[[RedisServer], None],
) -> None:
    server = redis_factory()
    await mongo_db[collection].insert_one({"_id": "m", "n": 1, "_wb": {"v": [1, 0]}})
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY
    ) as wb:
        users = wb.collection(collection)
        await users.set("r", {"n": 2})
        assert await users.get("m") == {"_id": "m", "n": 1}  # filled

        stop(server)
        opened, closed = _count("", "breaker", "opened"), _count("", "breaker", "closed")
        degraded = _count(collection, "degraded", "hit")
        for _ in range(5):  # the first few wait redis_timeout; then the breaker is open
            began = time.monotonic()
            assert await users.get("m") == {"_id": "m", "n": 1}
            assert time.monotonic() - began < FAIL_FAST  # not the 10 s socket timeout
        assert await users.get_many(["m", "nope"]) == {"m": {"_id": "m", "n": 1}, "nope": None}
        assert _count(collection, "degraded", "hit") - degraded == 6
        assert wb.redis_guard.breaker.state == "open"
        assert _count("", "breaker", "opened") == opened + 1

        for doc_id in ("w1", "w2"):
            began = time.monotonic()
            with pytest.raises(CacheUnavailable) as refused:
                await users.set(doc_id, {"n": 3})
            assert time.monotonic() - began < FAIL_FAST
        assert refused.value.written is False  # the open breaker sent nothing
        with pytest.raises(CacheUnavailable):
            await users.patch("m", {"n": 4})
        with pytest.raises(CacheUnavailable):
            await users.delete("m")

        restore(server)

        async def served_by_redis() -> bool:
            # (A killed Redis without persistence comes back empty: the first
            # read after it fills the entry again, the next is served by it.)
            before = _count(collection, "redis", "hit")
            assert await users.get("m") == {"_id": "m", "n": 1}
            return _count(collection, "redis", "hit") > before

        await wait_until(served_by_redis, timeout=30, message="reads from Redis again")
        assert wb.redis_guard.breaker.state == "closed"
        assert _count("", "breaker", "closed") == closed + 1
        await users.set("w2", {"n": 5})
        assert await users.get("w2") == {"_id": "w2", "n": 5}
        # Refused writes were never made: no entry for w1.
        assert await wb.redis.exists(cache_key(wb.keys, collection, "w1")) == 0


async def test_redis_frozen(redis_factory: Callable[..., RedisServer], mongo_db: Any) -> None:
    await _outage(redis_factory, mongo_db, "frozen", RedisServer.pause, RedisServer.resume)


async def test_redis_killed(redis_factory: Callable[..., RedisServer], mongo_db: Any) -> None:
    await _outage(redis_factory, mongo_db, "killed", RedisServer.kill, RedisServer.start)


async def test_a_write_redis_does_not_answer_fails_fast(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    """With the breaker closed, a frozen Redis costs a write ``redis_timeout``, not 10 s."""
    server = redis_factory()
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY
    ) as wb:
        users = wb.collection("users")
        await users.set("a", {"n": 1})
        server.pause()
        try:
            began = time.monotonic()
            with pytest.raises(CacheUnavailable) as unanswered:
                await users.set("a", {"n": 2})
            assert time.monotonic() - began < FAIL_FAST
            assert unanswered.value.written is None  # sent: made whole or not at all
        finally:
            server.resume()
