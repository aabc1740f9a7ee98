"""The SDK and a worker on a Redis Cluster: every partition's keys in one slot, writes drain."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.waiting import wait_until
from writebehind import WriteBehind
from writebehind.core.redis_checks import inspect_redis
from writebehind.errors import UnsafeEvictionPolicy

pytestmark = pytest.mark.anyio


async def test_writes_drain_to_the_newest_version_of_every_document(
    cluster_wb: WriteBehind, start_cluster_worker: Any, mongo_db: Any, cluster_redis: Redis
) -> None:
    users = cluster_wb.collection("users")
    ids: list[Any] = [f"u{i}" for i in range(60)] + ["{wb:p0}x", "{", "}{", "a{b}c"]
    newest: dict[Any, Any] = {}
    for round_ in range(3):
        for doc_id in ids:
            newest[doc_id] = await users.set(doc_id, {"round": round_, "id": str(doc_id)})
    gone = await users.delete("u0")
    await users.patch("u1", {"patched": True})
    newest["u1"] = await users.patch("u1", {"again": 1})
    await start_cluster_worker()
    await start_cluster_worker()
    for version in newest.values():
        await users.wait_persisted(version, timeout=30)
    await users.wait_persisted(gone, timeout=30)

    stored = {d["_id"]: d async for d in mongo_db["users"].find()}
    assert set(stored) == set(ids)
    for doc_id in ids[1:]:
        version = newest[doc_id]
        assert stored[doc_id]["_wb"]["v"] == [version.ms, version.seq]
        assert stored[doc_id]["round"] == 2
    assert stored["u1"]["patched"] is True and stored["u1"]["again"] == 1
    assert stored["u0"]["_wb"]["deleted"] is True
    assert await users.get("u0") is None
    assert await users.get("a{b}c") == {"_id": "a{b}c", "round": 2, "id": "a{b}c"}

    # Every partition stream is drained, and partitions really spread over the masters.
    slots = {
        await cluster_redis.cluster_keyslot(cluster_wb.keys.stream(p))  # type: ignore[attr-defined]
        for p in range(CLUSTER_PARTITIONS)
    }
    assert len(slots) == CLUSTER_PARTITIONS


async def test_ids_with_braces_keep_their_partitions_hash_slot(cluster_wb: WriteBehind) -> None:
    keys = cluster_wb.keys
    slot_of = cluster_wb.redis.cluster_keyslot  # type: ignore[attr-defined]
    for doc_id in ("{x}", "}{", "{wb:p1}", "a{b}c{d}", "{}"):
        partition = keys.partition_of("users", doc_id)
        assert await slot_of(keys.cache(partition, "users", doc_id)) == await slot_of(
            keys.stream(partition)
        )


async def test_every_master_is_checked_for_an_evicting_policy(
    redis_cluster: LocalCluster, cluster_redis: Redis
) -> None:
    last = redis_cluster.masters()[-1]
    report = await inspect_redis(cluster_redis, strict=False)
    assert report.errors == [] and report.persistence == "none"
    with SyncRedis(port=last.port) as node:
        node.config_set("maxmemory-policy", "allkeys-lru")
        try:
            with pytest.raises(UnsafeEvictionPolicy, match="allkeys-lru"):
                await inspect_redis(cluster_redis)
        finally:
            node.config_set("maxmemory-policy", "noeviction")


async def test_housekeeping_trims_every_partition_on_the_cluster(
    cluster_wb: WriteBehind, start_cluster_worker: Any, cluster_redis: Redis
) -> None:
    users = cluster_wb.collection("users")
    versions = [await users.set(f"u{i}", {"n": i}) for i in range(40)]
    await start_cluster_worker(retention=0, trim_interval=0.2, consumer_idle=0)
    for version in versions:
        await users.wait_persisted(version, timeout=20)
    streams = [cluster_wb.keys.stream(p) for p in range(CLUSTER_PARTITIONS)]

    async def trimmed() -> bool:
        lengths = [await cluster_redis.xlen(s) for s in streams]
        return sum(lengths) < len(versions) and all(n <= 1 for n in lengths)

    await wait_until(trimmed, timeout=20, message="the streams to be trimmed")
