"""One failover trial on a fresh local Redis Cluster: what a killed master's acknowledgements lose.

Producers write documents with distinct ids (one write per document, so a
later write cannot hide a lost one) and keep a ledger of the versions they
were given. A master is killed with ``kill -9`` under that load; the cluster
promotes its replica. Only then is a worker started, so every record lives in
Redis alone until the failover (nothing is saved by having been persisted
early). Once the worker has drained every partition, each acknowledged write
is looked up in MongoDB: a write missing there was lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX, fast_settings
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable, NotReplicated
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect_cluster
from writebehind.core.version import Version
from writebehind.worker.runner import Worker

GROUP = "writebehind"


@dataclass
class FailoverOutcome:
    """What producers were told, and which acknowledged writes MongoDB lacks."""

    wait_replicas: int
    acked: dict[str, tuple[Version, float, int]] = field(default_factory=dict)
    """doc id -> (version, monotonic time of the ack, partition)."""
    victim_partitions: set[int] = field(default_factory=set)
    killed_at: float = 0.0
    unknown: int = 0
    """Calls that raised a Redis error or ``CacheUnavailable``: outcome unknown."""
    not_replicated: int = 0
    """Calls that raised ``NotReplicated``: made, but not confirmed by a replica."""
    lost: list[str] = field(default_factory=list)

    @property
    def acked_by_victim(self) -> int:
        """Writes the killed master acknowledged (before the kill, to its slots)."""
        return sum(
            1
            for _, at, partition in self.acked.values()
            if partition in self.victim_partitions and at < self.killed_at
        )

    @property
    def acked_after_kill(self) -> int:
        return sum(1 for _, at, _ in self.acked.values() if at > self.killed_at)

    def summary(self) -> str:
        return (
            f"wait_replicas={self.wait_replicas}: {len(self.acked)} acknowledged, "
            f"{self.acked_by_victim} by the killed master, {self.acked_after_kill} after the "
            f"kill, {self.unknown} unknown, {self.not_replicated} NotReplicated, "
            f"lost {len(self.lost)}"
        )


async def _backlog_empty(redis: Redis, keys: KeySpace) -> bool:
    """Every partition's records were delivered to the group and acknowledged."""
    for stream in keys.streams():
        groups: Any = await redis.xinfo_groups(stream)
        ours = [g for g in groups if g["name"] in (GROUP, GROUP.encode())]
        if not ours or ours[0]["pending"] or ours[0].get("lag"):
            return False
    return True


async def failover_trial(
    mongo_db: Any, *, wait_replicas: int, producers: int = 8, before: float = 1.5
) -> FailoverOutcome:
    """Run one trial on a cluster of its own; ``before`` seconds of load before the kill."""
    outcome = FailoverOutcome(wait_replicas)
    await mongo_db["users"].drop()  # ids repeat from one trial to the next
    keys = KeySpace(TEST_PREFIX, CLUSTER_PARTITIONS)
    with LocalCluster() as cluster:
        redis = connect_cluster(cluster.url)
        wb = WriteBehind(
            redis=redis,
            mongo=mongo_db,
            prefix=TEST_PREFIX,
            partitions=CLUSTER_PARTITIONS,
            wait_replicas=wait_replicas,
            wait_timeout=0.5,
            # One master down must not open the breaker for the others' writes.
            reads=ReadPolicy(redis_timeout=2.0, breaker_failures=1_000_000),
        )
        closing: list[Redis] = []
        try:
            await wb.ensure_ready()
            victim = cluster.masters()[0]
            for p in range(CLUSTER_PARTITIONS):
                node: Any = redis.get_node_from_key(keys.stream(p))  # type: ignore[attr-defined]
                if int(node.port) == victim.port:
                    outcome.victim_partitions.add(p)
            stop = anyio.Event()
            users = wb.collection("users")

            async def produce(k: int) -> None:
                i = 0
                while not stop.is_set():
                    doc_id = f"k{k}-{i}"
                    i += 1
                    try:
                        version = await users.set(doc_id, {"k": k, "i": i})
                    except NotReplicated:
                        outcome.not_replicated += 1
                        continue
                    except (CacheUnavailable, RedisError):
                        outcome.unknown += 1
                        await anyio.sleep(0.05)
                        continue
                    partition = keys.partition_of("users", doc_id)
                    outcome.acked[doc_id] = (version, time.monotonic(), partition)

            async with anyio.create_task_group() as tg:
                for k in range(producers):
                    tg.start_soon(produce, k)
                await anyio.sleep(before)
                victim.kill()
                outcome.killed_at = time.monotonic()
                await anyio.to_thread.run_sync(lambda: cluster.wait_ready(skip=(victim,)))
                await anyio.sleep(1.0)  # writes after the failover, on the promoted replica
                stop.set()

            alive = next(n for n in cluster.nodes if n is not victim)
            worker_redis = connect_cluster(alive.url)
            closing.append(worker_redis)
            worker = Worker(worker_redis, mongo_db, fast_settings(partitions=CLUSTER_PARTITIONS))
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run)
                await wait_until(
                    lambda: _backlog_empty(redis, keys), timeout=60, message="the drain"
                )
                worker.request_stop()

            stored = {
                d["_id"]: Version.from_pair(d["_wb"]["v"])
                async for d in mongo_db["users"].find({}, {"_wb": 1})
            }
            outcome.lost = sorted(
                doc_id
                for doc_id, (version, _, _) in outcome.acked.items()
                if stored.get(doc_id, Version(0, 0)) < version
            )
        finally:
            await wb.aclose()
            await redis.aclose()
            for client in closing:
                await client.aclose()
    return outcome
