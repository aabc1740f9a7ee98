"""A ``writebehind worker --redis-cluster`` killed between its MongoDB write and its acks."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX
from tests.support.processes import WorkerProcess
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_kill_9_after_a_write_then_another_worker_reclaims_on_the_cluster(
    cluster_wb: WriteBehind,
    cluster_redis: Redis,
    redis_cluster: LocalCluster,
    start_cluster_worker: Any,
    mongo_db: Any,
    mongo_url: str,
    database_name: str,
    tmp_path: Path,
) -> None:
    docs = cluster_wb.collection("docs")
    newest: dict[str, Any] = {}
    for i in range(1200):
        doc_id = f"d{i % 150}"
        newest[doc_id] = await docs.set(doc_id, {"i": i})
    victim = WorkerProcess(
        redis_url=redis_cluster.url,
        mongo_url=mongo_url,
        database=database_name,
        log_path=tmp_path / "victim.log",
        prefix=TEST_PREFIX,
        partitions=CLUSTER_PARTITIONS,
        consumer="victim",
        crash_at=("after_write", 3),
        redis_cluster=True,
        batch_size=50,
    ).start()
    try:
        await wait_until(
            lambda: _exited(victim), timeout=60, message="the victim to reach its crash point"
        )
        assert victim.poll() == -signal.SIGKILL, victim.output()[-2000:]
        assert '"crashpoint"' in victim.output()
        pending = sum(
            [
                (await cluster_redis.xpending(cluster_wb.keys.stream(p), "writebehind"))["pending"]
                for p in range(CLUSTER_PARTITIONS)
            ]
        )
        assert pending > 0, "died with nothing pending: the reclaim path would go untested"

        worker = await start_cluster_worker(claim_idle=0.5)
        for version in newest.values():
            await docs.wait_persisted(version, timeout=30)
        stored = {d["_id"]: d["_wb"]["v"] async for d in mongo_db["docs"].find()}
        assert stored == {k: [v.ms, v.seq] for k, v in newest.items()}
        assert worker.stats.claimed > 0
    finally:
        victim.close()


async def _exited(proc: WorkerProcess) -> bool:
    return proc.poll() is not None
