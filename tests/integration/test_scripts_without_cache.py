"""Every script call survives a script cache emptied at any moment, even right before it.

Through ``FlushingProxy`` every ``EVALSHA`` meets an empty script cache, also one
sent again just after redis-py loaded its script or checked a pipeline's: SDK
writes, reads and cached computations, the worker's acks, dead-letter moves and
trimming, ``replay``, ``dlq replay`` (refused again) and ``dlq purge`` all still
do their work, and nothing is reported refused that was made.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.script_flusher import FlushingProxy
from tests.support.servers import RedisServer
from tests.support.streams import dead_letters, pending_total
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.keys import KeySpace
from writebehind.errors import NotReplicated
from writebehind.sink.bulk import MongoSink
from writebehind.tools.dead_letters import Redriver, iter_letters, purge
from writebehind.tools.replay import ReplayOptions, ReplayRange, replay

pytestmark = pytest.mark.anyio

KEYS = KeySpace(TEST_PREFIX, TEST_PARTITIONS)
REQUIRE_NAME = {"$jsonSchema": {"bsonType": "object", "required": ["name"]}}


async def test_sdk_calls_survive_an_always_empty_script_cache(
    redis_server: RedisServer, mongo_url: str, database_name: str, start_worker: Any
) -> None:
    await start_worker()  # direct: only the SDK's calls meet the flushes
    async with FlushingProxy(redis_server) as flushing:
        options: dict[str, Any] = {"prefix": TEST_PREFIX, "partitions": TEST_PARTITIONS}
        async with WriteBehind(flushing.url, mongo_url, database_name, **options) as wb:
            users = wb.collection("users")

            @wb.cached(ttl=60, tags=["t"], depends_on=lambda n: [("users", n)])
            async def profile(n: str) -> Any:
                return await users.get(n)

            await users.set("u1", {"n": 1})
            (v2, _) = await users.set_many([("u2", {"n": 2}), ("u3", {"n": 3})])
            await users.patch("u1", {"p": 1})
            await users.modify("u3", lambda d: {**(d or {}), "m": 1})
            await users.delete("u3")
            assert await users.get("absent") is None  # a miss: lease and fill scripts
            assert await users.get_many(["u1", "u2", "absent2"]) == {
                "u1": {"_id": "u1", "n": 1, "p": 1},
                "u2": {"_id": "u2", "n": 2},
                "absent2": None,
            }
            await users.warm(["absent3"])
            assert await users.version("u2") == v2
            assert (await users.get_versioned("u2")).version == v2
            assert await profile("u1") == {"_id": "u1", "n": 1, "p": 1}
            await profile.invalidate("u1")
            await profile.refresh("u1")
            await wb.invalidate_tags("t")
            await wb.bump_namespace("ns")
            await users.wait_persisted(v2, timeout=20)
        # A write waiting for replicas goes in a pipeline with WAIT.
        waiting = {**options, "wait_replicas": 1, "wait_timeout": 0.05}
        async with WriteBehind(flushing.url, mongo_url, database_name, **waiting) as wb:
            users = wb.collection("users")
            for call in (
                lambda: users.set("r1", {"n": 1}),
                lambda: users.set_many([("r2", {"n": 2}), ("r3", {"n": 3})]),
            ):
                with pytest.raises(NotReplicated) as info:  # no replica: made, not replicated
                    await call()
                for version in info.value.versions:
                    await users.wait_persisted(version, timeout=20)
        assert flushing.flushes >= 20


async def test_the_worker_acks_dead_letters_and_trims_with_an_always_empty_script_cache(
    wb: WriteBehind, redis: Redis, redis_server: RedisServer, mongo_db: Any, start_worker: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    versions = [
        await people.set(f"p{n}", {"name": f"n{n}"} if n % 10 else {"nickname": "refused"})
        for n in range(40)
    ]
    async with FlushingProxy(redis_server) as flushing:
        worker = await start_worker(
            redis_url=flushing.url, retention=0, trim_interval=0.1, claim_idle=60.0
        )
        for n, version in enumerate(versions):
            if n % 10:
                await people.wait_persisted(version, timeout=20)
        await wait_until(lambda: _letters(redis, 4), timeout=20, message="4 dead letters")
        await wait_until(lambda: _nothing_pending(redis), timeout=20, message="all acked")
        await wait_until(lambda: _trimmed(worker), timeout=20, message="streams trimmed")
        assert flushing.flushes > 0
    assert worker.stats.claimed == 0  # nothing was left pending by a failed pipeline
    assert worker.stats.dead_lettered == 4


async def test_replay_and_dlq_survive_an_always_empty_script_cache(
    wb: WriteBehind, redis: Redis, redis_server: RedisServer, mongo_db: Any
) -> None:
    await mongo_db.create_collection("people", validator=REQUIRE_NAME)
    people = wb.collection("people")
    await people.set("ok", {"name": "Ada"})
    await people.set("bad", {"nickname": "refused"})  # no worker: replay applies both
    async with FlushingProxy(redis_server) as flushing:
        proxied = Redis.from_url(flushing.url)
        try:
            result = await replay(
                proxied,
                MongoSink(mongo_db, prefix=KEYS.prefix),
                KEYS,
                ReplayOptions(ReplayRange.parse("0", None)),
            )
            assert result.dead_lettered == 1
            assert await mongo_db["people"].find_one({"_id": "ok"}, {"_wb": 0}) == {
                "_id": "ok",
                "name": "Ada",
            }
            (letter,) = [letter async for letter in iter_letters(redis, KEYS)]
            (outcome,) = await Redriver(proxied, mongo_db, KEYS).redrive([letter])
            assert outcome.new_id is not None  # refused again: the letter was replaced
            assert len(await dead_letters(redis, KEYS)) == 1
            assert await purge(proxied, KEYS, [outcome.new_id]) == 1
            assert await dead_letters(redis, KEYS) == []
            assert flushing.flushes >= 3
        finally:
            await proxied.aclose()


async def _letters(redis: Redis, count: int) -> bool:
    return len(await dead_letters(redis, KEYS)) == count


async def _nothing_pending(redis: Redis) -> bool:
    return await pending_total(redis, KEYS) == 0


async def _trimmed(worker: Any) -> bool:
    return bool(worker.stats.trimmed > 0)
