"""SIGTERM with MongoDB down or frozen: the worker exits within --drain-timeout (plus
the process's own exit), not --drain-timeout plus a MongoDB client close."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.support.config import TEST_PARTITIONS, TEST_PREFIX
from tests.support.processes import WorkerProcess
from tests.support.seeding import seed_all
from tests.support.servers import RedisServer, SecantusServer
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio

DRAIN = 3.0
SLACK = 1.0
"""Interpreter start-up of the signal handler and exit on a loaded 2-core machine."""


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_sigterm_with_mongodb_unavailable_exits_within_the_drain_timeout(
    tmp_path: Path,
    redis: Redis,
    redis_server: RedisServer,
    mongo_factory: Any,
    database_name: str,
    outage: str,
) -> None:
    mongo_server: SecantusServer = mongo_factory()
    worker = WorkerProcess(
        redis_url=redis_server.url,
        mongo_url=mongo_server.url,
        database=database_name,
        log_path=tmp_path / "worker.log",
        drain_timeout=f"{DRAIN:g}s",
    ).start()
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.url)
    try:
        wb = WriteBehind(
            redis=redis, mongo=mongo[database_name], prefix=TEST_PREFIX, partitions=TEST_PARTITIONS
        )
        docs = wb.collection("docs")
        await docs.wait_persisted(await docs.set("first", {"n": 0}), timeout=60)
        await seed_all(wb)  # a partition's first write on a primary reads MongoDB
        if outage == "stopped":
            await anyio.to_thread.run_sync(mongo_server.stop)
        else:
            mongo_server.pause()
        for i in range(20):
            await docs.set(f"d{i}", {"n": i})

        async def holding() -> bool:
            pending = await redis.xpending(wb.keys.stream(wb.keys.partition_of("docs", "d0")),
                                           "writebehind")  # fmt: skip
            return bool(pending["pending"])

        await wait_until(holding, message="records in flight to the unavailable MongoDB")
        worker.send(signal.SIGTERM)
        signalled = anyio.current_time()
        code = await worker.wait_exit(within=DRAIN + 30)
        elapsed = anyio.current_time() - signalled
        assert code == 0, worker.output()[-3000:]
        assert "drain_timeout_reached" in worker.event_names()
        assert elapsed <= DRAIN + SLACK, f"exited {elapsed:.2f}s after SIGTERM"
    finally:
        worker.close()
        if outage == "frozen":
            mongo_server.resume()
        await mongo.close()
