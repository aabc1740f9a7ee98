"""The near cache's change feed on a Redis Cluster: one ``Follower`` per partition.

A cluster refuses an ``XREAD`` of keys in different hash slots (``CROSSSLOT``,
even for slots on one node), and each partition is one slot. So each
partition gets its own follower: one blocking ``XREAD`` of its change and
invalidation streams (one slot) at a time, all on one feed client of their
own (a ``RedisCluster`` with a connection per partition per node at most,
named ``wb-near-feed``, without transparent retries: a lost connection must
reach the follower, which checks what it may have missed before resuming).

The guarantees are the single feed's, per partition, combined:

- staleness: each partition has its own clock; the feed counts as caught up
  as of its oldest partition's moment (``staleness.ClockGroup``), so a
  partition whose master is down stops near-cache reads after ``max_stale``;
- resuming: each follower resumes from the last ids it applied, unless Redis
  trimmed records it had not read, or its slot is served by another master
  (a failover: the promoted replica may lack records the feed read from the
  old master, or issue ids below its position); then the near caches are
  emptied and that partition starts from the new master's heads;
- replies kept only from reads that began after every partition took its
  position (``positioned`` once all have);
- ``writebehind_sdk_near_feed_connected`` is 1 only while every partition's
  follower is connected;
- an outage is logged once, when the first follower loses its connection, and
  summed up once every follower is back (``outage.OutageLog``), not once per
  partition per retry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.exceptions import RedisClusterException, RedisError

from writebehind.core.backoff import Backoff, retry
from writebehind.core.keys import KeySpace
from writebehind.sdk.metrics import SDK_NEAR_FEED_CONNECTED
from writebehind.sdk.near.follower import Follower, feed_options
from writebehind.sdk.near.outage import OutageLog
from writebehind.sdk.near.records import Eviction
from writebehind.sdk.near.staleness import ClockGroup, FeedClock

log = logging.getLogger("writebehind.near")

CLUSTER_LOST = (RedisError, RedisClusterException, OSError)
"""On a cluster every Redis error of the feed is a lost position, resumed from with
the checks: ``CLUSTERDOWN``, an uncovered slot or a refresh that found no node
(``RedisClusterException``s, not ``RedisError``s) all pass while a failover runs."""

_FEED_OWN = {"host", "port", "startup_nodes", "max_connections"}


def feed_cluster_client(redis: Redis, block_s: float, partitions: int) -> Redis:
    """A ``RedisCluster`` like ``redis`` (its nodes, credentials, TLS), for the feed only."""
    kwargs = dict(redis.get_connection_kwargs())  # type: ignore[no-untyped-call]
    accepted = inspect.signature(RedisCluster.__init__).parameters
    options: dict[str, Any] = {
        k: v for k, v in kwargs.items() if k in accepted and k not in _FEED_OWN
    }
    connection_class = kwargs.get("connection_class")
    if isinstance(connection_class, type) and issubclass(connection_class, SSLConnection):
        options["ssl"] = True
    options.update(feed_options(kwargs, block_s))
    nodes = [ClusterNode(n.host, n.port) for n in cast(Any, redis).get_nodes()]
    client = RedisCluster(
        startup_nodes=nodes,
        max_connections=partitions + 2,  # one blocked XREAD per partition, and a check
        **options,
    )
    return cast(Redis, client)


class ClusterFeed:
    """Follows every partition of a cluster until cancelled; the callbacks are ``Follower``'s."""

    def __init__(
        self,
        redis: Redis,
        keys: KeySpace,
        clock: FeedClock,
        block_ms: Callable[[], int],
        apply: Callable[[Eviction], None],
        empty: Callable[[], None],
        positioned: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clocks = ClockGroup(clock)
        self._block_ms = block_ms
        self._apply = apply
        self._empty = empty
        self._positioned = positioned
        self._outage = OutageLog(log)
        self._placed: set[int] = set()
        self._up: set[int] = set()

    async def run(self) -> None:
        client = feed_cluster_client(self._redis, self._block_ms() / 1000, self._keys.partitions)
        try:
            await self._connect(client)
            async with asyncio.TaskGroup() as tg:
                for partition in range(self._keys.partitions):
                    tg.create_task(self._follower(client, partition).run())
        finally:
            await client.aclose()

    async def _connect(self, client: Redis) -> None:
        """The slot map, which ``owner`` reads before the first command (retried until known)."""
        await retry(
            cast(Any, client).initialize,
            transient=lambda exc: isinstance(exc, CLUSTER_LOST),
            backoff=Backoff(base=0.05, cap=1.0),
            on_retry=self._no_node_answered,
        )
        self._outage.connected("slots")

    def _no_node_answered(self, exc: BaseException, _delay: float) -> None:
        self._outage.failed("slots", f"no cluster node answered: {type(exc).__name__}")

    def _follower(self, client: Redis, partition: int) -> Follower:
        stream = self._keys.stream(partition)

        def owner() -> str:
            node: Any = cast(Any, client).get_node_from_key(stream)
            return str(node.name)

        def connected(up: bool) -> None:
            (self._up.add if up else self._up.discard)(partition)
            SDK_NEAR_FEED_CONNECTED.set(int(len(self._up) == self._keys.partitions))

        def positioned() -> None:
            self._placed.add(partition)
            if len(self._placed) == self._keys.partitions:
                self._positioned()

        return Follower(
            self._redis,
            self._keys,
            self._clocks.part(),
            self._block_ms,
            self._apply,
            self._empty,
            positioned,
            partitions=[partition],
            shared=client,
            owner=owner,
            lost=CLUSTER_LOST,
            connected=connected,
            outage=self._outage,
        )
