"""Fills are fenced by version: a load that started before a write never puts the old value back."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.reads import read_held_after_load, reader, slow_finds
from tests.support.servers import RedisServer
from tests.support.streams import cache_key, create_groups, running_worker
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import ConfigurationError

pytestmark = pytest.mark.anyio

OLD = {"_id": "u1", "name": "old", "_wb": {"v": [1, 0]}}


def _fills(outcome: str, collection: str = "users") -> float:
    """``writebehind_sdk_reads_total{level="fill"}`` for ``outcome`` so far."""
    labels = {"collection": collection, "level": "fill", "outcome": outcome}
    return REGISTRY.get_sample_value("writebehind_sdk_reads_total", labels) or 0.0


async def _slowed_miss_then(
    write: Any, wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> tuple[Any, Any]:
    """A misses u1 with its MongoDB read slowed; B writes meanwhile; then A's read returns.

    Returns what A's ``get`` returned and what B's write returned.
    """
    await mongo_db["users"].insert_one(dict(OLD))
    async with (
        reader(redis, mongo_url, mongo_db.name, "slow-reader") as (a, finds),
        slow_finds(mongo_client, "slow-reader", 1500),
    ):
        got: dict[str, Any] = {}

        async def a_reads() -> None:
            got["a"] = await a.collection("users").get("u1")

        async with anyio.create_task_group() as tg:
            tg.start_soon(a_reads)
            # A has sent its find (the fail point now holds it): B writes.
            await wait_until(lambda: _sent(finds), message="A's find sent")
            written = await write(wb.collection("users"))
        return got["a"], written


async def _sent(finds: Any) -> bool:
    return finds.count("users") > 0


async def test_a_fill_never_replaces_a_write_made_during_the_load(
    wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    async def write(users: Any) -> Any:
        return await users.set("u1", {"name": "new"})

    skipped = _fills("skip_dirty")
    a_saw, version = await _slowed_miss_then(write, wb, redis, mongo_url, mongo_db, mongo_client)
    assert _fills("skip_dirty") == skipped + 1  # counted by reason
    key = cache_key(wb.keys, "users", "u1")
    assert (await redis.hget(key, "v")).decode() == str(version)
    assert await redis.ttl(key) == -1  # still dirty: its write is not in MongoDB
    assert a_saw == {"_id": "u1", "name": "new"}  # A answers with the newer entry
    async with reader(redis, mongo_url, mongo_db.name, "later") as (c, _):
        assert await c.collection("users").get("u1") == {"_id": "u1", "name": "new"}
    assert await wb.collection("users").get("u1") == {"_id": "u1", "name": "new"}


async def test_a_fill_never_replaces_a_delete_made_during_the_load(
    wb: WriteBehind, redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    async def delete(users: Any) -> Any:
        return await users.delete("u1")

    skipped = _fills("skip_dirty")
    a_saw, version = await _slowed_miss_then(delete, wb, redis, mongo_url, mongo_db, mongo_client)
    assert _fills("skip_dirty") == skipped + 1
    key = cache_key(wb.keys, "users", "u1")
    assert await redis.hmget(key, ["v", "t"]) == [str(version).encode(), b"1"]
    assert await redis.ttl(key) == -1
    assert a_saw is None
    assert await wb.collection("users").get("u1") is None


async def test_a_miss_fills_a_clean_entry_with_the_stored_version(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "u2", "n": 1, "_wb": {"v": [7, 3]}})
    users = wb.collection("users", reads=ReadPolicy(ttl=100, ttl_jitter=0.5))
    assert await users.get("u2") == {"_id": "u2", "n": 1}
    key = cache_key(wb.keys, "users", "u2")
    assert await redis.hmget(key, ["v", "f", "t"]) == [b"7-3", b"1", None]
    assert 50 <= await redis.ttl(key) <= 100
    await mongo_db["users"].delete_one({"_id": "u2"})
    assert await users.get("u2") == {"_id": "u2", "n": 1}  # now served by the cache


async def test_a_tombstone_in_mongodb_reads_and_fills_as_absent(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "gone", "_wb": {"v": [9, 1], "deleted": True}})
    users = wb.collection("users")
    assert await users.get("gone") is None
    key = cache_key(wb.keys, "users", "gone")
    assert await redis.hmget(key, ["v", "a", "d"]) == [b"9-1", b"1", None]
    assert 0 < await redis.ttl(key) <= 30


async def test_negative_entries_are_replaced_by_the_next_write(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    users = wb.collection("users", reads=ReadPolicy(negative_ttl=3600, max_negative_ttl=20))
    assert await users.get("nobody") is None
    key = cache_key(wb.keys, "users", "nobody")
    assert await redis.hget(key, "a") == b"1"
    assert 0 < await redis.ttl(key) <= 20  # capped, whatever was asked
    # MongoDB gains it behind the cache's back: the negative entry still answers.
    await mongo_db["users"].insert_one({"_id": "nobody", "_wb": {"v": [1, 0]}})
    assert await users.get("nobody") is None
    # A write through any client replaces it at once.
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
        await other.collection("users").set("nobody", {"here": True})
    assert await users.get("nobody") == {"_id": "nobody", "here": True}
    await users.patch("nobody", {"more": 1})
    assert await users.get("nobody") == {"_id": "nobody", "here": True, "more": 1}


async def test_patch_of_a_negative_entry_creates_the_document(wb: WriteBehind) -> None:
    users = wb.collection("users")
    assert await users.get("p") is None  # a negative entry, version 0-0
    await users.patch("p", {"n": 1})
    assert await users.get("p") == {"_id": "p", "n": 1}


async def test_without_fill_nothing_is_stored(wb: WriteBehind, redis: Redis, mongo_db: Any) -> None:
    await mongo_db["users"].insert_one({"_id": "nf", "_wb": {"v": [1, 0]}})
    users = wb.collection("users", reads=ReadPolicy(fill=False))
    assert await users.get("nf") == {"_id": "nf"}
    assert await users.get("absent") is None
    assert await redis.exists(cache_key(wb.keys, "users", "nf")) == 0
    assert await redis.exists(cache_key(wb.keys, "users", "absent")) == 0


async def test_get_many_keeps_the_ids_as_given(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db["users"].insert_many(
        [
            {"_id": 42, "n": "int", "_wb": {"v": [1, 0]}},
            {"_id": "42", "n": "str", "_wb": {"v": [1, 0]}},
        ]
    )
    users = wb.collection("users")
    await users.set("u1", {"n": 1})
    got = await users.get_many(["u1", 42, "42", "none"])
    assert list(got) == ["u1", 42, "42", "none"]
    assert got == {
        "u1": {"_id": "u1", "n": 1},
        42: {"_id": 42, "n": "int"},
        "42": {"_id": "42", "n": "str"},
        "none": None,
    }
    assert await users.get_many([]) == {}
    # All three misses were filled: the next round is served by Redis alone.
    await mongo_db["users"].delete_many({})
    assert await users.get_many([42, "42"]) == {42: got[42], "42": got["42"]}


async def test_warm_fills_the_misses_and_counts_them(wb: WriteBehind, mongo_db: Any) -> None:
    await mongo_db["users"].insert_many([{"_id": f"w{i}", "_wb": {"v": [1, i]}} for i in range(3)])
    users = wb.collection("users")
    await users.set("w0", {"dirty": True})
    assert await users.warm(["w0", "w1", "w2"]) == 2
    assert await users.warm(["w0", "w1", "w2"]) == 0


async def test_policies_are_checked(wb: WriteBehind) -> None:
    for bad in (
        {"ttl": 0},
        {"ttl_jitter": 1.0},
        {"negative_ttl": -1},
        {"lock_timeout": 10, "ttl": 5},
        {"redis_timeout": float("nan")},
        {"breaker_failures": 0},
        {"fill": "yes"},
    ):
        with pytest.raises(ConfigurationError):
            ReadPolicy(**bad)
    with pytest.raises(ConfigurationError):
        wb.collection("users", reads={"ttl": 5})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        wb.collection("users", mode="write_around")


async def test_fill_outcomes_are_counted(wb: WriteBehind, mongo_db: Any) -> None:
    before = _fills("filled", "counted_fills")
    users = wb.collection("counted_fills")
    await users.get("x")
    await users.get("y")
    assert _fills("filled", "counted_fills") - before == 2


async def test_at_maxmemory_reads_answer_and_fill_nothing(
    redis_factory: Any, mongo_db: Any
) -> None:
    server = redis_factory()
    await mongo_db["users"].insert_one({"_id": "m", "n": 1, "_wb": {"v": [1, 0]}})
    async with WriteBehind(redis_url=server.url, mongo=mongo_db, prefix="t", partitions=4) as wb:
        await wb.redis.config_set("maxmemory", "1")
        users = wb.collection("users")
        assert await users.get("m") == {"_id": "m", "n": 1}
        assert await users.get_many(["m", "x"]) == {"m": {"_id": "m", "n": 1}, "x": None}
        assert await wb.redis.exists(cache_key(wb.keys, "users", "m")) == 0


async def test_a_fill_never_puts_back_an_older_version_over_an_evicted_write(
    wb: WriteBehind,
    redis: Redis,
    redis_server: RedisServer,
    mongo_url: str,
    mongo_db: Any,
) -> None:
    """A's ``find`` reads u1 at its old version and its reply is held back; B's write is
    persisted by a worker, its entry gets its clean TTL and Redis evicts it (a
    ``volatile-*`` policy; DEL stands in for the eviction); then A's reply arrives. A
    must not fill the version it read: MongoDB and every later read have a newer one."""
    await mongo_db["users"].insert_one(dict(OLD))
    await create_groups(redis, wb.keys)
    key = cache_key(wb.keys, "users", "u1")
    lost = _fills("skip_lease_lost")
    held = read_held_after_load(redis, mongo_url, mongo_db.name, "evicted-reader", "users", "u1")
    async with held as a:
        users = wb.collection("users")
        version = await users.set("u1", {"name": "new"})
        async with running_worker(redis_server.url, mongo_db):
            await users.wait_persisted(version)
        assert await redis.ttl(key) > 0  # clean now: volatile-* may evict it
        assert await redis.delete(key) == 1  # ... and does, before A's reply
    # A's read began before the write: the old document is a right answer for it ...
    assert a.result == {"_id": "u1", "name": "old"}
    assert _fills("skip_lease_lost") == lost + 1
    # ... but it must not stay in the cache for every later read.
    assert (await redis.hget(key, "v")) in (None, str(version).encode())
    assert await wb.collection("users").get("u1") == {"_id": "u1", "name": "new"}
