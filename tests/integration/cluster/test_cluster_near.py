"""The near cache on a Redis Cluster: one feed follower per partition (sdk/near/cluster_feed.py)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable, NotReplicated
from writebehind.core.redis_client import connect_cluster
from writebehind.sdk.near import NearCache

pytestmark = pytest.mark.anyio

NEAR = NearCache(max_entries=1000, ttl=60.0, max_stale=0.5)
POLICY = ReadPolicy(near=NEAR, redis_timeout=0.5, breaker_failures=1_000_000)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _hits() -> float:
    return _sample("writebehind_sdk_near_reads_total", collection="users", outcome="hit")


async def _feed_ready(wb: WriteBehind) -> None:
    async def ready() -> bool:
        return wb.near.servable(NEAR)

    await wait_until(ready, timeout=20, message="the near-cache feed caught up")


def _wb(redis: Redis, mongo_db: Any, **options: Any) -> WriteBehind:
    return WriteBehind(
        redis=redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=CLUSTER_PARTITIONS, **options
    )


async def test_another_clients_writes_reach_the_near_cache_on_every_master(
    redis_cluster: LocalCluster, cluster_redis: Redis, mongo_db: Any
) -> None:
    ids = [f"d{i}" for i in range(30)]  # every partition, so every master
    other_redis = connect_cluster(redis_cluster.url)
    try:
        async with (
            _wb(cluster_redis, mongo_db, reads=POLICY) as wb,
            _wb(other_redis, mongo_db) as other,
        ):
            users, theirs = wb.collection("users"), other.collection("users")
            await theirs.set_many([(doc_id, {"n": 1}) for doc_id in ids])
            await users.get_many(ids)  # starts the feed
            await _feed_ready(wb)
            await users.get_many(ids)  # kept: the feed has its position
            hits = _hits()
            assert await users.get_many(ids) == {d: {"_id": d, "n": 1} for d in ids}
            assert _hits() == hits + len(ids)  # served by the near cache

            await theirs.set_many([(doc_id, {"n": 2}) for doc_id in ids])

            async def newest() -> bool:
                return await users.get_many(ids) == {d: {"_id": d, "n": 2} for d in ids}

            # Evicted by the feed, well within max_stale; then kept again.
            await wait_until(newest, timeout=NEAR.max_stale, interval=0.01, message="the writes")
            hits = _hits()
            await users.get_many(ids)
            assert _hits() == hits + len(ids)
    finally:
        await other_redis.aclose()


async def test_a_master_failover_stops_near_reads_then_starts_the_partition_over(
    mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="writebehind.near")
    with LocalCluster() as cluster:
        victim = cluster.masters()[0]
        alive = next(n for n in cluster.nodes if n is not victim)
        redis, other_redis = connect_cluster(alive.url), connect_cluster(alive.url)
        try:
            async with (
                _wb(redis, mongo_db, reads=POLICY) as wb,
                _wb(other_redis, mongo_db, wait_replicas=1) as other,
            ):
                users, theirs = wb.collection("users"), other.collection("users")
                keys = wb.keys
                doc_id = next(
                    f"d{i}"
                    for i in range(100)
                    if int(
                        redis.get_node_from_key(  # type: ignore[attr-defined]
                            keys.stream(keys.partition_of("users", f"d{i}"))
                        ).port
                    )
                    == victim.port
                )
                await theirs.set(doc_id, {"n": 1})  # the replica has it (WAIT)
                await users.get(doc_id)  # starts the feed
                await _feed_ready(wb)
                await users.get(doc_id)  # kept: the feed has its position
                hits = _hits()
                assert await users.get(doc_id) == {"_id": doc_id, "n": 1}
                assert _hits() == hits + 1
                emptied = _sample("writebehind_sdk_near_resyncs_total", mode="empty")

                victim.kill()
                # The victim's partitions stop advancing: past max_stale nothing is served
                # from the near cache, for any partition (one clock: the oldest).
                await anyio.sleep(NEAR.max_stale + 0.2)
                assert not wb.near.servable(NEAR)
                assert _sample("writebehind_sdk_near_feed_connected") == 0  # not all partitions
                hits = _hits()
                await users.get("elsewhere")
                assert _hits() == hits

                await anyio.to_thread.run_sync(lambda: cluster.wait_ready(skip=(victim,)))

                async def written() -> bool:
                    try:
                        await theirs.set(doc_id, {"n": 2})
                    except NotReplicated:
                        return True  # made; the promoted master has no replica left
                    except (CacheUnavailable, RedisError):
                        return False  # the writer's client is still finding the new master
                    raise AssertionError("the promoted master has no replica to confirm it")

                await wait_until(written, timeout=20, interval=0.1, message="the write")

                async def newest() -> bool:
                    return await users.get(doc_id) == {"_id": doc_id, "n": 2}

                await wait_until(newest, timeout=20, interval=0.05, message="the new write")
                await _feed_ready(wb)
                assert _sample("writebehind_sdk_near_feed_connected") == 1
                # The follower saw another master serve its slot: emptied, positioned anew.
                assert _sample("writebehind_sdk_near_resyncs_total", mode="empty") > emptied
                # The outage in the log: a line when it began and one when it ended, not a
                # line per partition of the victim per retry (one a second each).
                lost = caplog.text.count("near-cache feed lost")
                back = caplog.text.count("near-cache feed reconnected after")
                print(f"feed log: {lost} lost, {back} reconnected")
                assert 1 <= lost <= 2 and back == lost, caplog.text
        finally:
            await redis.aclose()
            await other_redis.aclose()
