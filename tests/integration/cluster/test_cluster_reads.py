"""The read side on a Redis Cluster: batched reads, a fill lease across clients, script reloads."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.cluster import CLUSTER_PARTITIONS
from tests.support.config import TEST_PREFIX
from tests.support.reads import FindCounter, slow_finds
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind

pytestmark = pytest.mark.anyio


async def test_get_many_reads_entries_of_every_master(cluster_wb: WriteBehind) -> None:
    users = cluster_wb.collection("users")
    ids = [f"u{i}" for i in range(40)]
    for doc_id in ids:
        await users.set(doc_id, {"n": doc_id})
    found = await users.get_many([*ids, "missing"])
    assert {k: v["n"] for k, v in found.items() if v is not None} == {i: i for i in ids}
    assert found["missing"] is None


async def test_one_fill_for_two_clients_whose_waiter_is_woken_by_pubsub(
    cluster_redis: Redis, mongo_url: str, mongo_db: Any, mongo_client: Any
) -> None:
    await mongo_db["users"].insert_one({"_id": "cold", "n": 1})
    counters = [FindCounter(), FindCounter()]
    clients: list[AsyncMongoClient[Any]] = [
        AsyncMongoClient(mongo_url, appname=f"cl{i}", event_listeners=[c])
        for i, c in enumerate(counters)
    ]
    # The loader's find takes 1.5 s; a waiter not woken by the fill's announcement
    # would give up after lock_timeout (4 s)... so it must be woken, not time out.
    policy = ReadPolicy(lock_timeout=4.0, ttl=60.0)
    results: list[Any] = [None, None]
    try:
        async with slow_finds(mongo_client, "cl0", 1500, {"times": 1}):
            wbs = [
                WriteBehind(
                    redis=cluster_redis,
                    mongo=c[mongo_db.name],
                    prefix=TEST_PREFIX,
                    partitions=CLUSTER_PARTITIONS,
                    reads=policy,
                )
                for c in clients
            ]

            async def get(i: int) -> None:
                if i:  # once the first client holds the lease
                    keys = wbs[0].keys
                    lease = keys.lease(keys.partition_of("users", "cold"), "users", "cold")

                    async def leased() -> bool:
                        return bool(await cluster_redis.exists(lease))

                    await wait_until(leased, timeout=3, message="the first client's lease")
                results[i] = await wbs[i].collection("users").get("cold")

            with anyio.fail_after(3.5):
                async with anyio.create_task_group() as tg:
                    for i in range(2):
                        tg.start_soon(get, i)
            for wb in wbs:
                await wb.aclose()
    finally:
        for c in clients:
            await c.close()
    assert results == [{"_id": "cold", "n": 1}, {"_id": "cold", "n": 1}]
    assert counters[0].count("users") == 1
    assert counters[1].count("users") == 0


async def test_writes_and_acks_survive_an_emptied_script_cache(
    cluster_wb: WriteBehind, cluster_redis: Redis, start_cluster_worker: Any
) -> None:
    users = cluster_wb.collection("users")
    await users.set("a", {"n": 1})
    await cluster_redis.script_flush()  # every master's cache, as after a failover
    version = await users.set("b", {"n": 2})
    await start_cluster_worker()
    await users.wait_persisted(version, timeout=20)
    await cluster_redis.script_flush()
    version = await users.set("b", {"n": 3})
    await users.wait_persisted(version, timeout=20)


async def test_set_many_spreads_one_pipeline_over_every_master(
    cluster_wb: WriteBehind, start_cluster_worker: Any, mongo_db: Any
) -> None:
    users = cluster_wb.collection("users")
    versions = await users.set_many((f"m{i}", {"n": i}) for i in range(50))
    assert len(versions) == 50  # versions are per stream: equal ones on two partitions are fine
    await start_cluster_worker()
    for version in versions:
        await users.wait_persisted(version, timeout=20)
    assert await mongo_db["users"].count_documents({}) == 50
