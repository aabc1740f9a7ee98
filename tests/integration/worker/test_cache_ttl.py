"""A cache entry gets its TTL only once its version is in MongoDB; dirty entries never expire."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.servers import RedisServer
from tests.support.streams import (
    cache_key,
    create_groups,
    dead_letters,
    drained,
    fail_point,
    ghost_read,
    pending_total,
    replay_fields,
    running_worker,
    stored_version,
    stream_of,
)
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

CLEAN_TTL = 120


async def _ttl_set(redis: Redis, key: str) -> int:
    ttl = int(await redis.ttl(key))
    return ttl if ttl > 0 else 0


async def test_entries_written_while_no_worker_runs_stay_dirty_until_persisted(
    wb: WriteBehind, redis_server: RedisServer, mongo_db: Any, redis: Redis
) -> None:
    users = wb.collection("users")
    a, b = cache_key(wb.keys, "users", "a"), cache_key(wb.keys, "users", "b")
    async with running_worker(redis_server.url, mongo_db, clean_ttl=CLEAN_TTL):
        first = await users.set("a", {"n": 1})
        await users.wait_persisted(first, timeout=20)
        assert 0 < await wait_until(lambda: _ttl_set(redis, a), message="clean TTL") <= CLEAN_TTL

    # No worker: a rewrite of a clean entry drops its TTL, a new entry has none.
    second = await users.set("a", {"n": 2})
    new = await users.set("b", {"n": 1})
    assert await redis.ttl(a) == -1
    assert await redis.ttl(b) == -1
    gone = await users.delete("b")
    assert await redis.ttl(b) == -1

    async with running_worker(redis_server.url, mongo_db, clean_ttl=CLEAN_TTL):
        for version in (second, new, gone):
            await users.wait_persisted(version, timeout=20)
        assert await wait_until(lambda: _ttl_set(redis, a), message="clean TTL") <= CLEAN_TTL
        assert await wait_until(lambda: _ttl_set(redis, b), message="clean TTL") <= CLEAN_TTL


@pytest.mark.parametrize(
    "failure",
    [
        {"failCommands": ["update"], "errorCode": 50},
        # Applied but not confirmed: still not clean.
        {"failCommands": ["update"], "writeConcernError": {"code": 64, "errmsg": "timed out"}},
    ],
    ids=["max_time_expired", "write_concern_error"],
)
async def test_entries_stay_dirty_and_pending_while_mongodb_fails(
    failure: dict[str, Any],
    wb: WriteBehind,
    start_worker: Any,
    mongo_client: Any,
    redis: Redis,
) -> None:
    worker: Worker = await start_worker(clean_ttl=CLEAN_TTL)
    users = wb.collection("users")
    a, b = cache_key(wb.keys, "users", "a"), cache_key(wb.keys, "users", "b")
    first = await users.set("a", {"n": 1})
    await users.wait_persisted(first, timeout=20)
    await wait_until(lambda: _ttl_set(redis, a), message="clean TTL")

    async with fail_point(mongo_client, "alwaysOn", failure):
        second = await users.set("a", {"n": 2})
        new = await users.set("b", {"n": 1})
        retried = worker.stats.retried

        async def retrying() -> bool:
            return worker.stats.retried >= retried + 6

        await wait_until(retrying, message="several failed attempts", timeout=20)
        assert await redis.ttl(a) == -1
        assert await redis.ttl(b) == -1
        assert await pending_total(redis, wb.keys) == 2
        assert await dead_letters(redis, wb.keys) == []

    await users.wait_persisted(second, timeout=20)
    await users.wait_persisted(new, timeout=20)
    assert 0 < await wait_until(lambda: _ttl_set(redis, a), message="clean TTL") <= CLEAN_TTL
    assert 0 < await wait_until(lambda: _ttl_set(redis, b), message="clean TTL") <= CLEAN_TTL
    assert await users.get("a") == {"_id": "a", "n": 2}
    assert worker.stats.dead_lettered == 0


async def test_replayed_copy_of_the_newest_write_cleans_the_entry(
    wb: WriteBehind, start_worker: Any, redis: Redis
) -> None:
    """A replay of a range the worker has not persisted yet: the copy carries version v."""
    users = wb.collection("users")
    version = await users.set("a", {"n": 1})
    stream = wb.keys.stream(wb.keys.partition_of("users", "a"))
    [(_, fields)] = await redis.xrange(stream)
    await redis.xadd(stream, replay_fields("set", "users", fields[b"d"], version))

    worker: Worker = await start_worker(clean_ttl=CLEAN_TTL)
    await users.wait_persisted(version, timeout=20)
    await wait_until(lambda: drained(redis, wb.keys), message="both records acknowledged")
    # The counter moves once the ack pipeline has returned, just after Redis shows it.
    assert await wait_until(lambda: _value(worker.stats.persisted == 2), message="2 persisted")
    key = cache_key(wb.keys, "users", "a")
    assert 0 < await wait_until(lambda: _ttl_set(redis, key), message="clean TTL") <= CLEAN_TTL


async def test_persisting_an_older_version_leaves_a_newer_dirty_entry_without_ttl(
    wb: WriteBehind,
    start_worker: Any,
    redis_server: RedisServer,
    mongo_url: str,
    database_name: str,
    mongo_db: Any,
    mongo_client: Any,
    redis: Redis,
) -> None:
    """Two workers: one persists v1 while the other still retries v2 (the entry's version)."""
    await create_groups(redis, wb.keys)
    users = wb.collection("users")
    key, stream = cache_key(wb.keys, "users", "a"), stream_of(wb.keys, "users", "a")
    older = await users.set("a", {"n": 1})
    newer = await users.set("a", {"n": 2})
    # A consumer took v1 and died; v2 is not delivered yet.
    assert await ghost_read(redis, stream, count=1) == [str(older).encode()]

    # "slow" reaches MongoDB through a client the fail point singles out.
    blocked: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, uuidRepresentation="standard", appname="blocked"
    )
    failing = {"failCommands": ["update"], "errorCode": 50, "appName": "blocked"}
    await mongo_client.admin.command(
        "configureFailPoint", "failCommand", mode="alwaysOn", data=failing
    )
    try:
        # It keeps v2's idle time low (heartbeats), so only v1 is claimable.
        async with running_worker(
            redis_server.url,
            blocked[database_name],
            consumer="slow",
            claim_idle=0.6,
            backoff_cap=0.05,
        ) as slow:
            await wait_until(lambda: _retried(slow), message="slow worker holding v2")
            fast: Worker = await start_worker(consumer="fast", clean_ttl=CLEAN_TTL)
            await wait_until(lambda: _persisted(fast), message="v1 claimed and persisted")
            assert fast.stats.claimed == 1
            assert await stored_version(mongo_db["users"], "a") == older
            assert await redis.ttl(key) == -1
            assert await users.get("a") == {"_id": "a", "n": 2}

            await mongo_client.admin.command("configureFailPoint", "failCommand", mode="off")
            await users.wait_persisted(newer, timeout=20)
            assert await wait_until(lambda: _ttl_set(redis, key), message="clean TTL") > 0
    finally:
        await mongo_client.admin.command("configureFailPoint", "failCommand", mode="off")
        await blocked.close()


async def _retried(worker: Worker) -> bool:
    return worker.stats.retried > 0


async def _persisted(worker: Worker) -> bool:
    return worker.stats.persisted > 0


async def _value(value: bool) -> bool:
    return value
