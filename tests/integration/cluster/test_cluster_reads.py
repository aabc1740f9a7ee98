"""The read side on a Redis Cluster: batched reads, a fill lease across clients, script reloads."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.cluster import CLUSTER_PARTITIONS
from tests.support.config import TEST_PREFIX
from tests.support.invalidator import lose_token, running_invalidator
from tests.support.reads import FindCounter, slow_finds
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.script_calls import call_script
from writebehind.sdk.reading.entry import parse_script_reply
from writebehind.sdk.reading.lease import Place

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


async def test_the_invalidators_flush_fences_the_fills_in_flight_on_every_master(
    cluster_wb: WriteBehind, cluster_redis: Redis, mongo_db: Any
) -> None:
    """Back with a lost resume token, the invalidator sets each partition's flush marker in
    the partition's slot: the fills of loads begun before it, one per partition, all on
    their own masters, are refused (FILL names the entry, lease and both markers: one slot)."""
    keys, scripts = cluster_wb.keys, cluster_wb.scripts
    places: dict[int, Place] = {}
    n = 0
    while len(places) < CLUSTER_PARTITIONS:
        place = Place.of(keys, "users", f"f{n}")
        places.setdefault(place.partition, place)
        n += 1
    started: dict[int, int] = {}
    for p, place in places.items():
        lease = [place.entry, place.lease]
        taken = await call_script(cluster_redis, scripts.lease, lease, ["A", 60_000, "m"])
        started[p] = parse_script_reply(taken).now_ms
    await lose_token(cluster_redis, mongo_db.name)
    async with running_invalidator(cluster_redis, mongo_db, "users", keys=keys) as invalidator:
        assert invalidator.metrics.resyncs.labels("empty")._value.get() == 1
    for p, place in places.items():
        fill_keys = [place.entry, place.lease, place.marker, place.flush_marker]
        args = ["A", started[p], 60_000, "1-0", "d", b"OLD", 60_000, 1, place.channel, "own"]
        reply = parse_script_reply(await call_script(cluster_redis, scripts.fill, fill_keys, args))
        assert reply.status == "flushed", p
        assert await cluster_redis.exists(place.entry) == 0
