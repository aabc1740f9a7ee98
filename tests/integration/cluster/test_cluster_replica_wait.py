"""``wait_replicas`` on a Redis Cluster: each write's ``WAIT`` runs on the connection of
the master that made it, so it answers for that master's replicas (core/pinned.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX
from tests.support.streams import cache_key
from writebehind import WriteBehind
from writebehind.core.errors import NotReplicated
from writebehind.sdk.computing.keys import tag_generation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def waiting_wb(cluster_redis: Redis, mongo_db: Any) -> AsyncIterator[WriteBehind]:
    async with WriteBehind(
        redis=cluster_redis,
        mongo=mongo_db,
        prefix=TEST_PREFIX,
        partitions=CLUSTER_PARTITIONS,
        wait_replicas=1,
        wait_timeout=0.5,
    ) as client:
        yield client


def _master_of(wb: WriteBehind, doc_id: str) -> ClusterNode:
    stream = wb.keys.stream(wb.keys.partition_of("users", doc_id))
    return wb.redis.get_node_from_key(stream)  # type: ignore[attr-defined,no-any-return]


async def _on_replica(cluster: LocalCluster, wb: WriteBehind, doc_id: str) -> bytes | None:
    """The version the slot's replica holds for the document, read from the replica itself."""
    node = cluster.replica_of(int(_master_of(wb, doc_id).port))
    client = Redis(port=node.port)
    try:
        await client.execute_command("READONLY")
        value: bytes | None = await client.hget(cache_key(wb.keys, "users", doc_id), "v")
        return value
    finally:
        await client.aclose()


def _ids_per_master(wb: WriteBehind) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for i in range(200):
        ids.setdefault(_master_of(wb, f"d{i}").name, []).append(f"d{i}")
    assert len(ids) == 3, "the test ids must reach every master"
    return ids


async def test_writes_return_once_their_masters_replica_has_them(
    redis_cluster: LocalCluster, waiting_wb: WriteBehind
) -> None:
    redis_cluster.flushall()  # every script cache empty: the first calls go as EVAL
    users = waiting_wb.collection("users")
    ids = _ids_per_master(waiting_wb)
    firsts = [group[0] for group in ids.values()]
    for doc_id in firsts:
        version = await users.set(doc_id, {"n": 1})
        # No polling: WAIT returned on the master's connection, so its replica has it.
        assert await _on_replica(redis_cluster, waiting_wb, doc_id) == str(version).encode()

    many = [doc_id for group in ids.values() for doc_id in group[1:4]]
    versions = await users.set_many([(doc_id, {"n": 2}) for doc_id in many])
    for doc_id, version in zip(many, versions, strict=True):
        assert await _on_replica(redis_cluster, waiting_wb, doc_id) == str(version).encode()


async def test_a_frozen_replica_fails_the_wait_of_its_masters_writes_only(
    redis_cluster: LocalCluster, waiting_wb: WriteBehind
) -> None:
    users = waiting_wb.collection("users")
    ids = _ids_per_master(waiting_wb)
    frozen_master, other_master = list(ids)[:2]
    frozen_id, other_id = ids[frozen_master][0], ids[other_master][0]
    server = redis_cluster.replica_of(int(_master_of(waiting_wb, frozen_id).port))
    server.pause()  # well under the 2 s node timeout: no failover
    try:
        with pytest.raises(NotReplicated) as info:
            await users.set(frozen_id, {"n": 1})
        assert (info.value.acknowledged, info.value.wanted) == (0, 1)
        # Another master's replica answers: its WAIT is not the frozen one's.
        await users.set(other_id, {"n": 1})
        with pytest.raises(NotReplicated) as many:
            await users.set_many([(other_id, {"n": 2}), (frozen_id, {"n": 2})])
        assert [v.doc_id for v in many.value.versions] == [other_id, frozen_id]
    finally:
        server.resume()
    assert await users.get(frozen_id) == {"_id": frozen_id, "n": 2}  # made all the same


async def test_invalidations_wait_on_their_masters_connection(
    redis_cluster: LocalCluster, waiting_wb: WriteBehind
) -> None:
    """``cached`` is refused on a cluster, but ``invalidate_tags`` and ``bump_namespace``
    are not: with ``wait_replicas`` their ``WAIT`` goes pinned (core/pinned.py) and the
    slot's replica has the generation when they return."""
    key = tag_generation(TEST_PREFIX, "t")
    await waiting_wb.redis.set(key, "5")
    await waiting_wb.invalidate_tags("t")
    await waiting_wb.bump_namespace("n")
    node = redis_cluster.replica_of(int(waiting_wb.redis.get_node_from_key(key).port))  # type: ignore[attr-defined]
    client = Redis(port=node.port)
    try:
        await client.execute_command("READONLY")
        assert int(await client.get(key) or 0) > 5  # no polling: WAIT returned
    finally:
        await client.aclose()
