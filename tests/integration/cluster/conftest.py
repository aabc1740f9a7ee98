"""Fixtures on a local Redis Cluster (3 masters, 1 replica each), started once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.support.cli import Cli
from tests.support.cluster import CLUSTER_PARTITIONS, LocalCluster
from tests.support.config import TEST_PREFIX, fast_settings
from writebehind import WriteBehind
from writebehind.core.redis_client import connect_cluster
from writebehind.worker.runner import Worker


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture
async def cluster_redis(redis_cluster: LocalCluster) -> AsyncIterator[Redis]:
    """A ``RedisCluster`` client (typed as ``Redis``) on an emptied cluster."""
    redis_cluster.flushall()
    client = connect_cluster(redis_cluster.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def cluster_wb(cluster_redis: Redis, mongo_db: Any) -> AsyncIterator[WriteBehind]:
    async with WriteBehind(
        redis=cluster_redis, mongo=mongo_db, prefix=TEST_PREFIX, partitions=CLUSTER_PARTITIONS
    ) as client:
        yield client


@pytest.fixture
async def start_cluster_worker(
    redis_cluster: LocalCluster, mongo_db: Any
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """In-process workers on the cluster, each with its own client; all drain at teardown."""
    workers: list[Worker] = []
    clients: list[Redis] = []
    async with anyio.create_task_group() as tg:

        async def start(**overrides: Any) -> Worker:
            client = connect_cluster(redis_cluster.url)
            clients.append(client)
            overrides.setdefault("partitions", CLUSTER_PARTITIONS)
            worker = Worker(client, mongo_db, fast_settings(**overrides))
            tg.start_soon(worker.run)
            with anyio.fail_after(30):
                await worker.started.wait()
            workers.append(worker)
            return worker

        yield start
        for worker in workers:
            worker.request_stop()
    for client in clients:
        await client.aclose()


@pytest.fixture
def cluster_cli(redis_cluster: LocalCluster, mongo_url: str, database_name: str) -> Cli:
    """``writebehind <command> --redis-cluster ...`` against the cluster."""
    return Cli(redis_cluster.url, mongo_url, database_name, CLUSTER_PARTITIONS, cluster=True)
