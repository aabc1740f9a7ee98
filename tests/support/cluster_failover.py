"""One failover trial on a fresh local Redis Cluster: what a killed master's acknowledgements lose.

Producers write documents with distinct ids (one write per document, so a
later write cannot hide a lost one) and keep a ledger of the versions they
were given. A master is killed with ``kill -9`` under that load; the cluster
promotes its replica. Only then is a worker started, so every record lives in
Redis alone until the failover (nothing is saved by having been persisted
early). Once the worker has drained every partition, each acknowledged write
is looked up in MongoDB: a write missing there was lost.

With ``replication_latency``, the killed master's replica follows it through
a ``Proxy`` that delays every chunk (the master announces the proxy's port
with ``cluster-announce-port``, so its replica connects there, while the
test's clients are remapped to the real port: only replication is slowed).
The kill first cuts the proxy's connections, which drops the bytes in
flight, as a master host dying behind a slow link would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.cluster import BUS_OFFSET, CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX, fast_settings
from tests.support.proxy import Proxy
from tests.support.waiting import wait_until
from writebehind import ReadPolicy, WriteBehind
from writebehind.core.errors import CacheUnavailable, NotReplicated
from writebehind.core.keys import KeySpace
from writebehind.core.redis_client import connect_cluster
from writebehind.core.version import Version
from writebehind.embedded.servers import RedisServer
from writebehind.worker.runner import Worker

GROUP = "writebehind"


@dataclass
class FailoverOutcome:
    """What producers were told, and which acknowledged writes MongoDB lacks."""

    wait_replicas: int
    acked: dict[str, tuple[Version, float, int]] = field(default_factory=dict)
    """doc id -> (version, monotonic time the call was sent, partition). A write the
    killed master made was sent before the kill (its ack may be read after it)."""
    victim_partitions: set[int] = field(default_factory=set)
    killed_at: float = 0.0
    unknown: int = 0
    """Calls that raised a Redis error or ``CacheUnavailable``: outcome unknown."""
    not_replicated: int = 0
    """Calls that raised ``NotReplicated``: made, but not confirmed by a replica."""
    lost: list[str] = field(default_factory=list)

    @property
    def acked_by_victim(self) -> set[str]:
        """Writes the killed master may have acknowledged: sent before the kill, to its slots
        (a few of them retried and made by the promoted replica instead)."""
        return {
            doc_id
            for doc_id, (_, sent, partition) in self.acked.items()
            if partition in self.victim_partitions and sent < self.killed_at
        }

    @property
    def acked_after_kill(self) -> int:
        """Writes sent after the kill and acknowledged (by other masters or the promoted one)."""
        return sum(1 for _, sent, _ in self.acked.values() if sent > self.killed_at)

    def summary(self) -> str:
        return (
            f"wait_replicas={self.wait_replicas}: {len(self.acked)} acknowledged, "
            f"{len(self.acked_by_victim)} by the killed master, {self.acked_after_kill} after the "
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


async def _replicate_through(cluster: LocalCluster, proxy: Proxy, master_port: int) -> None:
    """Make the master's replica follow it through ``proxy`` (its announced port)."""
    replica = cluster.replica_of(master_port)
    with SyncRedis(port=master_port, socket_timeout=2) as client:
        client.config_set("cluster-announce-port", proxy.port)
        client.config_set("cluster-announce-bus-port", master_port + BUS_OFFSET)

    async def through_proxy() -> bool:
        with SyncRedis(port=replica.port, socket_timeout=2) as client:
            info: Any = client.info("replication")
        return bool(
            info.get("master_port") == proxy.port and info.get("master_link_status") == "up"
        )

    await wait_until(through_proxy, timeout=30, interval=0.1, message="replication via proxy")


async def failover_trial(
    mongo_db: Any,
    *,
    wait_replicas: int,
    producers: int = 8,
    before: float = 1.5,
    replication_latency: float = 0.0,
) -> FailoverOutcome:
    """Run one trial on a cluster of its own: ``before`` seconds of load before the kill,
    ``replication_latency`` seconds added to each chunk the killed master's replica gets."""
    outcome = FailoverOutcome(wait_replicas)
    await mongo_db["users"].drop()  # ids repeat from one trial to the next
    with LocalCluster() as cluster:
        victim = cluster.masters()[0]
        proxy = Proxy("127.0.0.1", victim.port, latency=replication_latency)
        remap: dict[tuple[str, int], tuple[str, int]] = {}

        def real_address(address: tuple[str, int]) -> tuple[str, int]:
            return remap.get(address, address)

        async with anyio.create_task_group() as tg:
            if replication_latency:
                await tg.start(proxy.run)
                proxy.set_mode("latency")
                remap[("127.0.0.1", proxy.port)] = ("127.0.0.1", victim.port)
                await _replicate_through(cluster, proxy, victim.port)
            redis = connect_cluster(cluster.url, address_remap=real_address)
            try:
                await _trial(cluster, victim, proxy, redis, mongo_db, outcome, producers, before)
            finally:
                await redis.aclose()
            tg.cancel_scope.cancel()
    return outcome


async def _trial(
    cluster: LocalCluster,
    victim: RedisServer,
    proxy: Proxy,
    redis: Redis,
    mongo_db: Any,
    outcome: FailoverOutcome,
    producers: int,
    before: float,
) -> None:
    keys = KeySpace(TEST_PREFIX, CLUSTER_PARTITIONS)
    async with WriteBehind(
        redis=redis,
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=CLUSTER_PARTITIONS,
        wait_replicas=outcome.wait_replicas,
        wait_timeout=0.5,
        # One master down must not open the breaker for the others' writes.
        reads=ReadPolicy(redis_timeout=2.0, breaker_failures=1_000_000),
    ) as wb:
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
                sent = time.monotonic()
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
                outcome.acked[doc_id] = (version, sent, partition)

        async with anyio.create_task_group() as tg:
            for k in range(producers):
                tg.start_soon(produce, k)
            await anyio.sleep(before)
            proxy.set_mode("drop")  # the bytes in flight to the replica die with the host
            victim.kill()
            outcome.killed_at = time.monotonic()
            await anyio.to_thread.run_sync(lambda: cluster.wait_ready(skip=(victim,)))
            await anyio.sleep(1.0)  # writes after the failover, on the promoted replica

            async def acked_after_kill() -> bool:
                return outcome.acked_after_kill > 0

            await wait_until(
                acked_after_kill, timeout=30, message="a write acknowledged after the failover"
            )
            stop.set()

    alive = next(n for n in cluster.nodes if n is not victim)
    worker_redis = connect_cluster(alive.url)
    try:
        worker = Worker(worker_redis, mongo_db, fast_settings(partitions=CLUSTER_PARTITIONS))
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await wait_until(lambda: _backlog_empty(redis, keys), timeout=60, message="the drain")
            worker.request_stop()
    finally:
        await worker_redis.aclose()
    stored = {
        d["_id"]: Version.from_pair(d["_wb"]["v"])
        async for d in mongo_db["users"].find({}, {"_wb": 1})
    }
    outcome.lost = sorted(
        doc_id
        for doc_id, (version, _, _) in outcome.acked.items()
        if stored.get(doc_id, Version(0, 0)) < version
    )
