"""Kill a Redis Cluster master under load: its replica takes over, writes and the worker resume.

The first test rewrites the same documents, with the worker running through
the failover: every document ends at its newest acknowledged version. The
others (tests/support/cluster_failover.py) write each document once, so a
lost write cannot hide behind a later one: with ``wait_replicas=1`` nothing
acknowledged is lost; without it, what the killed master acknowledged but had
not sent to its replica is, and the slow test measures how much (docs/scaling.md).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from redis.exceptions import RedisError

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.cluster_failover import failover_trial
from tests.support.config import TEST_PREFIX, fast_settings
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.redis_client import connect_cluster
from writebehind.core.version import Version
from writebehind.errors import CacheUnavailable
from writebehind.worker.runner import Worker

pytestmark = pytest.mark.anyio

DOCS = 60


async def test_master_killed_under_load_replica_takes_over_and_writes_resume(
    mongo_db: Any,
) -> None:
    with LocalCluster() as cluster:
        redis = connect_cluster(cluster.url)
        worker_redis = connect_cluster(cluster.url)
        policy = ReadPolicy(redis_timeout=2.0, breaker_failures=1000)
        wb = WriteBehind(
            redis=redis,
            mongo=mongo_db,
            prefix=TEST_PREFIX,
            partitions=CLUSTER_PARTITIONS,
            reads=policy,
        )
        await wb.ensure_ready()
        acked: dict[str, tuple[Version, float]] = {}
        unknown = 0
        stop = anyio.Event()
        victim = cluster.masters()[0]
        killed_at: list[float] = []

        async def produce(k: int) -> None:
            nonlocal unknown
            users = wb.collection("users")
            i = 0
            while not stop.is_set():
                doc_id = f"d{(i * 7 + k) % DOCS}"
                try:
                    version = await users.set(doc_id, {"k": k, "i": i})
                    acked[doc_id] = max(
                        acked.get(doc_id, (version, 0.0)), (version, time.monotonic())
                    )
                except (CacheUnavailable, RedisError):
                    unknown += 1
                    await anyio.sleep(0.05)
                i += 1

        worker = Worker(worker_redis, mongo_db, fast_settings(partitions=CLUSTER_PARTITIONS))
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            for k in range(4):
                tg.start_soon(produce, k)
            await anyio.sleep(1.5)
            victim.kill()
            killed_at.append(time.monotonic())
            await anyio.to_thread.run_sync(lambda: cluster.wait_ready(skip=(victim,)))
            await anyio.sleep(2.0)  # writes after the failover, on the promoted replica

            async def acked_after_kill() -> int:
                return len([1 for _, t in acked.values() if t > killed_at[0]])

            after_kill = await wait_until(
                acked_after_kill, timeout=30, message="a write acknowledged after the failover"
            )
            stop.set()
            for version, _ in list(acked.values()):
                await wb.collection("users").wait_persisted(version, timeout=30)
            worker.request_stop()

        stored = {
            d["_id"]: Version(int(d["_wb"]["v"][0]), int(d["_wb"]["v"][1]))
            async for d in mongo_db["users"].find()
        }
        lost = [d for d, (v, _) in acked.items() if stored.get(d, Version(0, 0)) < v]
        print(f"failover: {len(acked)} docs, {unknown} unknown calls, lost {len(lost)}")
        assert after_kill > 0, "no write was acknowledged after the failover"
        assert lost == []  # every document's newest acknowledged version is in MongoDB
        await wb.aclose()
        await redis.aclose()
        await worker_redis.aclose()


async def test_with_wait_replicas_nothing_acknowledged_is_lost(mongo_db: Any) -> None:
    outcome = await failover_trial(mongo_db, wait_replicas=1)
    print(outcome.summary())
    assert outcome.acked_by_victim, "the killed master acknowledged nothing"
    assert outcome.acked_after_kill > 0, "no write was acknowledged after the failover"
    assert outcome.lost == []


TRIALS = 5


@pytest.mark.slow
@pytest.mark.parametrize(
    ("wait_replicas", "latency"),
    [(0, 0.0), (1, 0.0), (0, 0.02), (1, 0.02)],
    ids=["no-wait", "wait", "no-wait-slow-link", "wait-slow-link"],
)
async def test_failover_losses_measured(mongo_db: Any, wait_replicas: int, latency: float) -> None:
    """``TRIALS`` failovers each way, one line each (``-s`` shows them; docs/scaling.md).

    ``latency``: seconds the killed master's replication link delays each chunk
    (a slow link; the kill drops what is in flight). With the WAIT nothing
    acknowledged is lost; without it, only writes the killed master acknowledged can be.
    """
    lost = 0
    for _ in range(TRIALS):
        outcome = await failover_trial(
            mongo_db, wait_replicas=wait_replicas, replication_latency=latency
        )
        print(f"link +{latency * 1000:g} ms: {outcome.summary()}")
        assert set(outcome.lost) <= outcome.acked_by_victim
        lost += len(outcome.lost)
    print(f"wait_replicas={wait_replicas}, link +{latency * 1000:g} ms: {lost} lost in {TRIALS}")
    if wait_replicas:
        assert lost == 0
