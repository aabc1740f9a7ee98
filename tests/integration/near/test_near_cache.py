"""The near cache in one process: no Redis command on a hit, own writes, trimming, no Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.proxy import Proxy
from tests.support.servers import RedisServer
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.keys import encode_id
from writebehind.sdk.near import NearCache
from writebehind.sdk.near.follower import Follower

pytestmark = pytest.mark.anyio

NEAR = NearCache(max_entries=100, ttl=60.0, max_stale=0.5)
POLICY = ReadPolicy(near=NEAR, redis_timeout=0.3, breaker_failures=3, breaker_cooldown=0.5)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _feed_ready(wb: WriteBehind) -> None:
    async def ready() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(ready, timeout=10, message="the near-cache feed caught up")


async def _command_calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


async def test_a_thousand_near_hits_send_no_redis_command(wb: WriteBehind, redis: Redis) -> None:
    users = wb.collection("users", reads=POLICY)
    await users.set("hot", {"n": 1})
    assert await users.get("hot") == {"_id": "hot", "n": 1}
    await _feed_ready(wb)
    assert await users.get("hot") == {"_id": "hot", "n": 1}
    hits = _sample("writebehind_sdk_near_reads_total", collection="users", outcome="hit")
    before = await _command_calls(redis)
    for _ in range(1000):
        assert await users.get("hot") == {"_id": "hot", "n": 1}
    after = await _command_calls(redis)
    # The feed's blocking XREAD goes on meanwhile, and INFO is this test's own.
    sent = {
        name: after[name] - before.get(name, 0)
        for name in after
        if after[name] != before.get(name, 0) and name not in ("cmdstat_xread", "cmdstat_info")
    }
    assert sent == {}, f"near-cache reads sent Redis commands: {sent}"
    near_hits = _sample("writebehind_sdk_near_reads_total", collection="users", outcome="hit")
    assert near_hits - hits == 1000


async def test_a_returned_document_cannot_change_the_copy_kept(wb: WriteBehind) -> None:
    users = wb.collection("users", reads=POLICY)
    await users.set("d", {"tags": ["a"]})
    await users.get("d")
    await _feed_ready(wb)
    doc = await users.get("d")
    assert doc is not None
    doc["tags"].append("mutated")
    assert await users.get("d") == {"_id": "d", "tags": ["a"]}


async def test_own_writes_are_read_at_once(
    redis_server: RedisServer, redis: Redis, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feed's link is slowed (proxy), so its record of each write comes long after the
    # write returns: only the write's own eviction lets the next read see it.
    near = NearCache(max_entries=100, ttl=60.0, max_stale=5.0)
    async with Proxy("127.0.0.1", redis_server.port, latency=0.3) as proxy:
        monkeypatch.setattr(
            "writebehind.sdk.near.layer.Follower",
            _follower_via(f"redis://{proxy.host}:{proxy.port}"),
        )
        proxy.set_mode("latency")
        async with WriteBehind(
            redis=redis, mongo=mongo_db, prefix="t", partitions=4, reads=ReadPolicy(near=near)
        ) as wb:
            users = wb.collection("users")
            await users.set("me", {"n": 1})
            await users.get("me")

            async def ready() -> bool:
                return wb.near.servable(near)

            await wait_until(ready, timeout=10, message="the near-cache feed caught up")
            assert await users.get("me") == {"_id": "me", "n": 1}
            hits = _sample("writebehind_sdk_near_reads_total", collection="users", outcome="hit")
            assert await users.get("me") == {"_id": "me", "n": 1}
            assert (
                _sample("writebehind_sdk_near_reads_total", collection="users", outcome="hit")
                == hits + 1
            )  # held, so a write must evict it
            for n in range(2, 20):
                await users.set("me", {"n": n})
                assert await users.get("me") == {"_id": "me", "n": n}
            await users.patch("me", {"m": 1})
            assert await users.get("me") == {"_id": "me", "n": 19, "m": 1}
            await users.delete("me")
            assert await users.get("me") is None
            await users.set_many([("me", {"n": 100})])
            assert await users.get("me") == {"_id": "me", "n": 100}


async def test_another_clients_write_evicts_through_the_feed(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    users = wb.collection("users", reads=POLICY)
    await users.set("x", {"n": 1})
    await users.get("x")
    await _feed_ready(wb)
    assert await users.get("x") == {"_id": "x", "n": 1}  # kept: the feed has its position
    evictions = _sample("writebehind_sdk_near_evictions_total", collection="users", cause="write")
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
        await other.collection("users").set("x", {"n": 2})

    async def newest() -> bool:
        return await users.get("x") == {"_id": "x", "n": 2}

    await wait_until(newest, timeout=5, interval=0.005, message="the other client's write")
    assert (
        _sample("writebehind_sdk_near_evictions_total", collection="users", cause="write")
        > evictions
    )


async def test_warm_fills_both_levels(wb: WriteBehind, redis: Redis, mongo_db: Any) -> None:
    await mongo_db.users.insert_many([{"_id": f"w{i}", "n": i} for i in range(5)])
    users = wb.collection("users", reads=POLICY)
    await _feed_ready_after_start(wb, users)
    assert await users.warm([f"w{i}" for i in range(5)]) == 5
    before = await _command_calls(redis)
    for i in range(5):
        assert await users.get(f"w{i}") == {"_id": f"w{i}", "n": i}
    after = await _command_calls(redis)
    assert after.get("cmdstat_hmget", 0) == before.get("cmdstat_hmget", 0)
    keys = [k async for k in redis.scan_iter(match="{t:p*}:doc:5:users:sw*")]
    assert len(keys) == 5


async def test_warm_as_the_first_call_fills_the_near_cache_too(redis: Redis, mongo_db: Any) -> None:
    # Warming at start-up is what warm is for: before any read has started the feed.
    await mongo_db.users.insert_many([{"_id": f"s{i}", "n": i} for i in range(5)])
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as wb:
        users = wb.collection("users", reads=POLICY)
        assert await users.warm([f"s{i}" for i in range(5)]) == 5
        assert len(wb.near.store("users", NEAR)) == 5
        await _feed_ready(wb)
        before = await _command_calls(redis)
        for i in range(5):
            assert await users.get(f"s{i}") == {"_id": f"s{i}", "n": i}
        after = await _command_calls(redis)
        assert after.get("cmdstat_hmget", 0) == before.get("cmdstat_hmget", 0)


async def _feed_ready_after_start(wb: WriteBehind, users: Any) -> None:
    await users.get("nothing")  # the first near read starts the feed
    await _feed_ready(wb)


async def test_a_trimmed_feed_position_empties_the_near_cache(
    redis_server: RedisServer, redis: Redis, mongo_db: Any
) -> None:
    async with Proxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}"
        async with WriteBehind(
            redis_url=url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY
        ) as wb:
            users = wb.collection("users")
            await users.set("a", {"n": 1})
            await users.get("a")
            await _feed_ready(wb)
            await users.get("a")
            held = wb.near.store("users", NEAR)
            assert len(held) == 1
            empties = _sample("writebehind_sdk_near_resyncs_total", mode="empty")
            proxy.set_mode("drop")  # the feed is cut off...
            # ...while another process writes and the stream is trimmed past its position.
            async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
                await other.collection("users").set("b", {"n": 1})
                for stream in other.keys.streams():
                    await redis.xtrim(stream, maxlen=0)
            proxy.set_mode("pass")

            async def emptied() -> bool:
                return _sample("writebehind_sdk_near_resyncs_total", mode="empty") > empties

            await wait_until(emptied, timeout=10, message="a resync that empties the near cache")
            assert len(held) == 0
            assert _sample(
                "writebehind_sdk_near_evictions_total", collection="users", cause="resync"
            )

            async def served() -> bool:  # (the first read after the cut may be degraded)
                return await users.get("a") == {"_id": "a", "n": 1}

            await wait_until(served, timeout=10, message="the document from Redis again")
            assert len(held) == 1


async def test_the_feed_lag_falls_back_to_zero_once_the_feed_is_idle(
    redis_server: RedisServer, redis: Redis, mongo_db: Any
) -> None:
    # A backlog read after an outage is late; an idle feed afterwards is not: the gauge
    # must not keep the backlog's lag until the next write, whenever that comes.
    async with Proxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}"
        async with WriteBehind(
            redis_url=url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY
        ) as wb:
            users = wb.collection("users")
            await users.get("a")
            await _feed_ready(wb)
            proxy.set_mode("drop")
            async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
                await other.collection("users").set("a", {"n": 1})
            await anyio.sleep(1.0)
            proxy.set_mode("pass")

            async def caught_up_late() -> bool:
                return _sample("writebehind_sdk_near_feed_lag_seconds") >= 0.9

            await wait_until(caught_up_late, timeout=10, message="the backlog applied, late")

            async def idle() -> bool:
                return _sample("writebehind_sdk_near_feed_lag_seconds") == 0.0

            await wait_until(idle, timeout=5, message="no lag reported by an idle feed")


async def test_with_redis_unreachable_nothing_older_than_max_stale_is_served(
    redis_factory: Callable[..., RedisServer], mongo_db: Any
) -> None:
    server = redis_factory()
    await mongo_db.users.insert_one({"_id": "m", "n": 1, "_wb": {"v": [1, 0]}})
    async with WriteBehind(
        redis_url=server.url, mongo=mongo_db, prefix="t", partitions=4, reads=POLICY
    ) as wb:
        users = wb.collection("users")
        assert await users.get("m") == {"_id": "m", "n": 1}
        await _feed_ready(wb)
        assert await users.get("m") == {"_id": "m", "n": 1}
        # A change Redis never hears of (written to MongoDB directly), then Redis freezes.
        await mongo_db.users.update_one({"_id": "m"}, {"$set": {"n": 2}})
        stale = _sample("writebehind_sdk_near_reads_total", collection="users", outcome="stale")
        server.pause()
        try:
            await anyio.sleep(NEAR.max_stale + 0.1)
            for _ in range(5):
                assert await users.get("m") == {"_id": "m", "n": 2}  # MongoDB, not the near cache
            assert (
                _sample("writebehind_sdk_near_reads_total", collection="users", outcome="stale")
                >= stale + 5
            )
        finally:
            server.resume()


async def test_a_reply_overtaken_by_a_newer_write_is_not_kept(
    redis_server: RedisServer, redis: Redis, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race pub/sub-based near caches lose: Redis answers a read with n=2, then n=3 is
    # written and its eviction reaches the near cache before the n=2 reply does. The
    # reader's link holds the reply back (proxy); its feed connects directly.
    direct = redis_server.url
    monkeypatch.setattr("writebehind.sdk.near.layer.Follower", _follower_via(direct))
    async with (
        Proxy("127.0.0.1", redis_server.port) as proxy,
        WriteBehind(
            redis_url=f"redis://127.0.0.1:{proxy.port}",
            mongo=mongo_db,
            prefix="t",
            partitions=4,
            reads=ReadPolicy(near=NEAR, redis_timeout=10.0, lock_timeout=5.0),
        ) as wb,
        WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other,
    ):
        users, writer = wb.collection("users"), other.collection("users")
        await writer.set("race", {"n": 1})
        await users.get("race")
        await _feed_ready(wb)
        await writer.set("race", {"n": 2})  # the near cache holds nothing now
        store, key = wb.near.store("users", NEAR), encode_id("race")
        proxy.hold_replies(b"race")
        async with anyio.create_task_group() as tg:
            answers: list[Any] = []

            async def read() -> None:
                answers.append(await users.get("race"))

            async def answered() -> bool:  # Redis has answered n=2; the reply is held back
                return proxy.held > 0

            tg.start_soon(read)
            await wait_until(answered, timeout=10, message="Redis answering the read")
            newest = await writer.set("race", {"n": 3})

            async def evicted_meanwhile() -> bool:  # the feed applied n=3 to the open read
                tickets = store._open.get(key, [])
                return any(t.newest_seen is not None and t.newest_seen >= newest for t in tickets)

            await wait_until(evicted_meanwhile, timeout=10, message="the feed applying n=3")
            proxy.release_replies()
        assert answers == [{"_id": "race", "n": 2}]  # the read began before n=3
        held = store.get(key, time.monotonic())
        assert held is None or held.version >= newest, "the overtaken reply was kept"
        assert await users.get("race") == {"_id": "race", "n": 3}


def _follower_via(url: str) -> Any:
    """``Follower`` with its connection to ``url`` instead of the client's own Redis."""

    class Direct(Follower):
        def __init__(self, redis: Redis, *args: Any) -> None:
            super().__init__(Redis.from_url(url), *args)

    return Direct
