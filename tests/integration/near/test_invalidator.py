"""Writes that bypass the SDK: the invalidator evicts Redis and near caches, fences fills,
and resumes from its token (SecantusDB's change streams)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from tests.support.invalidator import (
    InvalidatorProcess,
    changes,
    lose_token,
    running_invalidator,
)
from tests.support.proxy import Proxy
from tests.support.servers import RedisServer
from tests.support.streams import cache_key
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.scripts_read import FILL
from writebehind.sdk.near import NearCache

pytestmark = pytest.mark.anyio

NEAR = NearCache(max_entries=100, ttl=60.0, max_stale=0.5)
POLICY = ReadPolicy(near=NEAR)
VISIBLE_WITHIN = 5.0
"""Seconds a direct write may take to reach get() (the test fails past it): the change
stream's delivery plus the invalidator plus the feed; ~10 ms measured, printed with -s."""


def _near_sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _seen(users: Any, doc_id: str, expected: Any) -> float:
    began = time.monotonic()

    async def current() -> bool:
        return await users.get(doc_id) == expected

    await wait_until(
        current, timeout=VISIBLE_WITHIN, interval=0.005, message=f"{doc_id} = {expected}"
    )
    return time.monotonic() - began


async def _held(wb: WriteBehind, users: Any, *ids: str) -> None:
    """Read ``ids`` into Redis and the near cache, with the feed caught up."""
    for doc_id in ids:
        await users.get(doc_id)

    async def ready() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(ready, timeout=10, message="the near-cache feed")
    for doc_id in ids:
        await users.get(doc_id)


async def test_direct_update_replace_and_delete_reach_redis_and_near_caches(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.users.insert_many(
        [{"_id": i, "n": 1, "_wb": {"v": [1, 0]}} for i in ("u", "r", "d")]
    )
    users = wb.collection("users", reads=POLICY)
    await _held(wb, users, "u", "r", "d")
    async with running_invalidator(redis, mongo_db, "users") as invalidator:
        took = {}
        # A $set of other fields leaves _wb as it was: the version cannot tell.
        await mongo_db.users.update_one({"_id": "u"}, {"$set": {"n": 2}})
        took["update_one"] = await _seen(users, "u", {"_id": "u", "n": 2})
        await mongo_db.users.replace_one({"_id": "r"}, {"n": 3, "_wb": {"v": [1, 0]}})
        took["replace_one"] = await _seen(users, "r", {"_id": "r", "n": 3})
        await mongo_db.users.delete_one({"_id": "d"})
        took["delete_one"] = await _seen(users, "d", None)
        print("direct write to get():", {k: round(v, 3) for k, v in took.items()})
        assert changes(invalidator, "users", "evicted") == 3
    assert (
        _near_sample(
            "writebehind_sdk_near_evictions_total", collection="users", cause="invalidation"
        )
        >= 3
    )


async def test_writebehinds_own_writes_evict_nothing(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any
) -> None:
    await start_worker()
    users = wb.collection("users")
    async with running_invalidator(redis, mongo_db, "users") as invalidator:
        for n in range(5):
            version = await users.set("own", {"n": n})
            await users.wait_persisted(version)

        async def handled() -> bool:
            return (
                changes(invalidator, "users", "same") + changes(invalidator, "users", "dirty") >= 5
            )

        await wait_until(handled, timeout=10, message="the worker's writes seen by the invalidator")
        assert changes(invalidator, "users", "evicted") == 0
        assert changes(invalidator, "users", "absent") == 0
        assert await redis.exists(cache_key(wb.keys, "users", "own")) == 1
        # A direct change to the same document is then evicted, though its _wb is unchanged.
        await mongo_db.users.update_one({"_id": "own"}, {"$set": {"n": 99}})
        await _seen(users, "own", {"_id": "own", "n": 99})
        assert changes(invalidator, "users", "evicted") == 1


async def test_a_dirty_entry_is_left_for_its_pending_write(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.users.insert_one({"_id": "p", "n": 1, "_wb": {"v": [1, 0]}})
    users = wb.collection("users")
    await users.set("p", {"n": 2})  # no worker: the entry stays dirty
    async with running_invalidator(redis, mongo_db, "users") as invalidator:
        await mongo_db.users.update_one({"_id": "p"}, {"$set": {"n": 3}})

        async def handled() -> bool:
            return changes(invalidator, "users", "dirty") == 1

        await wait_until(handled, timeout=10, message="the direct write handled")
        assert await users.get("p") == {"_id": "p", "n": 2}


class _AfterFind(monitoring.CommandListener):
    """When the reader's ``find`` has its reply, slow that reader's Redis link."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.armed = False
        self.found = anyio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.armed and event.command_name == "find":
            self.proxy.set_mode("latency")  # the fill now reaches Redis late
            self.found.set()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_fill_loaded_before_a_direct_write_loses_to_the_eviction_marker(
    redis: Redis, redis_server: RedisServer, mongo_db: Any, mongo_url: str, database_name: str
) -> None:
    # failCommand's blockConnection delays a find *before* it reads on SecantusDB, so the
    # slow find is made here by delaying its result instead: once the find has read the
    # old body, the reader's link to Redis slows, and its fill arrives after the change.
    await mongo_db.users.insert_one({"_id": "f", "n": 1, "_wb": {"v": [1, 0]}})
    await redis.script_load(FILL)  # no NOSCRIPT round trips on the slowed link
    async with Proxy("127.0.0.1", redis_server.port, latency=2.0) as proxy:
        listener = _AfterFind(proxy)
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            mongo_url, uuidRepresentation="standard", event_listeners=[listener]
        )
        try:
            async with (
                WriteBehind(
                    redis_url=f"redis://127.0.0.1:{proxy.port}",
                    mongo=client[database_name],
                    prefix="t",
                    partitions=4,
                    reads=ReadPolicy(redis_timeout=10.0, lock_timeout=10.0),
                ) as reader,
                running_invalidator(redis, mongo_db, "users") as invalidator,
            ):
                users = reader.collection("users")
                listener.armed = True
                async with anyio.create_task_group() as tg:
                    answer: list[Any] = []

                    async def read() -> None:
                        answer.append(await users.get("f"))

                    tg.start_soon(read)
                    with anyio.fail_after(10):
                        await listener.found.wait()
                    await mongo_db.users.update_one({"_id": "f"}, {"$set": {"n": 2}})

                    async def evicted() -> bool:
                        return changes(invalidator, "users", "absent") == 1

                    await wait_until(evicted, timeout=10, message="the eviction marker")
                assert answer == [{"_id": "f", "n": 1}]  # the read began before the change
                proxy.set_mode("pass")
                listener.armed = False
                # The old body was not put back: the next read loads the new one.
                assert await redis.exists(cache_key(reader.keys, "users", "f")) == 0
                assert await users.get("f") == {"_id": "f", "n": 2}
        finally:
            await client.close()
    skipped = _near_sample(
        "writebehind_sdk_reads_total", collection="users", level="fill", outcome="skip_evicted"
    )
    assert skipped >= 1


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[InvalidatorProcess]]:
    started: list[InvalidatorProcess] = []
    yield started
    for proc in started:
        proc.close()


async def test_killed_and_restarted_between_two_direct_writes_it_misses_neither(
    wb: WriteBehind,
    redis: Redis,
    redis_server: RedisServer,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    tmp_path: Path,
    processes: list[InvalidatorProcess],
) -> None:
    await mongo_db.users.insert_many([{"_id": i, "n": 1, "_wb": {"v": [1, 0]}} for i in "ab"])
    users = wb.collection("users", reads=POLICY)
    await _held(wb, users, "a", "b")

    def spawn() -> InvalidatorProcess:
        proc = InvalidatorProcess(redis_server.url, mongo_url, database_name, tmp_path / "inv.log")
        processes.append(proc)
        return proc.start()

    first = spawn()
    token_key = f"{{t}}:invalidator:{database_name}:token"

    async def watching() -> bool:
        return bool(await redis.exists(token_key))

    await wait_until(watching, timeout=30, message=f"a resume token: {first.output()}")
    await mongo_db.users.update_one({"_id": "a"}, {"$set": {"n": 2}})
    first.kill()
    await mongo_db.users.update_one({"_id": "b"}, {"$set": {"n": 2}})
    spawn()
    await _seen(users, "a", {"_id": "a", "n": 2})
    await _seen(users, "b", {"_id": "b", "n": 2})
    assert '"mode": "resume"' in processes[-1].output()


async def test_an_unusable_resume_token_empties_the_caches_and_says_so(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.users.insert_many(
        [{"_id": i, "n": 1, "_wb": {"v": [1, 0]}} for i in ("c1", "c2")]
    )
    users = wb.collection("users", reads=POLICY)
    await users.set("dirty", {"n": 1})  # no worker: stays dirty
    await _held(wb, users, "c1", "c2", "dirty")
    flushes = _near_sample(
        "writebehind_sdk_near_evictions_total", collection="users", cause="flush"
    )
    await lose_token(redis, mongo_db.name)
    with structlog.testing.capture_logs() as logs:
        async with running_invalidator(redis, mongo_db, "users") as invalidator:
            assert invalidator.metrics.resyncs.labels("empty")._value.get() == 1
            assert await redis.exists(cache_key(wb.keys, "users", "c1")) == 0
            assert await redis.exists(cache_key(wb.keys, "users", "c2")) == 0
            assert await redis.exists(cache_key(wb.keys, "users", "dirty")) == 1

            async def near_emptied() -> bool:
                return (
                    _near_sample(
                        "writebehind_sdk_near_evictions_total", collection="users", cause="flush"
                    )
                    > flushes
                )

            await wait_until(near_emptied, timeout=5, message="the near cache emptied")
            assert await users.get("dirty") == {"_id": "dirty", "n": 1}
    lost = [e for e in logs if e["event"] == "invalidator_resume_token_lost"]
    assert len(lost) == 1 and lost[0]["emptied_entries"] == 2, logs


async def test_catching_up_on_the_workers_old_writes_it_evicts_no_newer_entry(
    wb: WriteBehind, redis: Redis, mongo_db: Any, start_worker: Any
) -> None:
    await start_worker()
    users = wb.collection("users")
    async with running_invalidator(redis, mongo_db, "users") as first:

        async def token_saved() -> bool:
            return bool(await redis.exists(first.token_key))

        await wait_until(token_saved, timeout=10, message="a resume token in Redis")
    for n in range(5):  # while it is stopped, the worker writes five versions
        await users.wait_persisted(await users.set("lag", {"n": n}))
    async with running_invalidator(redis, mongo_db, "users") as invalidator:

        async def caught_up() -> bool:
            seen = sum(changes(invalidator, "users", o) for o in ("same", "dirty", "evicted"))
            return seen >= 5

        await wait_until(caught_up, timeout=10, message="the old changes handled")
        assert changes(invalidator, "users", "evicted") == 0
        assert await redis.exists(cache_key(wb.keys, "users", "lag")) == 1


async def test_a_direct_update_refilled_before_it_is_handled_still_reaches_near_caches(
    wb: WriteBehind, redis: Redis, mongo_db: Any
) -> None:
    # A near copy outlives its Redis entry (kept ttl seconds from the read, whatever the
    # entry's TTL left). A direct $set lands while the entry is gone, and another process
    # fills the new body before the invalidator handles the change: Redis then holds what
    # MongoDB holds, but this process's near copy is the old body under the same _wb.
    await mongo_db.users.insert_one({"_id": "g", "n": 1, "_wb": {"v": [1, 0]}})
    users = wb.collection("users", reads=POLICY)
    await _held(wb, users, "g")
    async with running_invalidator(redis, mongo_db, "users") as first:

        async def token_saved() -> bool:
            return bool(await redis.exists(first.token_key))

        await wait_until(token_saved, timeout=10, message="a resume token in Redis")
    entry = cache_key(wb.keys, "users", "g")
    await redis.pexpire(entry, 1)

    async def expired() -> bool:
        return not await redis.exists(entry)

    await wait_until(expired, timeout=5, message="the Redis entry expired")
    await mongo_db.users.update_one({"_id": "g"}, {"$set": {"n": 2}})
    async with WriteBehind(redis=redis, mongo=mongo_db, prefix="t", partitions=4) as other:
        assert await other.collection("users").get("g") == {"_id": "g", "n": 2}  # refilled
    async with running_invalidator(redis, mongo_db, "users") as invalidator:

        async def handled() -> bool:
            return sum(changes(invalidator, "users", o) for o in ("same", "evicted")) >= 1

        await wait_until(handled, timeout=10, message="the direct update handled")
        await _seen(users, "g", {"_id": "g", "n": 2})


async def test_its_lag_falls_back_to_zero_once_it_has_caught_up(
    redis: Redis, mongo_db: Any
) -> None:
    await mongo_db.users.insert_one({"_id": "l", "n": 1})
    async with running_invalidator(redis, mongo_db, "users") as first:

        async def token_saved() -> bool:
            return bool(await redis.exists(first.token_key))

        await wait_until(token_saved, timeout=10, message="a resume token in Redis")
    await mongo_db.users.update_one({"_id": "l"}, {"$set": {"n": 2}})
    await anyio.sleep(1.0)  # handled a second late, after a restart
    async with running_invalidator(redis, mongo_db, "users") as invalidator:

        def lag() -> float:
            return float(invalidator.metrics.lag._value.get())

        async def late() -> bool:
            return changes(invalidator, "users", "absent") == 1

        await wait_until(late, timeout=10, message="the change handled")
        assert lag() >= 0.9

        async def idle() -> bool:
            return lag() == 0.0

        await wait_until(idle, timeout=5, message="no lag reported once caught up")
