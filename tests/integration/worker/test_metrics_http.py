"""/metrics, /healthz and /readyz over real HTTP from a running worker."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.support.http import http_get, sample
from tests.support.waiting import wait_until
from writebehind import WriteBehind

pytestmark = pytest.mark.anyio


async def test_metrics_count_what_the_worker_did(wb: WriteBehind, start_worker: Any) -> None:
    worker = await start_worker(metrics_address="127.0.0.1:0", gauge_interval=0.1)
    port = worker.metrics_port
    users = wb.collection("users")
    await users.set_many([(i, {"n": i}) for i in range(20)])
    last = await users.set(0, {"n": "newest"})
    await users.wait_persisted(last, timeout=20)
    await wait_until(lambda: _persisted(port, 21), message="21 records persisted in /metrics")
    status, text = await http_get(port, "/metrics")
    assert status == 200
    assert sample(text, "writebehind_records_read_total") == 21
    assert sample(text, "writebehind_batch_size_records_count") >= 1
    assert sample(text, "writebehind_bulk_write_duration_seconds_count") >= 1
    assert sample(text, "writebehind_records_dead_lettered_total") == 0
    assert 'writebehind_pending_entries{partition="0"}' in text
    assert "writebehind_lag_entries" in text
    assert "writebehind_oldest_pending_age_seconds" in text


async def _persisted(port: int, expected: int) -> bool:
    _, text = await http_get(port, "/metrics")
    return sample(text, "writebehind_records_persisted_total") == expected


async def test_health_and_readiness(start_worker: Any, mongo_client: Any) -> None:
    worker = await start_worker(metrics_address="127.0.0.1:0")
    port = worker.metrics_port
    assert await http_get(port, "/healthz") == (200, "ok\n")
    assert await http_get(port, "/readyz") == (200, "ok\n")
    assert (await http_get(port, "/nope"))[0] == 404


async def test_readiness_fails_when_mongodb_is_down(
    start_worker: Any, mongo_factory: Any, redis_server: Any
) -> None:
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

    from tests.support.config import fast_settings
    from writebehind.worker.runner import Worker

    mongo = mongo_factory()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo.url, serverSelectionTimeoutMS=500, uuidRepresentation="standard"
    )
    redis = Redis.from_url(redis_server.url)
    worker = Worker(redis, client["ready"], fast_settings(metrics_address="127.0.0.1:0"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await worker.started.wait()
            assert (await http_get(worker.metrics_port, "/readyz"))[0] == 200
            mongo.stop()
            status, body = await http_get(worker.metrics_port, "/readyz")
            assert status == 503
            assert "mongodb" in body
            assert (await http_get(worker.metrics_port, "/healthz"))[0] == 200
            worker.force_stop()
    finally:
        await redis.aclose()
        await client.close()
